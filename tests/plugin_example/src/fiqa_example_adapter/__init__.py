"""Example third-party fiqa-bench adapter package: one quality method, registered as ``example-contrast``."""

from .contrast import ContrastQuality

__all__ = ["ContrastQuality"]
__version__ = "0.1.0"
