"""The version of inr_lib (kept apart so that every module can read it without importing the package)."""
__version__ = "0.1.0"
