"""shipforge: deployment files from one descriptor."""

__version__ = "0.1.0"
