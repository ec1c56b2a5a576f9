#!/usr/bin/env python3
"""Checks of the dfluid-control app (registered by apps_control.cmake).

Each subcommand runs the app on the CPU (--device cpu, --progress lines) into a fresh folder
DIR and checks exit codes, stdout/stderr and the output files (csv, json, h5py, XML, PNG
chunks read with struct + zlib):

  outputs-2d APP DIR       a tiny 2D run: control.h5 (+ .xmf), summary.json, history.csv,
                           frames/*.png, loss.png, control-state.h5 exist, parse and agree
  outputs-3d APP DIR       the same for a tiny 3D run
  stop-resume APP DIR      --stop-after 3 (hidden option, like Ctrl-C): exit 130 and a state
                           file; --resume to 6 iterations equals an uninterrupted run bit for
                           bit; a state file of other settings is refused (exit 2)
  sigint-resume APP DIR    a real SIGINT after the first iteration line: exit 130, and
                           --resume then equals an uninterrupted run bit for bit
  checkpointed APP DIR     --memory-budget below the minimum: exit 2 naming the minimum; a
                           budget of the minimum + 2 states: "plan: revolve", and the same
                           history as store-all bit for bit
  png-target APP DIR       --target-png of a picture written here (a black disk on white,
                           top-left): the target holds the disk where the picture has it;
                           --png-bright-is-smoke inverts it; --dim 3 is refused
  h5-target APP DIR        --target-h5 of a dfluid-control run's density: the target is that
                           density (rescaled); another grid size is refused naming the grids
  target-error APP DIR     --target-error T stops at the first iteration whose relative
                           keyframe error is <= T (not before, not after)
  dry-run APP DIR          --dry-run --memory-budget 64MiB: the plan with "advances: K", no
                           simulation, no outputs
  acceptance APP DIR       the embedded default 2D scenario: relative keyframe error
                           uncontrolled > 0.5, controlled <= 0.15

Exit code 0: passed; 1: failed; 77: skipped (h5py/numpy missing, for the subcommands that
read HDF5 files).
"""
import csv
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib

from app_test_util import (SKIP, check, check_counters, check_device, device_args, device_folder,  # noqa: E402
                           fail, fresh, write_png)
HISTORY_HEADER = "iteration,loss,grad_norm,step,evaluations,seconds"
SUMMARY_KEYS = ("initial_loss", "final_loss", "relative_keyframe_error_uncontrolled",
                "relative_keyframe_error_controlled", "iterations", "wall_seconds", "device",
                "peak_device_bytes")
# A tiny 2D problem: 32x32 cells, 12 steps, two control fields (default interval 8).
TINY_2D = ["--size", "32", "--steps", "12"]



