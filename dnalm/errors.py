"""Errors that dnalm reports to users as a clear message instead of a traceback."""


class DNALMError(Exception):
    """A problem with the user's input or configuration; the message says what is wrong and how to fix it."""


class ConfigError(DNALMError):
    """An option, or a combination of options, that dnalm cannot run."""


class DataError(DNALMError):
    """Input data that does not fit the configured task (missing columns, unknown labels, empty splits)."""


class ModelLoadError(DNALMError):
    """A backbone or tokenizer that could not be loaded."""
