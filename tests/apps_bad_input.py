#!/usr/bin/env python3
"""What a careless or hostile user can do to the apps, and the answer each must get.

Usage: apps_bad_input.py CASE DIR APP...   (APP: the binaries the case needs, in the order of
its 'apps' entry; registered by apps_bad_input.cmake, one ctest entry per case)

A refusal case runs its app once and passes when the app exits with the expected code (2: a
bad flag, value, file or combination) and prints exactly one line on stderr that names the
option, key or file (each case lists the words the line must hold), and when the run left no
trace: the --output folder it was given does not exist afterwards. Other cases (two runs into
one folder, a signal while the outputs are written, HDF5 targets holding NaN or Inf) are
functions below.

Exit code 0: passed; 1: failed; 77: skipped (h5py/numpy missing where a case needs them).
"""
import os
import signal
import subprocess
import sys
import time

from app_test_util import SKIP, check, fail, fresh, write_png  # noqa: E402

TINY_2D = ["--size", "32", "--steps", "12"]
LONG_VALUE = "9" * 5000  # an absurd value, to check that errors cut what they echo


def run(cmd, expect, timeout=120):
    shown = [a if len(a) < 80 else a[:20] + "..." for a in cmd]
    print("$ " + " ".join(shown))
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, errors="replace", timeout=timeout)
    sys.stdout.write(p.stdout[-2000:])
    sys.stdout.write(p.stderr[-2000:])
    print("(exit code %d after %.1f s)" % (p.returncode, time.time() - t0))
    check(p.returncode == expect, "exit code %d, expected %d" % (p.returncode, expect))
    for marker in ("runtime error:", "Sanitizer"):
        check(marker not in p.stderr, "a sanitizer report on stderr (%r)" % marker)
    return p


def one_line(p, words, max_len=400):
    err = p.stderr.strip()
    check(err and "\n" not in err, "expected one line on stderr, got %r" % err[:2000])
    check(len(err) <= max_len, "the error line is %d characters long" % len(err))
    for w in words:
        check(w in err, "the error line does not say %r: %r" % (w, err))
    return err


