"""Helpers shared by the app test drivers (tests/apps_*.py): exit codes and small checks.

The drivers are run as scripts, so Python finds this module next to them.
"""
import os
import shutil
import sys

SKIP = 77  # ctest SKIP_RETURN_CODE: a needed Python module (h5py, numpy) is missing


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def fresh(folder):
    """An empty folder (removed and created again)."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder
