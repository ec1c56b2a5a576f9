"""Helpers shared by the app test drivers (tests/apps_*.py): exit codes and small checks.

The drivers are run as scripts, so Python finds this module next to them.
"""
import os
import shutil
import struct
import subprocess
import sys
import zlib

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


def write_png(path, rows):
    """An 8-bit grayscale PNG from rows of 0..255 values (top row first)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    h, w = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


COUNTER_KEYS = ("launches", "host_waits", "allocations", "frees", "bytes_to_device",
                "bytes_to_host", "peak_bytes")


def check_counters(summary, key="counters"):
    """summary[key] holds the Context counters (common/counters.hpp): every event count a
    non-negative integer, and a run that simulated anything launched kernels and waited."""
    c = summary.get(key)
    check(isinstance(c, dict), "summary.json lacks %s: %s" % (key, sorted(summary)))
    for k in COUNTER_KEYS:
        check(isinstance(c.get(k), int) and c[k] >= 0, "summary %s.%s = %r" % (key, k, c.get(k)))
    check(c["launches"] > 0 and c["host_waits"] > 0, "summary %s counted no work: %s" % (key, c))
    return c


# The device the app tests run on: "cpu" (default) or "cuda" (the *Gpu ctest variants and
# .ci/gpu-run's apps stage set DFLUID_TEST_DEVICE=cuda).
DEVICE = os.environ.get("DFLUID_TEST_DEVICE", "cpu")
if DEVICE not in ("cpu", "cuda"):
    fail("DFLUID_TEST_DEVICE=%r: use cpu or cuda" % DEVICE)


def device_args():
    """["--device", DEVICE]; on "cuda", exits with SKIP when this machine shows no GPU."""
    if DEVICE == "cuda":
        try:
            ok = subprocess.run(["nvidia-smi", "-L"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE).returncode == 0
        except OSError:
            ok = False
        if not ok:
            print("SKIPPED: DFLUID_TEST_DEVICE=cuda and no GPU here (nvidia-smi -L failed)")
            sys.exit(SKIP)
    return ["--device", DEVICE]


def check_device(summary):
    """The summary names the device the run was asked for ("CPU", or the GPU's name)."""
    d = summary.get("device")
    if DEVICE == "cpu":
        check(d == "CPU", "summary device %r, expected CPU" % d)
    else:
        check(isinstance(d, str) and "(cuda:" in d, "summary device %r, expected a GPU" % d)


def device_folder(folder):
    """The run folder for DEVICE: the GPU twin of a test writes next to the CPU one."""
    return folder if DEVICE == "cpu" else folder.rstrip("/") + "-" + DEVICE
