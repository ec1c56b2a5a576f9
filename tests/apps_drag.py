#!/usr/bin/env python3
"""Checks of the dfluid-drag app (registered by apps_drag.cmake).

Each subcommand runs the app (--device from DFLUID_TEST_DEVICE, --progress lines) on a tiny
channel into a fresh folder DIR and checks exit codes, stdout and the output files (csv, json,
h5py, XML, PNG chunks read with struct + zlib):

  outputs APP DIR        a short optimization: drag.h5 (+ .xmf), summary.json, history.csv,
                         drag.csv, inflow.csv, frames/*.png, loss.png, drag-state.h5 exist,
                         parse and agree with each other (the drag in the summary is the mean
                         of drag.csv over the window, the flow rate of the fixed-flux profile
                         is the base profile's, the body in drag.h5 is the cylinder)
  gradient APP DIR       --check-gradient: the adjoint gradient of the mean drag (+ the
                         regularization) with respect to the inflow's modes, along random
                         directions, equals central differences of the loss (double, tight
                         pressure tolerance) to 1e-6, for the fixed and the free flow rate
  drag-falls APP DIR     a few L-BFGS iterations: the loss falls at every iteration and the
                         optimized inflow's mean drag is below the parabolic profile's
  stop-resume APP DIR    --stop-after 2 (hidden option, like Ctrl-C): exit 130 and a state
                         file; --resume to 4 iterations equals an uninterrupted run bit for
                         bit; a state file of other settings is refused (exit 2)
  rotation APP DIR       --control rotation: --check-gradient equals central differences;
                         a short optimization spins the cylinder and lowers the drag
  checkpointed APP DIR   --memory-budget below the minimum is refused naming it; a budget of
                         the minimum + 2 states plans Revolve and gives the store-all history
                         bit for bit
  mask APP DIR           --mask of a picture written here (a dark square): the body in
                         drag.h5 is that square and its frontal height sets the Reynolds
                         number's length
  fractions APP DIR      --surface fractions (the face-fraction cylinder, its no-slip wall at
                         its true distance): --check-gradient of the inflow modes and of the
                         rotation rate equals central differences to 1e-6; a short
                         optimization lowers the drag; the summary names the surface
  acceptance APP DIR     the embedded default (Re = 20 behind the cylinder): the drag falls by
                         at least 10% (about a minute on 2 cores: not registered with ctest)

Exit code 0: passed; 1: failed; 77: skipped (h5py/numpy missing).
"""
import csv
import json
import math
import os
import re
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib

from app_test_util import (SKIP, check, check_counters, check_device, device_args,  # noqa: E402
                           device_folder, fail, fresh, write_png)

HISTORY_HEADER = "iteration,loss,grad_norm,step,evaluations,seconds"
# A tiny channel: 12 cells across (the cylinder spans 3), 6 diameters long (18 cells),
# 12 steps of 0.2 from rest, the drag averaged over the last 6 states.
TINY = ["--size", "12", "--length", "6", "--steps", "12", "--dt", "0.2"]


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
    for marker in ("runtime error:", "Sanitizer"):
        check(marker not in p.stderr, "a sanitizer report on stderr (%r)" % marker)
    return p


def with_option(args, name, value):
    """args with option `name` set to `value` (replaced where args has it, else appended)."""
    if name in args:
        i = args.index(name)
        return args[:i + 1] + [value] + args[i + 2:]
    return args + [name, value]


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


def load_json(path):
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        return json.load(f)


def csv_rows(path, header):
    check(os.path.isfile(path), "missing " + path)
    with open(path) as f:
        lines = f.read().splitlines()
    check(lines and lines[0] == header, "%s: header %r, expected %r"
          % (path, lines[0] if lines else "", header))
    rows = list(csv.DictReader(lines))
    check(rows, path + " has no rows")
    return rows


def history_rows(folder):
    rows = csv_rows(os.path.join(folder, "history.csv"), HISTORY_HEADER)
    for k, r in enumerate(rows):
        check(int(r["iteration"]) == k, "history.csv row %d has iteration %s" % (k, r["iteration"]))
        for key in ("loss", "grad_norm", "step", "seconds"):
            check(math.isfinite(float(r[key])), "history.csv row %d: %s = %s" % (k, key, r[key]))
    return rows


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
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    check(w > 0 and h > 0 and depth == 8 and interlace == 0 and channels is not None,
          "%s: IHDR %dx%d depth %d type %d" % (path, w, h, depth, ctype))
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    check(len(raw) == h * (1 + w * channels),
          "%s: %d bytes of image data for %dx%d" % (path, len(raw), w, h))
    return w, h


