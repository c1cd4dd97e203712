"""``python -m inr_lib ...``: see :mod:`inr_lib.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