# ---- refusals: app index, arguments, words the error line holds ----
# Files named {dir} are made by prepare() before the run.
REFUSALS = {
    # --config: unknown keys, sections and binary files are refused, naming key and line.
    "ControlConfigMisspeltKey": (["--config", "{dir}/misspelt.toml"], ["iteratons", "line 2"]),
    "ControlConfigSection": (["--config", "{dir}/section.ini"], ["[control]", "line 1"]),
    "ControlConfigRandomBytes": (["--config", "{dir}/random.cfg"], ["--config", "not text"]),
    "ControlLongValueIsCut": (["--size", LONG_VALUE], ["--size", "..."]),
    # Floating-point options: NaN and Inf are refused, ranges state their real bounds.
    "ControlNanLearningRate": (["--learning-rate", "nan"], ["--learning-rate", "not a finite"]),
    "ControlNanBlobRadius": (["--blob-radius", "nan"], ["--blob-radius", "not a finite"]),
    "ControlNanControlSmoothing": (["--control-smoothing", "nan"], ["--control-smoothing"]),
    "ControlNanTargetError": (["--target-error", "nan"], ["--target-error", "not a finite"]),
    "ControlInfEffort": (["--effort", "inf"], ["--effort", "not a finite"]),
    "ControlInfDt": (["--dt", "inf"], ["--dt", "not a finite"]),
    "ControlToleranceRange": (["--tolerance", "0"], ["--tolerance", "1e-14 to 1"]),
    "ControlNegativeSeed": (["--seed", "-1"], ["--seed"]),
    # Sizes and budgets.
    "ControlNegativeMemoryBudget": (["--memory-budget", "-5"], ["--memory-budget", "negative"]),
    "ControlMemoryThatCannotExist": (["--dim", "3", "--size", "2048"],
                                     ["--size", "needed", "available"]),
    "ControlMemoryThatCannotExist512": (["--dim", "3", "--size", "512"],
                                        ["--size", "needed", "available"]),
    # Keyframes and targets.
    "ControlDuplicateKeyframes": (TINY_2D + ["--keyframes", "4", "4", "8"],
                                  ["--keyframes", "4", "twice"]),
    "ControlBlankTargetPng": (TINY_2D + ["--target-png", "{dir}/white.png"],
                              ["--target-png", "white.png", "uniform"]),
    "ControlBlackTargetPngBrightIsSmoke": (
        TINY_2D + ["--target-png", "{dir}/black.png", "--png-bright-is-smoke"],
        ["--target-png", "uniform"]),
    # Options that only mean something together with another are refused alone.
    "ControlPngAndH5Target": (["--target-png", "{dir}/white.png", "--target-h5", "{dir}/x.h5"],
                              ["--target-png", "--target-h5"]),
    "ControlShapeAndPngTarget": (["--shape", "ring", "--target-png", "{dir}/white.png"],
                                 ["--shape", "--target-png"]),
    "ControlHostBudgetAlone": (["--host-budget", "1GiB"], ["--host-budget", "--memory-budget"]),
    "ControlTargetStepAlone": (["--target-step", "3"], ["--target-step", "--target-h5"]),
    "ControlTargetDatasetAlone": (["--target-dataset", "velocity_x"],
                                  ["--target-dataset", "--target-h5"]),
    "ControlBrightIsSmokeAlone": (["--png-bright-is-smoke"],
                                  ["--png-bright-is-smoke", "--target-png"]),
    "BurgersNanLearningRate": (["--learning-rate", "nan"], ["--learning-rate", "not a finite"]),
    "BurgersInfLearningRate": (["--learning-rate", "inf"], ["--learning-rate", "not a finite"]),
    "BurgersConfigMisspeltKey": (["--config", "{dir}/misspelt_burgers.toml"],
                                 ["learnig-rate", "line 1"]),
    "BurgersMissingReference": (["--reference", "{dir}/no-such-reference.txt"],
                                ["no-such-reference.txt", "--reference"]),
    # dfluid-drag: the body's mask and the channel.
    "DragMissingMask": (["--mask", "{dir}/no-such-mask.png"], ["--mask", "no-such-mask.png"]),
    "DragBlankMask": (["--mask", "{dir}/white.png"], ["--mask", "no solid cell"]),
    "DragMaskBlocksChannel": (["--mask", "{dir}/bar.png"], ["--mask", "blocks the channel"]),
    "DragMaskTouchesInflow": (["--mask", "{dir}/left_edge.png"], ["--mask", "inflow"]),
    "DragMaskBrightAlone": (["--mask-bright-is-solid"], ["--mask-bright-is-solid", "--mask"]),
    "DragNanReynolds": (["--reynolds", "nan"], ["--reynolds", "not a finite"]),
    "DragInfDt": (["--dt", "inf"], ["--dt", "not a finite"]),
    "DragCheckStepAlone": (["--check-step", "1e-3"], ["--check-step", "--check-gradient"]),
    "DragChannelTooShort": (["--length", "2"], ["--length", "3 diameters"]),
    "DragFluxWithRotation": (["--control", "rotation", "--flux", "free"], ["--flux", "rotation"]),
    "DragModesBeyondFaces": (["--size", "12", "--modes", "13"], ["--modes", "13"]),
    "DragAverageBeyondSteps": (["--steps", "10", "--average-steps", "11"], ["--average-steps"]),
    "DragFractionsWithMask": (["--surface", "fractions", "--mask", "{dir}/bar.png"],
                              ["--surface fractions", "--mask"]),
    "DragUnknownSurface": (["--surface", "smooth"], ["--surface", "smooth"]),
    "PlumeNanLearningRate": (["--learning-rate", "nan"], ["--learning-rate", "not a finite"]),
    "PlumeNanTolerance": (["--tolerance", "nan"], ["--tolerance", "not a finite"]),
}


def prepare(folder):
    with open(os.path.join(folder, "misspelt.toml"), "w") as f:
        f.write("# a misspelt key must not leave --iterations at its default\niteratons = 2\n")
    with open(os.path.join(folder, "section.ini"), "w") as f:
        f.write("[control]\niterations = 2\n")
    with open(os.path.join(folder, "random.cfg"), "wb") as f:
        f.write(bytes((i * 97 + 13) % 256 for i in range(300)))
    with open(os.path.join(folder, "misspelt_burgers.toml"), "w") as f:
        f.write("learnig-rate = 2\n")
    write_png(os.path.join(folder, "white.png"), [[255] * 32 for _ in range(32)])
    write_png(os.path.join(folder, "black.png"), [[0] * 32 for _ in range(32)])
    # Channel masks for dfluid-drag (the default channel: 86x32 cells): a dark bar from
    # the bottom to the top, and a dark first column.
    write_png(os.path.join(folder, "bar.png"), [[0 if 40 <= x < 44 else 255 for x in range(86)]
                                                for _ in range(32)])
    write_png(os.path.join(folder, "left_edge.png"), [[0 if x == 0 else 255 for x in range(86)]
                                                      for _ in range(32)])


def refusal(case, folder, apps):
    args, words = REFUSALS[case]
    prepare(folder)
    out = os.path.join(folder, "out", "nested")  # neither level exists before the run
    args = [a.replace("{dir}", folder) for a in args]
    p = run([apps[0], "--device", "cpu", "--output", out] + args, expect=2)
    one_line(p, words)
    check(not os.path.exists(os.path.join(folder, "out")),
          "the refused run left its output folder behind: %s" % sorted(os.listdir(folder)))


# ---- cases with more steps ----

