"""audiorep: learning representations of audio without labels."""

__version__ = "0.1.0"
