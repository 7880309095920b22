"""Pre-training DNA language models: genomes, objectives, the LM module and model loading (``dnalm.pretrain``)."""
