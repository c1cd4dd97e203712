"""``google.colab.drive`` stand-in: ``mount`` records each call and makes ``MyDrive``.

Every call appends one line (the mount point) to the file ``$INR_TEST_DRIVE_LOG``, so a test
can count the mounts of several notebooks, each run in its own kernel.
"""
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    """Record the call and create ``mountpoint/MyDrive``, as an accepted Colab prompt does."""
    log = os.environ.get("INR_TEST_DRIVE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{mountpoint}\n")
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
