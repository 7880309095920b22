"""dnalm: adapt pretrained DNA language models to genomic tasks with Lightning and Hydra."""

__version__ = "0.1.0"

from dnalm.names import register_resolvers as _register_resolvers

_register_resolvers()  # the configs use ${dnalm.name:...} wherever a path becomes a name
