"""The one exception type a stage turns into a single clear line on stderr."""


class PipelineError(Exception):
    """Bad input or configuration: the message names the key, file, row or image and what to do."""
