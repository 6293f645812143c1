"""shipforge: deployment files from one descriptor."""

__version__ = "0.2.0"
