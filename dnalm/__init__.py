"""dnalm: adapt pretrained DNA language models to genomic tasks with Lightning and Hydra."""

__version__ = "0.1.0"