def cylinder_cells(np, nx, ny):
    """The staircase cylinder of channel.cpp: cells whose centre lies within 0.5 of (2, 2)."""
    dx = 4.1 / ny
    x = (np.arange(nx) + 0.5) * dx - 2.0
    y = (np.arange(ny) + 0.5) * dx - 2.0
    return ((x[None, :] ** 2 + y[:, None] ** 2) <= 0.25).astype(np.float64)  # [y][x]


def check_outputs(folder, iterations, steps, dt, frames, nx, ny, body=None):
    h5py, np = h5py_or_skip()
    rows = history_rows(folder)
    check(len(rows) == iterations + 1, "history.csv has %d rows, expected iterations 0..%d"
          % (len(rows), iterations))
    s = load_json(os.path.join(folder, "summary.json"))
    for key in ("initial_loss", "final_loss", "drag_uncontrolled", "drag_optimized",
                "drag_reduction", "flow_rate_base", "flow_rate_optimized", "wall_seconds"):
        check(isinstance(s.get(key), (int, float)) and math.isfinite(s[key]),
              "summary.json %s = %r" % (key, s.get(key)))
    check(s["app"] == "dfluid-drag", "summary app %r" % s.get("app"))
    check_device(s)
    check(s["iterations"] == iterations, "summary iterations %s" % s["iterations"])
    check(s["initial_loss"] == float(rows[0]["loss"]), "summary initial_loss != history row 0")
    check(s["final_loss"] == float(rows[-1]["loss"]), "summary final_loss != last history row")
    total, opt = check_counters(s), check_counters(s, "counters_optimization")
    check(opt["launches"] <= total["launches"], "counters_optimization above counters")
    check(s["drag_uncontrolled"] > 0, "uncontrolled drag %s" % s["drag_uncontrolled"])
    check(abs(s["drag_reduction"] - (1 - s["drag_optimized"] / s["drag_uncontrolled"])) < 1e-12,
          "drag_reduction is not 1 - optimized / uncontrolled")

    # drag.csv: one row per state; the summary's drags are its means over the window.
    header = "step,time,drag_uncontrolled,drag_optimized,lift_uncontrolled,lift_optimized"
    drag = csv_rows(os.path.join(folder, "drag.csv"), header)
    check(len(drag) == steps + 1, "drag.csv has %d rows for %d steps" % (len(drag), steps))
    start = s["average_from_state"]
    check(start == steps - steps // 2 + 1, "average_from_state %s" % start)
    for key, col in (("drag_uncontrolled", "drag_uncontrolled"),
                     ("drag_optimized", "drag_optimized")):
        window = [float(r[col]) for r in drag[start:]]
        mean = sum(window) / len(window)
        check(abs(mean - s[key]) <= 1e-6 * abs(s[key]),
              "summary %s %.8f, mean of drag.csv over states %d.. %.8f" % (key, s[key], start, mean))
    check(float(drag[0]["drag_uncontrolled"]) == 0, "a drag at rest (state 0)")

    # inflow.csv: the base profile is the parabola of mean 1; the fixed flow rate is kept.
    prof = csv_rows(os.path.join(folder, "inflow.csv"), "y,base,optimized")
    check(len(prof) == ny, "inflow.csv has %d rows for %d faces" % (len(prof), ny))
    dy = 4.1 / ny
    base_rate = sum(float(r["base"]) for r in prof) * dy
    opt_rate = sum(float(r["optimized"]) for r in prof) * dy
    check(abs(base_rate - 4.1) < 1e-6, "the base profile's flow rate %.8f, not 4.1" % base_rate)
    if s["flux"] == "fixed":
        check(abs(opt_rate - base_rate) < 1e-5,
              "fixed flux: flow rate %.8f, base %.8f" % (opt_rate, base_rate))
    check(abs(s["flow_rate_optimized"] - opt_rate) < 1e-5, "summary flow_rate_optimized")
    check(any(abs(float(r["optimized"]) - float(r["base"])) > 1e-6 for r in prof)
          or iterations == 0, "the optimized profile equals the base profile")

    # drag.h5 and drag.xmf.
    path = os.path.join(folder, "drag.h5")
    interval = max(1, steps // 16)
    expected = sorted({"%08d" % k for k in range(0, steps + 1, interval)} | {"%08d" % steps})
    with h5py.File(path, "r") as f:
        check(text(f.attrs["format"]) == "dfluid.snapshots", "drag.h5 format attribute")
        check([int(c) for c in f["grid"].attrs["cells"]][:2] == [nx, ny],
              "/grid cells %s" % f["grid"].attrs["cells"])
        check(text(f["run"].attrs["app"]) == "dfluid-drag", "/run app")
        snaps = f["snapshots"]
        check(sorted(snaps.keys()) == expected, "snapshots %s, expected %s"
              % (sorted(snaps.keys()), expected))
        last = snaps["%08d" % steps]
        for name, shape in (("velocity_x", (ny, nx + 1)), ("velocity_y", (ny + 1, nx)),
                            ("pressure", (ny, nx)), ("vorticity", (ny, nx)), ("body", (ny, nx))):
            check(name in last and last[name].shape == shape, "%s shape %s, expected %s"
                  % (name, last[name].shape if name in last else None, shape))
        solid = last["body"][()].astype(np.float64)
        want = cylinder_cells(np, nx, ny) if body is None else body
        check(np.array_equal(solid, want), "the body in drag.h5 is not the expected one")
        u = last["velocity_x"][()].astype(np.float64)
        # The inflow faces hold the optimized profile.
        opt = np.array([float(r["optimized"]) for r in prof])
        check(np.allclose(u[:, 0], opt, rtol=1e-5, atol=1e-6),
              "velocity_x on the inflow side is not the optimized profile")
        # No-slip obstacle: no flow through the body's faces, vorticity 0 inside.
        w = last["vorticity"][()]
        check(not (w * solid).any(), "vorticity inside the body")
        check(float(np.abs(w).max()) > 0, "no vorticity in the flow")
        count = len(snaps)
    xmf = os.path.join(folder, "drag.xmf")
    check(os.path.isfile(xmf), "missing " + xmf)
    grids = ET.parse(xmf).getroot().findall("Domain/Grid/Grid")
    check(len(grids) == count, "drag.xmf has %d grids, drag.h5 %d snapshots" % (len(grids), count))
    names = {a.get("Name") for g in grids for a in g.findall("Attribute")}
    for name in ("velocity", "pressure", "vorticity", "body"):
        check(name in names, "drag.xmf has no attribute %s (has %s)" % (name, sorted(names)))
    with h5py.File(os.path.join(folder, "drag-state.h5"), "r") as f:
        check(int(f["run"].attrs["iteration"]) == iterations, "drag-state.h5 iteration")
        check(text(f["run"].attrs["fingerprint"]).startswith("dfluid-drag"), "state fingerprint")

    # Frames: evenly spaced steps, two panels (uncontrolled above optimized) of 512 // nx
    # pixels per cell.
    want = sorted({"step_%04d.png" % int(math.floor(f * steps / frames + 0.5))
                   for f in range(frames + 1)})
    got = sorted(os.listdir(os.path.join(folder, "frames")))
    check(got == want, "frames/ holds %s, expected %s" % (got, want))
    scale = max(1, 512 // nx)
    for name in got:
        w, h = png_info(os.path.join(folder, "frames", name))
        check(w >= nx * scale and h >= 2 * ny * scale, "frames/%s is %dx%d" % (name, w, h))
    check(png_info(os.path.join(folder, "loss.png")) == (640, 400), "loss.png size")
    for root, _, files in os.walk(folder):
        for name in files:
            check(".tmp" not in name, "a temporary file was left: " + os.path.join(root, name))
    print("outputs OK: %d snapshots, %d frames, drag %.5f -> %.5f (%.1f%% less)"
          % (count, len(got), s["drag_uncontrolled"], s["drag_optimized"],
             100 * s["drag_reduction"]))
    return s


# ---------------------------------------------------------------- tests ----

def outputs(app, folder):
    h5py_or_skip()
    fresh(folder)
    run(base(app) + TINY + ["--iterations", "2", "--frames", "2", "--output", folder])
    check_outputs(folder, iterations=2, steps=12, dt=0.2, frames=2, nx=18, ny=12)


def gradient(app, folder):
    fresh(folder)
    for flux in ("fixed", "free"):
        out = os.path.join(folder, flux)
        p = run(base(app) + TINY + ["--precision", "double", "--tolerance", "1e-12", "--flux",
                                    flux, "--regularization", "0.1", "--check-gradient", "3",
                                    "--check-step", "1e-4", "--output", out])
        check("largest relative difference" in p.stdout, "no gradient check summary line")
        g = load_json(os.path.join(out, "gradient_check.json"))
        dirs = g["directions"]
        check(len(dirs) == 3, "gradient_check.json holds %d directions" % len(dirs))
        for d in dirs:
            check(abs(d["central"]) > 1e-4,
                  "direction %d: a derivative of %g tells nothing" % (d["direction"], d["central"]))
            rel = abs(d["adjoint"] - d["central"]) / abs(d["central"])
            check(rel <= 1e-6, "%s flux, direction %d: adjoint %.10e, central difference %.10e "
                  "(relative difference %.2e)" % (flux, d["direction"], d["adjoint"],
                                                  d["central"], rel))
        check(not os.path.exists(os.path.join(out, "history.csv")),
              "--check-gradient optimized as well")
        print("%s flux: adjoint = central differences to %.2e" % (flux,
                                                                 g["max_relative_difference"]))


def drag_falls(app, folder):
    fresh(folder)
    run(base(app) + TINY + ["--iterations", "4", "--frames", "0", "--output", folder])
    rows = history_rows(folder)
    losses = [float(r["loss"]) for r in rows]
    print("losses: " + " ".join("%.6f" % v for v in losses))
    for a, b in zip(losses, losses[1:]):
        check(b < a, "the loss rose or stalled: %s" % losses)
    s = load_json(os.path.join(folder, "summary.json"))
    check(s["drag_optimized"] < 0.98 * s["drag_uncontrolled"],
          "mean drag %.5f optimized vs %.5f uncontrolled: not 2%% less"
          % (s["drag_optimized"], s["drag_uncontrolled"]))


def stop_resume(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    stopped, straight = os.path.join(folder, "stopped"), os.path.join(folder, "straight")
    args = base(app) + TINY + ["--iterations", "4", "--frames", "0"]
    run(args + ["--output", straight], quiet=True)
    p = run(args + ["--output", stopped, "--stop-after", "2"], expect=130)
    check("--resume" in p.stdout, "the stop message does not tell how to continue")
    check(len(history_rows(stopped)) == 3, "history.csv after --stop-after 2: not 0..2")
    for name in ("drag.h5", "summary.json"):
        check(not os.path.exists(os.path.join(stopped, name)), name + " written by a stopped run")
    state = os.path.join(stopped, "drag-state.h5")
    for name, value in (("--flux", "free"), ("--regularization", "0.5"), ("--reynolds", "30"),
                        ("--precision", "double"), ("--steps", "14"), ("--average-steps", "3"),
                        ("--size", "14"), ("--dt", "0.1"), ("--learning-rate", "0.1")):
        p = run(with_option(args, name, value) + ["--output", os.path.join(folder, "refused"),
                                                  "--resume", state], expect=2)
        check("another problem" in p.stderr, "the refusal does not say why: %r" % p.stderr)
    p = run(args + ["--output", stopped, "--resume", state])
    check("resumed from" in p.stdout and "at iteration 2" in p.stdout, "no 'resumed' line")
    a = [(r["iteration"], r["loss"], r["grad_norm"], r["step"], r["evaluations"])
         for r in history_rows(stopped)]
    b = [(r["iteration"], r["loss"], r["grad_norm"], r["step"], r["evaluations"])
         for r in history_rows(straight)]
    check(a == b, "resumed history %s differs from the uninterrupted %s" % (a, b))
    sa = load_json(os.path.join(stopped, "summary.json"))
    sb = load_json(os.path.join(straight, "summary.json"))
    for key in ("drag_optimized", "inflow_optimized", "final_loss"):
        check(sa[key] == sb[key], "summary %s: resumed %s, uninterrupted %s"
              % (key, sa[key], sb[key]))
    print("stopped at 2 + resumed == uninterrupted, bit for bit (%d rows)" % len(a))


def rotation(app, folder):
    """--control rotation: the gradient with respect to the rotation rate equals central
    differences, and a short optimization spins the cylinder and lowers the drag."""
    fresh(folder)
    check_dir = os.path.join(folder, "check")
    run(base(app) + TINY + ["--control", "rotation", "--precision", "double", "--tolerance",
                            "1e-12", "--check-gradient", "2", "--check-step", "1e-4",
                            "--output", check_dir])
    g = load_json(os.path.join(check_dir, "gradient_check.json"))
    for d in g["directions"]:
        # The second unknown is never read: a direction along it alone has derivative 0.
        if abs(d["central"]) > 1e-6:
            rel = abs(d["adjoint"] - d["central"]) / abs(d["central"])
            check(rel <= 1e-6, "rotation, direction %d: adjoint %.10e, central %.10e (%.2e)"
                  % (d["direction"], d["adjoint"], d["central"], rel))
        else:
            check(abs(d["adjoint"]) <= 1e-9, "direction %d: adjoint %g where the loss is flat"
                  % (d["direction"], d["adjoint"]))
    check(max(abs(d["central"]) for d in g["directions"]) > 1e-4,
          "the rotation changes the loss by nothing along every direction")
    out = os.path.join(folder, "optimize")
    p = run(base(app) + TINY + ["--control", "rotation", "--iterations", "3", "--frames", "0",
                                "--output", out])
    check("rotation rate" in p.stdout, "the summary names no rotation rate")
    s = load_json(os.path.join(out, "summary.json"))
    print("rotation rate %.4f (surface speed %.4f U): drag %.5f -> %.5f"
          % (s["rotation_rate"], s["surface_speed"], s["drag_uncontrolled"], s["drag_optimized"]))
    check(s["rotation_rate"] != 0, "the cylinder does not spin")
    check(s["drag_optimized"] < s["drag_uncontrolled"], "the drag did not fall")
    prof = csv_rows(os.path.join(out, "inflow.csv"), "y,base,optimized")
    check(all(r["base"] == r["optimized"] for r in prof), "rotation control changed the inflow")


def checkpointed(app, folder):
    """--memory-budget below the minimum: exit 2 naming it; the minimum + 2 states: a Revolve
    plan that recomputes, and the same history as store-all bit for bit."""
    fresh(folder)
    args = base(app) + TINY + ["--iterations", "3", "--frames", "0"]
    p = run(args + ["--output", os.path.join(folder, "too_small"), "--memory-budget", "1000"],
            expect=2)
    m = re.search(r"minimum of (\d+) bytes \(one state of (\d+) bytes", p.stderr)
    check(m is not None and "\n" not in p.stderr.strip(),
          "not one error line naming the minimum: %r" % p.stderr)
    minimum, state = int(m.group(1)), int(m.group(2))
    store_all, revolve = os.path.join(folder, "store_all"), os.path.join(folder, "revolve")
    run(args + ["--output", store_all], quiet=True)
    p = run(args + ["--output", revolve, "--memory-budget", str(minimum + 2 * state)])
    check(re.search(r"^plan: revolve$", p.stdout, re.M) is not None, "the plan is not revolve")
    adv = re.search(r"^advances: (\d+)$", p.stdout, re.M)
    check(adv is not None and int(adv.group(1)) > 11, "revolve with 3 slots: %s"
          % (adv and adv.group(0)))
    a = [(r["iteration"], r["loss"], r["grad_norm"], r["step"]) for r in history_rows(revolve)]
    b = [(r["iteration"], r["loss"], r["grad_norm"], r["step"]) for r in history_rows(store_all)]
    check(a == b, "revolve history %s differs from store-all %s" % (a, b))
    print("revolve (%s) == store-all, bit for bit (%d rows)" % (adv.group(0), len(a)))


def mask(app, folder):
    h5py, np = h5py_or_skip()
    fresh(folder)
    # 36x24 pixels on a 36x24 grid (--size 24, --length 6.15): a dark square of 6x6 pixels
    # with its top-left corner at pixel (9, 8), one pixel per cell.
    nx, ny = 36, 24
    pic = os.path.join(folder, "square.png")
    write_png(pic, [[0 if 9 <= x < 15 and 8 <= y < 14 else 255 for x in range(nx)]
                    for y in range(ny)])
    out = os.path.join(folder, "out")
    p = run(base(app) + ["--size", str(ny), "--length", "6.15", "--steps", "6", "--dt", "0.2",
                         "--iterations", "1", "--frames", "1", "--mask", pic, "--output", out])
    check("body from" in p.stdout, "the setup line does not name the mask")
    body = np.zeros((ny, nx))
    body[ny - 14:ny - 8, 9:15] = 1  # picture row 0 is the top: the highest y
    check_outputs(out, iterations=1, steps=6, dt=0.2, frames=1, nx=nx, ny=ny, body=body)
    with h5py.File(os.path.join(out, "drag.h5"), "r") as f:
        d = float(f["run"].attrs["reference_length"])
    check(abs(d - 6 * 4.1 / ny) < 1e-12, "reference length %g, expected 6 cells" % d)


def fractions(app, folder):
    """--surface fractions: the gradients of the mean drag with respect to the inflow's modes
    and the rotation rate equal central differences, and a short optimization lowers it."""
    fresh(folder)
    for control in ("inflow", "rotation"):
        out = os.path.join(folder, control)
        p = run(base(app) + TINY + ["--surface", "fractions", "--control", control,
                                    "--precision", "double", "--tolerance", "1e-12",
                                    "--check-gradient", "2", "--check-step", "1e-4",
                                    "--output", out])
        check("face fractions" in p.stdout, "the setup line does not name the face fractions")
        g = load_json(os.path.join(out, "gradient_check.json"))
        worst = 0.0
        for d in g["directions"]:
            if abs(d["central"]) <= 1e-6:  # the rotation's second unknown is never read
                check(abs(d["adjoint"]) <= 1e-9, "%s, direction %d: adjoint %g where the loss "
                      "is flat" % (control, d["direction"], d["adjoint"]))
                continue
            rel = abs(d["adjoint"] - d["central"]) / abs(d["central"])
            worst = max(worst, rel)
            check(rel <= 1e-6, "%s, direction %d: adjoint %.10e, central %.10e (%.2e)"
                  % (control, d["direction"], d["adjoint"], d["central"], rel))
        check(max(abs(d["central"]) for d in g["directions"]) > 1e-4,
              "%s: the loss changes by nothing along every direction" % control)
        print("%s with face fractions: adjoint = central differences to %.2e" % (control, worst))
    out = os.path.join(folder, "optimize")
    run(base(app) + TINY + ["--surface", "fractions", "--iterations", "3", "--frames", "0",
                            "--output", out])
    s = load_json(os.path.join(out, "summary.json"))
    check(s["surface"] == "fractions", "summary.json surface %r" % s.get("surface"))
    print("face fractions: drag %.5f -> %.5f" % (s["drag_uncontrolled"], s["drag_optimized"]))
    check(s["drag_optimized"] < s["drag_uncontrolled"], "the drag did not fall")


def acceptance(app, folder):
    fresh(folder)
    p = run(base(app) + ["--output", folder], quiet=True)
    sys.stdout.write("\n".join(p.stdout.splitlines()[-8:]) + "\n")
    s = load_json(os.path.join(folder, "summary.json"))
    print("default run (%s, %s steps, %s iterations): mean drag coefficient %.5f -> %.5f "
          "(%.1f%% less), wall time %.1f s" % (s["grid"], s["steps"], s["iterations"],
                                               s["drag_uncontrolled"], s["drag_optimized"],
                                               100 * s["drag_reduction"], s["wall_seconds"]))
    check(s["reynolds"] == 20, "not the default Reynolds number")
    check(s["drag_reduction"] >= 0.10, "drag reduction %.3f < 0.10" % s["drag_reduction"])


COMMANDS = {
    "outputs": outputs,
    "gradient": gradient,
    "drag-falls": drag_falls,
    "stop-resume": stop_resume,
    "rotation": rotation,
    "checkpointed": checkpointed,
    "mask": mask,
    "fractions": fractions,
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
