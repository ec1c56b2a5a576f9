#!/usr/bin/env python3
"""Checks of the dfluid-burgers and dfluid-plume apps (registered by apps_burgers_plume.cmake).

Each subcommand runs the app on the CPU into a fresh folder and checks exit codes, output files
(parsed with csv, json, h5py) and the published numbers of the Physics-based Deep Learning book (Thuerey et al. 2021):

  burgers-outputs APP DIR      a short run: every output exists and parses
  burgers-published APP DIR    iterations 0, 1, 10, 45 to 4 significant digits (double)
  plume-outputs APP DIR        a short run: every output exists and parses
  plume-published APP DIR N [ARGS..]
                               iteration 0 within 2% of 298.29; with N >= 1 iterations also a
                               loss below 200 (the published run reaches 178.19 at 29); ARGS
                               go to the app (e.g. --wall-tangential no-slip)
  stop-resume APP DIR ARGS..   --stop-after (hidden option, like Ctrl-C) then --resume: the
                               loss column equals an uninterrupted run's bit for bit; a
                               resume with the other --precision is refused (exit 2);
                               ARGS must hold --precision
  sigint-resume APP DIR ARGS.. a real SIGINT while the app iterates: exit 130, state.json;
                               --resume then matches an uninterrupted run bit for bit

Exit code 0: passed; 1: failed; 77: skipped (h5py missing).
"""
import csv
import json
import math
import os
import signal
import subprocess
import sys

from app_test_util import SKIP, check, check_counters, device_args, device_folder, fail, fresh  # noqa: E402



def run(cmd, expect=0):
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    sys.stdout.write(p.stdout[-3000:])
    sys.stdout.write(p.stderr[-3000:])
    check(p.returncode == expect, "exit code %d, expected %d" % (p.returncode, expect))
    return p


def history(folder):
    """history.csv as a list of dicts (values as strings: compared bit for bit)."""
    path = os.path.join(folder, "history.csv")
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    check(rows, "history.csv has no rows")
    for k, r in enumerate(rows):
        check(int(r["iteration"]) == k, "history.csv row %d has iteration %s" % (k, r["iteration"]))
        for key in ("loss", "grad_norm", "step", "seconds"):
            check(math.isfinite(float(r[key])), "history.csv row %d: %s = %s" % (k, key, r[key]))
    return rows


def losses(folder):
    return [float(r["loss"]) for r in history(folder)]


