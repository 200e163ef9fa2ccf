"""User-facing errors: each is reported as one line naming the bad value, before training starts."""


class GanLabError(Exception):
    """Base for errors the entry points report as a single line (no traceback)."""


class ConfigError(GanLabError, ValueError):
    """A composed config value is out of range or not a known choice."""


class DatasetNotFoundError(GanLabError, FileNotFoundError):
    """A dataset is missing; the message says how to get it."""


class DatasetFormatError(GanLabError, ValueError):
    """A dataset file exists but is not in the expected on-disk format."""


class CheckpointError(GanLabError, ValueError):
    """A checkpoint is missing, unreadable, not the lab's, or from another model."""