def concurrent_output(folder, apps):
    """A second run into the folder of a running one is refused before it writes anything."""
    out = os.path.join(folder, "out")
    common = [apps[0], "--device", "cpu", "--progress", "lines", "--frames", "0", "--output", out]
    cmd = common + TINY_2D + ["--iterations", "1000000"]
    print("$ " + " ".join(cmd))
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
    try:
        for line in first.stdout:
            sys.stdout.write(line)
            if line.split()[:1] == ["1"]:  # the first iteration line: the run is under way
                break
        else:
            fail("the first run ended before iterating: %s" % first.stderr.read())
        before = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out)}
        p = run(common + ["--size", "24", "--steps", "6", "--iterations", "2"], expect=2)
        one_line(p, ["--output", out, "in use"])
        after = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out)}
        check(before == after, "the refused run touched the folder: %s -> %s" % (before, after))
    finally:
        first.send_signal(signal.SIGINT)
        rest, err = first.communicate(timeout=300)
    sys.stdout.write(rest[-1000:] + err)
    check(first.returncode == 130, "the first run exited %d after SIGINT" % first.returncode)
    # Once the first run has ended, the folder is free again.
    run(common + ["--size", "24", "--steps", "6", "--iterations", "1"], expect=0)


def signal_during_outputs(folder, apps, iterations_flag_args):
    """A Ctrl-C that lands after the last iteration: the outputs are completed, exit 130."""
    out = os.path.join(folder, "out")
    p = run([apps[0], "--device", "cpu", "--progress", "lines", "--output", out]
            + iterations_flag_args, expect=130)
    one_line(p, ["while writing the outputs"])
    check(os.path.isfile(os.path.join(out, "summary.json")), "no summary.json after the stop")
    check(not [n for n in os.listdir(out) if n.endswith(".tmp")], "a .tmp file was left")


def control_signal_during_outputs(folder, apps):
    # --stop-after 2 with 2 iterations: the stop request comes with the last iteration.
    signal_during_outputs(folder, apps, TINY_2D + ["--frames", "0", "--iterations", "2",
                                                   "--stop-after", "2"])
    check(os.path.isfile(os.path.join(folder, "out", "control.h5")), "no control.h5")


def burgers_signal_during_outputs(folder, apps):
    signal_during_outputs(folder, apps, ["--iterations", "3", "--stop-after", "3"])
    check(os.path.isfile(os.path.join(folder, "out", "reconstruction.h5")),
          "no reconstruction.h5")


def target_h5_not_finite(folder, apps):
    """A --target-h5 dataset holding NaN or Inf: exit 2 naming the file and the dataset."""
    try:
        import h5py
        import numpy as np
    except ImportError:
        print("h5py/numpy missing: skipped")
        sys.exit(SKIP)
    source = os.path.join(folder, "source")
    run([apps[0], "--device", "cpu", "--progress", "none", "--frames", "0", "--iterations", "0",
         "--output", source] + TINY_2D, expect=0)
    for bad, name in ((np.inf, "inf"), (np.nan, "nan")):
        h5 = os.path.join(folder, "target_%s.h5" % name)
        with open(os.path.join(source, "control.h5"), "rb") as a, open(h5, "wb") as b:
            b.write(a.read())
        with h5py.File(h5, "r+") as f:
            last = sorted(f["snapshots"].keys())[-1]
            d = f["snapshots/%s/density" % last]
            v = d[()]
            v.flat[5] = bad
            d[...] = v
        out = os.path.join(folder, "out_" + name)
        p = run([apps[0], "--device", "cpu", "--output", out, "--target-h5", h5] + TINY_2D,
                expect=2)
        one_line(p, ["--target-h5", "target_%s.h5" % name, "density",
                     "NaN" if name == "nan" else "Inf"])
        check(not os.path.exists(out), "the refused run left %s behind" % out)


SPECIAL = {
    "ControlConcurrentOutput": concurrent_output,
    "ControlSignalDuringOutputs": control_signal_during_outputs,
    "BurgersSignalDuringOutputs": burgers_signal_during_outputs,
    "ControlTargetH5NotFinite": target_h5_not_finite,
}


def main():
    if sys.argv[1:] == ["--list"]:  # for apps_bad_input.cmake: one ctest entry per case
        print(";".join(sorted(list(REFUSALS) + list(SPECIAL))))
        return 0
    if len(sys.argv) < 4 or (sys.argv[1] not in REFUSALS and sys.argv[1] not in SPECIAL):
        print(__doc__)
        print("cases: " + " ".join(sorted(list(REFUSALS) + list(SPECIAL))))
        return 2
    case, folder, apps = sys.argv[1], sys.argv[2], sys.argv[3:]
    fresh(folder)
    if case in SPECIAL:
        SPECIAL[case](folder, apps)
    else:
        refusal(case, folder, apps)
    print("%s: passed" % case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
