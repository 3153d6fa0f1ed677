"""mutator: mutation testing for transformer code."""

__version__ = "0.1.0"