def run(cmd, expect=0, quiet=False):
    print("$ " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if not quiet or p.returncode != expect:
        sys.stdout.write(p.stdout[-4000:])
    sys.stdout.write(p.stderr[-4000:])
    print("(exit code %d after %.1f s)" % (p.returncode, time.time() - t0))
    check(p.returncode == expect, "exit code %d, expected %d" % (p.returncode, expect))
    check_no_sanitizer_report(p.stderr)
    return p


def check_no_sanitizer_report(stderr):
    for marker in ("runtime error:", "Sanitizer"):
        check(marker not in stderr, "a sanitizer report on stderr (%r)" % marker)


def base(app):
    return [app] + device_args() + ["--progress", "lines"]


def h5py_or_skip():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        print("h5py/numpy not available (%s): skipped; install python3-h5py for %s"
              % (e, sys.executable))
        sys.exit(SKIP)
    import h5py
    import numpy
    return h5py, numpy


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def lround(x):
    """C's lround for x >= 0 (half away from zero)."""
    return int(math.floor(x + 0.5))


# ---------------------------------------------------------------- files ----

def history_rows(folder):
    """history.csv as a list of dicts of strings (compared as text: bit for bit)."""
    path = os.path.join(folder, "history.csv")
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        lines = f.read().splitlines()
    check(lines and lines[0] == HISTORY_HEADER,
          "history.csv header is %r, expected %r" % (lines[0] if lines else "", HISTORY_HEADER))
    rows = list(csv.DictReader(lines))
    check(rows, "history.csv has no rows")
    for k, r in enumerate(rows):
        check(int(r["iteration"]) == k, "history.csv row %d has iteration %s" % (k, r["iteration"]))
        for key in ("loss", "grad_norm", "step", "seconds"):
            check(math.isfinite(float(r[key])), "history.csv row %d: %s = %s" % (k, key, r[key]))
        check(int(r["evaluations"]) >= (1 if k > 0 else 0), "history.csv row %d evaluations" % k)
    return rows


def optimizer_columns(folder):
    """The deterministic columns of history.csv (all but the wall time), as text."""
    return [(r["iteration"], r["loss"], r["grad_norm"], r["step"], r["evaluations"])
            for r in history_rows(folder)]


def compare_histories(a_folder, b_folder, what):
    a, b = optimizer_columns(a_folder), optimizer_columns(b_folder)
    check(len(a) == len(b), "%s: %d history rows against %d" % (what, len(a), len(b)))
    for x, y in zip(a, b):
        check(x == y, "%s: %s != %s" % (what, x, y))
    print("%s: history.csv equal bit for bit (%d rows)" % (what, len(a)))


def load_json(path):
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        return json.load(f)


def check_summary(folder, iterations, rows):
    s = load_json(os.path.join(folder, "summary.json"))
    for key in SUMMARY_KEYS:
        check(key in s, "summary.json lacks %s: %s" % (key, sorted(s)))
    for key in SUMMARY_KEYS:
        if key != "device":
            check(isinstance(s[key], (int, float)) and math.isfinite(s[key]),
                  "summary.json %s = %r" % (key, s[key]))
    check(s["app"] == "dfluid-control", "summary app %r" % s.get("app"))
    check_device(s)
    check(s["iterations"] == iterations, "summary iterations %s" % s["iterations"])
    check(s["initial_loss"] == float(rows[0]["loss"]), "summary initial_loss != history row 0")
    check(s["final_loss"] == float(rows[-1]["loss"]), "summary final_loss != last history row")
    check(s["final_loss"] < s["initial_loss"],
          "the loss did not decrease: %s -> %s" % (s["initial_loss"], s["final_loss"]))
    unc, con = s["relative_keyframe_error_uncontrolled"], s["relative_keyframe_error_controlled"]
    check(unc > 0 and 0 <= con < unc, "keyframe errors uncontrolled %s, controlled %s" % (unc, con))
    check(s["wall_seconds"] > 0 and s["peak_device_bytes"] >= 0, "wall_seconds/peak_device_bytes")
    total, opt = check_counters(s), check_counters(s, "counters_optimization")
    for k in ("launches", "host_waits", "allocations", "bytes_to_host"):
        check(opt[k] <= total[k], "counters_optimization.%s %s > counters.%s %s"
              % (k, opt[k], k, total[k]))
    return s


def png_info(path):
    """Checks a PNG file chunk by chunk (signature, CRCs, IHDR, IDAT inflating to the right
    size, IEND) and returns (width, height)."""
    check(os.path.isfile(path), "missing " + path)
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", path + ": no PNG signature")
    pos, chunks = 8, []
    while pos < len(data):
        check(pos + 12 <= len(data), path + ": truncated chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        check(len(body) == length, path + ": truncated chunk " + repr(kind))
        check(zlib.crc32(kind + body) & 0xFFFFFFFF == crc, path + ": bad CRC in " + repr(kind))
        chunks.append((kind, body))
        pos += 12 + length
    check(chunks and chunks[0][0] == b"IHDR", path + ": first chunk is not IHDR")
    check(chunks[-1][0] == b"IEND", path + ": last chunk is not IEND")
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    check(w > 0 and h > 0 and depth == 8 and interlace == 0,
          "%s: IHDR %dx%d depth %d interlace %d" % (path, w, h, depth, interlace))
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    check(channels is not None, "%s: colour type %d" % (path, ctype))
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    check(len(raw) == h * (1 + w * channels),
          "%s: %d bytes of image data for %dx%d" % (path, len(raw), w, h))
    return w, h


def face_shape(dim, n, axis):
    """numpy shape of the faces normal to `axis` on an n^dim box with walls ([z][y][x])."""
    ext = [n] * dim
    ext[axis] += 1
    return tuple(reversed(ext))


def check_xdmf(h5py, folder, snapshot_count):
    xmf = os.path.join(folder, "control.xmf")
    check(os.path.isfile(xmf), "missing " + xmf)
    root = ET.parse(xmf).getroot()
    check(root.tag == "Xdmf", "control.xmf: root element %s" % root.tag)
    grids = root.findall("Domain/Grid/Grid")
    check(len(grids) == snapshot_count,
          "control.xmf has %d grids, control.h5 %d snapshots" % (len(grids), snapshot_count))
    named = set()
    with h5py.File(os.path.join(folder, "control.h5"), "r") as f:
        for g in grids:
            for attr in g.findall("Attribute"):
                item = attr.find("DataItem")
                fname, dpath = item.text.strip().split(":", 1)
                check(fname == "control.h5", "control.xmf names the file %s" % fname)
                check(dpath in f, "control.xmf names %s, which control.h5 lacks" % dpath)
                dims = tuple(int(x) for x in item.get("Dimensions").split())
                check(dims == f[dpath].shape,
                      "control.xmf: %s has Dimensions %s, stored %s" % (dpath, dims, f[dpath].shape))
                named.add(attr.get("Name"))
    for name in ("density", "target", "velocity", "force"):
        check(name in named, "control.xmf has no attribute %s (has %s)" % (name, sorted(named)))


def check_h5(h5py, np, folder, dim, n, steps, interval, control_interval, iterations, summary):
    path = os.path.join(folder, "control.h5")
    check(os.path.isfile(path), "missing " + path)
    cells = (n,) * dim
    with h5py.File(path, "r") as f:
        check(text(f.attrs["format"]) == "dfluid.snapshots", "control.h5 format attribute")
        g = f["grid"].attrs
        check(int(g["dim"]) == dim, "/grid dim %s" % g["dim"])
        check([int(c) for c in g["cells"]][:dim] == [n] * dim, "/grid cells %s" % g["cells"])
        run_attrs = f["run"].attrs
        check(text(run_attrs["app"]) == "dfluid-control", "/run app")
        check(int(run_attrs["steps"]) == steps and int(run_attrs["iterations"]) == iterations,
              "/run steps %s iterations %s" % (run_attrs["steps"], run_attrs["iterations"]))
        snaps = f["snapshots"]
        expected = ["%08d" % k for k in range(0, steps + 1, interval)]
        check(sorted(snaps.keys()) == expected,
              "snapshots %s, expected %s" % (sorted(snaps.keys()), expected))
        target0 = snaps[expected[0]]["target"][()]
        for name in expected:
            s = snaps[name]
            k = int(s.attrs["step"])
            check(name == "%08d" % k, "group %s holds step %d" % (name, k))
            for d in ("density", "target"):
                check(d in s and s[d].shape == cells, "%s/%s shape %s, expected %s"
                      % (name, d, s[d].shape if d in s else None, cells))
            for vec in ("velocity", "force"):
                for a in range(dim):
                    d = "%s_%s" % (vec, "xyz"[a])
                    check(d in s and s[d].shape == face_shape(dim, n, a),
                          "%s/%s shape %s, expected %s"
                          % (name, d, s[d].shape if d in s else None, face_shape(dim, n, a)))
                    # Closed box: no flow through the walls normal to the axis.
                    v = s[d][()]
                    nax = dim - 1 - a
                    if vec == "velocity":
                        check(not np.take(v, [0, -1], axis=nax).any(),
                              "%s/%s is not zero on the walls" % (name, d))
            check(np.array_equal(s["target"][()], target0), "%s/target differs from step 0" % name)
            if k == steps:
                for a in range(dim):
                    check(not s["force_%s" % "xyz"[a]][()].any(),
                          "the force written with the last state is not zero")
        s0 = snaps[expected[0]]
        check(not any(s0["velocity_%s" % "xyz"[a]][()].any() for a in range(dim)),
              "the initial velocity is not zero (no --optimize-velocity)")
        check(any(s0["force_%s" % "xyz"[a]][()].any() for a in range(dim)),
              "the optimized force of the first interval is zero")
        # Forces are held for control_interval steps.
        for name in expected:
            k = int(name)
            k0 = (k // control_interval) * control_interval
            if k < steps and k0 != k and "%08d" % k0 in snaps:
                for a in range(dim):
                    d = "force_%s" % "xyz"[a]
                    check(np.array_equal(snaps[name][d][()], snaps["%08d" % k0][d][()]),
                          "%s at step %d differs from step %d of its control interval" % (d, k, k0))
        # The smoke starts with the target's mass (the target is rescaled to it).
        m0, mt = float(s0["density"][()].sum(dtype=np.float64)), float(target0.sum(dtype=np.float64))
        check(m0 > 0 and abs(m0 - mt) <= 1e-4 * m0, "initial mass %g, target mass %g" % (m0, mt))
        # The keyframe (the last step) as stored agrees with the summary's controlled error.
        if "%08d" % steps in snaps:
            d = snaps["%08d" % steps]["density"][()].astype(np.float64) - target0
            rel = math.sqrt(float((d * d).sum()) / float((target0.astype(np.float64) ** 2).sum()))
            want = summary["relative_keyframe_error_controlled"]
            check(abs(rel - want) <= 1e-4 * want,
                  "keyframe error from control.h5 %.6f, summary %.6f" % (rel, want))
        return len(expected)


def check_state_file(h5py, folder, iteration):
    path = os.path.join(folder, "control-state.h5")
    check(os.path.isfile(path), "missing " + path)
    with h5py.File(path, "r") as f:
        attrs = f["run"].attrs
        check(int(attrs["iteration"]) == iteration,
              "control-state.h5 holds iteration %s, expected %d" % (attrs["iteration"], iteration))
        check(text(attrs["fingerprint"]).startswith("dfluid-control"), "state fingerprint")
        snaps = f["snapshots"]
        check(len(snaps) == 1 and "parameters" in list(snaps.values())[0],
              "control-state.h5 holds no parameters")


def state_parameters(h5py, folder):
    with h5py.File(os.path.join(folder, "control-state.h5"), "r") as f:
        return list(f["snapshots"].values())[0]["parameters"][()]


def check_no_temporaries(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            check(".tmp" not in name, "a temporary file was left behind: " + os.path.join(root, name))


def check_outputs(folder, dim, n, steps, iterations, frames, interval, control_interval):
    h5py, np = h5py_or_skip()
    rows = history_rows(folder)
    check(len(rows) == iterations + 1,
          "history.csv has %d rows, expected iterations 0..%d" % (len(rows), iterations))
    summary = check_summary(folder, iterations, rows)
    count = check_h5(h5py, np, folder, dim, n, steps, interval, control_interval, iterations,
                     summary)
    check_xdmf(h5py, folder, count)
    check_state_file(h5py, folder, iterations)
    # Frames: `frames` evenly spaced steps (0 and the last included) and the keyframe.
    names = sorted({"step_%04d.png" % lround(f * steps / frames) for f in range(frames + 1)}
                   | {"step_%04d.png" % steps})
    got = sorted(os.listdir(os.path.join(folder, "frames")))
    check(got == names, "frames/ holds %s, expected %s" % (got, names))
    scale = max(1, 256 // n)
    panels = 2 if dim == 2 else 4
    for name in names:
        w, h = png_info(os.path.join(folder, "frames", name))
        check(w >= panels * n * scale and h >= n * scale,
              "frames/%s is %dx%d, too small for %d panels of %d pixels" % (name, w, h, panels,
                                                                              n * scale))
    w, h = png_info(os.path.join(folder, "loss.png"))
    check((w, h) == (640, 400), "loss.png is %dx%d" % (w, h))
    check_no_temporaries(folder)
    print("outputs OK: %d snapshots, %d frames, loss %.6e -> %.6e, keyframe error %.4f -> %.4f"
          % (count, len(names), summary["initial_loss"], summary["final_loss"],
             summary["relative_keyframe_error_uncontrolled"],
             summary["relative_keyframe_error_controlled"]))


# ---------------------------------------------------------------- tests ----

def outputs_2d(app, folder):
    h5py_or_skip()
    fresh(folder)
    run(base(app) + TINY_2D + ["--iterations", "3", "--frames", "2", "--output", folder])
    check_outputs(folder, dim=2, n=32, steps=12, iterations=3, frames=2, interval=1,
                  control_interval=8)


def outputs_3d(app, folder):
    h5py_or_skip()
    fresh(folder)
    # The default --control-interval (8) exceeds 6 steps; 3 gives two control fields.
    run(base(app) + ["--dim", "3", "--size", "12", "--steps", "6", "--control-interval", "3",
                     "--iterations", "2", "--frames", "2", "--h5-interval", "2", "--output",
                     folder])
    check_outputs(folder, dim=3, n=12, steps=6, iterations=2, frames=2, interval=2,
                  control_interval=3)


def stop_resume(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    stopped, straight = os.path.join(folder, "stopped"), os.path.join(folder, "straight")
    args = base(app) + TINY_2D + ["--iterations", "6", "--frames", "0"]
    run(args + ["--output", straight])
    check(len(history_rows(straight)) == 7, "the uninterrupted run has not 7 history rows")
    p = run(args + ["--output", stopped, "--stop-after", "3"], expect=130)
    check("--resume" in p.stdout, "the stop message does not tell how to continue")
    check(len(history_rows(stopped)) == 4, "history.csv after --stop-after 3: not iterations 0..3")
    check_state_file(h5py, stopped, 3)
    for name in ("control.h5", "summary.json"):
        check(not os.path.exists(os.path.join(stopped, name)), name + " written by a stopped run")
    state = os.path.join(stopped, "control-state.h5")
    # A state file of other settings is refused.
    # Every option that changes the objective, the controls or the optimizer's path.
    for other in (["--optimizer", "adam"], ["--precision", "double"], ["--control-interval", "4"],
                  ["--keyframes", "6", "12"], ["--control-smoothing", "1"], ["--effort", "1e-3"],
                  ["--blob-radius", "4"], ["--tolerance", "1e-5"], ["--learning-rate", "0.5"],
                  ["--lbfgs-history", "4"], ["--optimize-velocity"], ["--dt", "0.5"]):
        run(args + other + ["--output", os.path.join(folder, "refused"), "--resume", state],
            expect=2)
    p = run(args + ["--output", stopped, "--resume", state])
    check("resumed from" in p.stdout and "at iteration 3" in p.stdout, "no 'resumed' line")
    compare_histories(stopped, straight, "stopped at 3 + resumed vs uninterrupted")
    check(np.array_equal(state_parameters(h5py, stopped), state_parameters(h5py, straight)),
          "the final controls differ between the resumed and the uninterrupted run")
    a = load_json(os.path.join(stopped, "summary.json"))
    b = load_json(os.path.join(straight, "summary.json"))
    for key in ("final_loss", "relative_keyframe_error_controlled", "iterations"):
        check(a[key] == b[key], "summary %s: resumed %s, uninterrupted %s" % (key, a[key], b[key]))


def sigint_resume(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    stopped, straight = os.path.join(folder, "stopped"), os.path.join(folder, "straight")
    args = base(app) + TINY_2D + ["--frames", "0"]
    cmd = args + ["--output", stopped, "--iterations", "1000000"]
    print("$ " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    for line in p.stdout:
        sys.stdout.write(line)
        fields = line.split()
        # The first iteration line: "     1  <loss>  <|grad|>  <step>  <evals>  <seconds>"
        if len(fields) >= 6 and fields[0].isdigit() and int(fields[0]) >= 1:
            break
    else:
        p.wait()
        fail("the app ended before iterating (exit code %s): %s" % (p.returncode, p.stderr.read()))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    sys.stdout.write(out[-3000:] + err)
    check(p.returncode == 130, "exit code %d after SIGINT, expected 130" % p.returncode)
    check_no_sanitizer_report(err)
    check("stopped by signal %d" % signal.SIGINT in out, "no 'stopped by signal' message")
    state = os.path.join(stopped, "control-state.h5")
    check(os.path.isfile(state), "no control-state.h5 after SIGINT")
    with h5py.File(state, "r") as f:
        k = int(f["run"].attrs["iteration"])
    check(k >= 1, "the state file holds iteration %d; the signal came after iteration 1" % k)
    check(len(history_rows(stopped)) == k + 1, "history.csv after SIGINT: not iterations 0..%d" % k)
    print("stopped after iteration %d" % k)
    total = str(k + 2)
    run(args + ["--output", stopped, "--iterations", total, "--resume", state], quiet=True)
    run(args + ["--output", straight, "--iterations", total], quiet=True)
    compare_histories(stopped, straight, "SIGINT + resumed vs uninterrupted")
    check(np.array_equal(state_parameters(h5py, stopped), state_parameters(h5py, straight)),
          "the final controls differ between the resumed and the uninterrupted run")


def checkpointed(app, folder):
    fresh(folder)
    args = base(app) + TINY_2D + ["--control-interval", "4", "--iterations", "3", "--frames", "0"]
    p = run(args + ["--output", os.path.join(folder, "too_small"), "--memory-budget", "1000"],
            expect=2)
    err = p.stderr.strip()
    check(err and "\n" not in err, "expected one error line, got %r" % err)
    m = re.search(r"minimum of (\d+) bytes \(one state of (\d+) bytes", err)
    check(m is not None, "the error line names no minimum budget: %r" % err)
    minimum, state = int(m.group(1)), int(m.group(2))
    check(0 < state < minimum, "minimum %d, state %d" % (minimum, state))
    store_all, revolve = os.path.join(folder, "store_all"), os.path.join(folder, "revolve")
    p = run(args + ["--output", store_all])
    check("keeps all 12 states" in p.stdout, "no store-all line without --memory-budget")
    # Three device slots for 12 steps: a binomial (Revolve) schedule that recomputes.
    p = run(args + ["--output", revolve, "--memory-budget", str(minimum + 2 * state)])
    check(re.search(r"^plan: revolve$", p.stdout, re.M) is not None,
          "the plan of a %d-byte budget is not revolve" % (minimum + 2 * state))
    adv = re.search(r"^advances: (\d+)$", p.stdout, re.M)
    check(adv is not None and int(adv.group(1)) > 11,
          "a revolve plan with 3 slots advances more than 11 steps: %s" % (adv and adv.group(0)))
    compare_histories(revolve, store_all, "revolve vs store-all")
    a = load_json(os.path.join(revolve, "summary.json"))
    b = load_json(os.path.join(store_all, "summary.json"))
    check(a["relative_keyframe_error_controlled"] == b["relative_keyframe_error_controlled"],
          "controlled keyframe error: revolve %s, store-all %s"
          % (a["relative_keyframe_error_controlled"], b["relative_keyframe_error_controlled"]))


def png_target(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    # 64x64 white picture with a black disk of radius 12 pixels in the top-left quadrant.
    pic = os.path.join(folder, "disk.png")
    write_png(pic, [[0 if (x + 0.5 - 16) ** 2 + (y + 0.5 - 16) ** 2 <= 144 else 255
                     for x in range(64)] for y in range(64)])
    check(png_info(pic) == (64, 64), "the picture written here does not read back")
    args = base(app) + TINY_2D + ["--iterations", "2", "--frames", "0", "--target-png", pic]

    def quadrant_share(out):
        with h5py.File(os.path.join(out, "control.h5"), "r") as f:
            t = f["snapshots/00000000/target"][()].astype(np.float64)
        check(t.shape == (32, 32) and t.min() >= 0 and t.sum() > 0, "target of %s" % out)
        # Row 0 of the picture is the top: high y, the last rows of [y][x].
        return t[16:, :16].sum() / t.sum()

    dark = os.path.join(folder, "dark_is_smoke")
    p = run(args + ["--output", dark])
    check("target picture" in p.stdout, "no 'target picture' in the report")
    share = quadrant_share(dark)
    print("share of the target in the top-left quadrant: %.3f" % share)
    check(share > 0.9, "the disk is not in the top-left quadrant of the target (share %.3f)" % share)
    check(png_info(os.path.join(dark, "loss.png")) == (640, 400), "loss.png")
    bright = os.path.join(folder, "bright_is_smoke")
    run(args + ["--output", bright, "--png-bright-is-smoke"])
    share = quadrant_share(bright)
    print("with --png-bright-is-smoke: %.3f" % share)
    check(share < 0.25, "--png-bright-is-smoke: the top-left quadrant holds %.3f" % share)
    p = run(base(app) + ["--dim", "3", "--size", "12", "--steps", "6", "--control-interval", "3",
                         "--target-png", pic, "--output", os.path.join(folder, "in3d")], expect=2)
    check("--target-png" in p.stderr, "the 3D refusal does not name --target-png")


def h5_target(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    source = os.path.join(folder, "source")
    run(base(app) + TINY_2D + ["--iterations", "1", "--frames", "0", "--output", source],
        quiet=True)
    h5 = os.path.join(source, "control.h5")
    out = os.path.join(folder, "from_h5")
    p = run(base(app) + TINY_2D + ["--iterations", "2", "--frames", "0", "--target-h5", h5,
                                   "--target-dataset", "density", "--target-step", "12",
                                   "--output", out])
    check("target 'density' from" in p.stdout, "the report does not name the HDF5 target")
    with h5py.File(h5, "r") as f:
        src = f["snapshots/00000012/density"][()].astype(np.float64)
    with h5py.File(os.path.join(out, "control.h5"), "r") as f:
        tgt = f["snapshots/00000000/target"][()].astype(np.float64)
    scale = tgt.sum() / src.sum()
    print("target = %.6f x the source density at step 12" % scale)
    check(abs(scale - 1) < 0.05, "the target's mass differs from the source's by %g" % (scale - 1))
    check(np.allclose(tgt, scale * src, rtol=1e-5, atol=1e-6 * src.max()),
          "the target is not the source density at step 12 (max diff %g)"
          % abs(tgt - scale * src).max())
    # A target of another grid is refused naming both grids.
    p = run(base(app) + ["--size", "24", "--steps", "12", "--target-h5", h5,
                         "--output", os.path.join(folder, "mismatch")], expect=2)
    err = p.stderr.strip()
    check("\n" not in err and "--target-h5" in err and "32x32" in err and "24x24" in err,
          "the grid mismatch error does not name both grids on one line: %r" % err)


def target_error(app, folder):
    fresh(folder)
    target, iterations = 0.45, 20
    # --effort 0: the loss is the keyframe term alone, 1/2 (relative keyframe error)^2.
    run(base(app) + TINY_2D + ["--effort", "0", "--iterations", str(iterations), "--frames", "0",
                               "--target-error", str(target), "--output", folder])
    rows = history_rows(folder)
    errors = [math.sqrt(2 * float(r["loss"])) for r in rows]
    print("relative keyframe errors: " + " ".join("%.4f" % e for e in errors))
    check(len(rows) < iterations + 1, "--target-error %g never stopped the run" % target)
    check(errors[-1] <= target, "stopped at error %.4f > --target-error %g" % (errors[-1], target))
    check(all(e > target for e in errors[:-1]),
          "--target-error %g: the run went on past an iteration that reached it" % target)
    s = load_json(os.path.join(folder, "summary.json"))
    con = s["relative_keyframe_error_controlled"]
    check(abs(con - errors[-1]) <= 1e-4 * con,
          "summary controlled error %.6f, last history row %.6f" % (con, errors[-1]))


def dry_run(app, folder):
    fresh(folder)
    t0 = time.time()
    p = run(base(app) + ["--dry-run", "--memory-budget", "64MiB", "--output", folder])
    seconds = time.time() - t0
    m = re.search(r"^advances: (\d+)$", p.stdout, re.M)
    check(m is not None, "no line 'advances: K'")
    check(int(m.group(1)) >= 63, "advances: %s for 64 steps" % m.group(1))
    check(re.search(r"^plan: ", p.stdout, re.M) is not None, "no 'plan:' line")
    check(seconds < 30, "the dry run took %.1f s" % seconds)
    left = sorted(os.listdir(folder))
    check(left == [], "a dry run wrote %s" % left)
    print("dry run OK in %.2f s: %s" % (seconds, m.group(0)))


def acceptance(app, folder):
    fresh(folder)
    p = run(base(app) + ["--output", folder], quiet=True)
    sys.stdout.write("\n".join(p.stdout.splitlines()[-8:]) + "\n")
    rows = history_rows(folder)
    s = load_json(os.path.join(folder, "summary.json"))
    unc, con = s["relative_keyframe_error_uncontrolled"], s["relative_keyframe_error_controlled"]
    print("default scenario (%s, %s steps, %s iterations): relative keyframe error uncontrolled "
          "%.4f, controlled %.4f; wall time %.1f s"
          % (s["grid"], s["steps"], s["iterations"], unc, con, s["wall_seconds"]))
    check(s["grid"].startswith("2D 128x128") and s["steps"] == 64 and s["iterations"] == 30,
          "not the default scenario: %s, %s steps, %s iterations"
          % (s["grid"], s["steps"], s["iterations"]))
    check(len(rows) == 31, "history.csv has %d rows" % len(rows))
    check(unc > 0.5, "uncontrolled relative keyframe error %.4f <= 0.5" % unc)
    check(con <= 0.15, "controlled relative keyframe error %.4f > 0.15" % con)


COMMANDS = {
    "outputs-2d": outputs_2d,
    "outputs-3d": outputs_3d,
    "stop-resume": stop_resume,
    "sigint-resume": sigint_resume,
    "checkpointed": checkpointed,
    "png-target": png_target,
    "h5-target": h5_target,
    "target-error": target_error,
    "dry-run": dry_run,
    "acceptance": acceptance,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    COMMANDS[sys.argv[1]](sys.argv[2], device_folder(sys.argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
