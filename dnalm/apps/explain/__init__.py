"""``python -m dnalm.explain``: what a fine-tuned classifier looks at.

Saturation in-silico mutagenesis (:mod:`.ism`), gradient attributions on the token embeddings mapped to bases
(:mod:`.attributions`), motif discovery and database matching (:mod:`.motifs`), pictures (:mod:`.plots`), all
on the inference path of the other applications (:class:`dnalm.inference.Runner`); :mod:`.app` ties them
together.
"""

from dnalm.apps.explain.app import main

__all__ = ["main"]