def check_png(path):
    check(os.path.isfile(path), "missing " + path)
    with open(path, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", path + " is not a PNG file")


def load_json(path):
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        return json.load(f)


def h5py_or_skip():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        print("h5py/numpy not available: skipped")
        sys.exit(SKIP)
    import h5py
    return h5py


def check_xdmf(h5path):
    xmf = h5path[:-3] + ".xmf"
    check(os.path.isfile(xmf), "missing XDMF sidecar " + xmf)
    import xml.etree.ElementTree as ET
    ET.parse(xmf)  # well-formed


def sig4(published):
    """Half a unit in the 4th significant digit."""
    return 0.5 * 10 ** (math.floor(math.log10(abs(published))) - 3)


# ---------------------------------------------------------------- burgers ----

def burgers_outputs(app, folder):
    h5py = h5py_or_skip()
    fresh(folder)
    run([app] + device_args() + ["--iterations", "3", "--progress", "lines", "--output", folder])
    rows = history(folder)
    check(len(rows) == 4, "expected iterations 0..3, got %d rows" % len(rows))
    ls = [float(r["loss"]) for r in rows]
    check(all(b < a for a, b in zip(ls, ls[1:])), "Burgers loss does not decrease: %s" % ls)
    check_png(os.path.join(folder, "loss.png"))
    s = load_json(os.path.join(folder, "summary.json"))
    check(s["app"] == "dfluid-burgers" and s["precision"] == "double", "summary: %s" % s)
    check_counters(s)
    check(abs(s["final_loss"] - ls[-1]) <= 1e-12 * ls[-1], "summary final_loss %s" % s["final_loss"])
    st = load_json(os.path.join(folder, "state.json"))
    check(st["next_iteration"] == 3 and len(st["u0"]) == 128 and len(st["history"]) == 3,
          "state.json: next_iteration %s" % st["next_iteration"])
    h5 = os.path.join(folder, "reconstruction.h5")
    check_xdmf(h5)
    with h5py.File(h5, "r") as f:
        check(int(f["grid"].attrs["dim"]) == 1, "reconstruction.h5: /grid dim")
        snaps = f["snapshots"]
        check(sorted(int(k) for k in snaps.keys()) == list(range(33)), "snapshots 0..32")
        for k in snaps:
            check(snaps[k]["u"].shape == (128,), "u shape %s" % (snaps[k]["u"].shape,))
        # The app found the repository's data file by itself (next to its binary).
        ref_file = os.path.join(os.environ["DFLUID_TEST_DATA_DIR"], "burgers_reference_t0.5.txt")
        check(os.path.isfile(ref_file), "missing data file %s" % ref_file)
        ref = [float(x) for x in open(ref_file) if x.strip() and not x.startswith("#")]
        got = list(snaps["00000016"]["reference"][:])
        check(got == ref, "the reference at step 16 differs from %s" % ref_file)
        u0 = snaps["00000000"]["u"][:]
        check(max(abs(a - b) for a, b in zip(u0, st["u0"])) == 0, "u at step 0 != state u0")
    print("burgers outputs OK")


def burgers_published(app, folder):
    fresh(folder)
    run([app] + device_args() + ["--precision", "double", "--iterations", "45", "--progress",
         "lines", "--output", folder])
    ls = losses(folder)
    # Thuerey et al. 2021, Physics-based Deep Learning: Burgers optimization with a DP gradient
    for k, published in ((0, 0.382915), (1, 0.326882), (10, 0.096224), (45, 0.003263)):
        print("iteration %2d: %.8f (published %.6f)" % (k, ls[k], published))
        check(abs(ls[k] - published) <= sig4(published),
              "iteration %d: %.8f differs from %.6f in 4 significant digits" % (k, ls[k], published))
    print("burgers published losses OK")


# ------------------------------------------------------------------ plume ----

def plume_outputs(app, folder):
    h5py = h5py_or_skip()
    fresh(folder)
    steps = 6
    run([app] + device_args() + ["--iterations", "2", "--steps", str(steps), "--progress", "lines",
         "--output", folder])
    rows = history(folder)
    check(len(rows) == 3, "expected iterations 0..2, got %d rows" % len(rows))
    check(float(rows[0]["grad_norm"]) > 0, "zero gradient at iteration 0")
    check_png(os.path.join(folder, "loss.png"))
    for k in range(1, 5):
        check_png(os.path.join(folder, "smoke_entry%d.png" % k))
    check_png(os.path.join(folder, "smoke_overview.png"))
    s = load_json(os.path.join(folder, "summary.json"))
    check(s["app"] == "dfluid-plume" and s["settings"]["steps"] == steps, "summary: %s" % s)
    check_counters(s)
    st = load_json(os.path.join(folder, "state.json"))
    check(st["next_iteration"] == 2 and len(st["initial_velocity"]) == 4, "state.json")
    h5 = os.path.join(folder, "plume.h5")
    check_xdmf(h5)
    with h5py.File(h5, "r") as f:
        check(list(f["grid"].attrs["cells"]) == [32, 40, 1], "plume.h5 /grid cells")
        snaps = f["snapshots"]
        check(sorted(snaps.keys()) == ["00000000", "%08d" % steps], "snapshots %s" % list(snaps))
        s0, sn = snaps["00000000"], snaps["%08d" % steps]
        for k in range(1, 5):
            check(s0["initial_velocity_%d_x" % k].shape == (40, 33), "velocity x shape")
            check(s0["initial_velocity_%d_y" % k].shape == (41, 32), "velocity y shape")
            check(sn["smoke_%d" % k].shape == (40, 32), "smoke shape")
        # The 4th entry produces the reference and is never changed.
        check((sn["smoke_4"][:] == sn["reference"][:]).all(), "smoke_4 != reference")
        check(abs(s0["initial_velocity_4_x"][:]).max() == 0, "entry 4's velocity changed")
        check(abs(s0["initial_velocity_1_y"][:]).max() > 0, "entry 1's velocity unchanged")
        # Walls: the normal velocity on the box sides is 0.
        check(abs(s0["initial_velocity_1_x"][:, 0]).max() == 0, "velocity on the left wall")
        check(abs(s0["initial_velocity_1_y"][0, :]).max() == 0, "velocity on the bottom wall")
        check(sn["reference"][:].max() > 0.5, "the reference has no smoke")
    print("plume outputs OK")


def plume_published(app, folder, iterations, extra):
    fresh(folder)
    run([app] + device_args() + ["--iterations", str(iterations), "--progress", "lines",
         "--output", folder] + extra)
    ls = losses(folder)
    check(len(ls) == iterations + 1, "expected %d rows" % (iterations + 1))
    # Thuerey et al. 2021, Physics-based Deep Learning: differentiable fluid simulations
    rel = (ls[0] - 298.29) / 298.29
    print("iteration 0: %.3f (published 298.29, %+.3f%%)" % (ls[0], 100 * rel))
    check(abs(rel) <= 0.02, "iteration-0 loss %.3f not within 2%% of 298.29" % ls[0])
    if iterations >= 1:
        low = min(ls)
        print("lowest loss %.3f at iteration %d (published: 178.19 at 29)" % (low, ls.index(low)))
        check(low < 200, "the loss did not fall below 200 within %d iterations" % iterations)
    print("plume published losses OK")


# --------------------------------------------------------- stop / resume ----

def loss_column(folder):
    return [(r["iteration"], r["loss"], r["grad_norm"]) for r in history(folder)]


def compare_runs(resumed, straight):
    a, b = loss_column(resumed), loss_column(straight)
    check(len(a) == len(b), "resumed run has %d rows, uninterrupted %d" % (len(a), len(b)))
    for x, y in zip(a, b):
        check(x == y, "resumed %s != uninterrupted %s" % (x, y))
    print("resumed run equals the uninterrupted run bit for bit (%d rows)" % len(a))


def option(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def stop_resume(app, folder, args):
    fresh(folder)
    stopped, straight = os.path.join(folder, "stopped"), os.path.join(folder, "straight")
    iterations = int(option(args, "--iterations", "6"))
    base = [app] + device_args() + ["--progress", "lines"] + args
    run(base + ["--output", stopped, "--stop-after", "1"], expect=130)
    state = os.path.join(stopped, "state.json")
    st = load_json(state)
    check(st["next_iteration"] == 2, "state after --stop-after 1: next_iteration %s"
          % st["next_iteration"])
    check(len(history(stopped)) == 2, "history after the stop: iterations 0..1")
    # Resuming with another problem setting is refused with exit code 2.
    precision = option(args, "--precision", None)
    check(precision in ("float", "double"), "stop-resume needs --precision in its arguments")
    other = ["--precision", "double" if precision == "float" else "float"]
    run(base + other + ["--output", os.path.join(folder, "bad"), "--resume", state], expect=2)
    run(base + ["--output", stopped, "--resume", state])
    run(base + ["--output", straight])
    check(len(history(straight)) == iterations + 1, "uninterrupted run rows")
    compare_runs(stopped, straight)


def sigint_resume(app, folder, args):
    fresh(folder)
    stopped, straight = os.path.join(folder, "stopped"), os.path.join(folder, "straight")
    base = [app] + device_args() + ["--progress", "lines"] + args
    cmd = base + ["--output", stopped, "--iterations", "1000000"]
    print("$ " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    # Wait until the table shows iteration 2, then Ctrl-C.
    for line in p.stdout:
        fields = line.split()
        if len(fields) == 4 and fields[0].isdigit() and int(fields[0]) >= 2:
            break
    else:
        p.wait()
        fail("the app ended before iterating (exit code %s): %s" % (p.returncode, p.stderr.read()))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    sys.stdout.write(err)
    check(p.returncode == 130, "exit code %d after SIGINT, expected 130" % p.returncode)
    state = os.path.join(stopped, "state.json")
    k = load_json(state)["next_iteration"]
    check(k >= 3, "state.json continues at iteration %d (the signal came after iteration 2)" % k)
    check(len(history(stopped)) == k, "history.csv after SIGINT has iterations 0..%d" % (k - 1))
    total = str(k + 2)
    run(base + ["--output", stopped, "--iterations", total, "--resume", state])
    run(base + ["--output", straight, "--iterations", total])
    compare_runs(stopped, straight)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    cmd, app, folder, rest = sys.argv[1], sys.argv[2], device_folder(sys.argv[3]), sys.argv[4:]
    if cmd == "burgers-outputs":
        burgers_outputs(app, folder)
    elif cmd == "burgers-published":
        burgers_published(app, folder)
    elif cmd == "plume-outputs":
        plume_outputs(app, folder)
    elif cmd == "plume-published":
        plume_published(app, folder, int(rest[0]), rest[1:])
    elif cmd == "stop-resume":
        stop_resume(app, folder, rest)
    elif cmd == "sigint-resume":
        sigint_resume(app, folder, rest)
    else:
        print("unknown subcommand " + cmd)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
