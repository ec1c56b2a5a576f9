#!/usr/bin/env python3
"""dfluid-smoke against bad input and runs that break down: the answer each must get.

Usage: apps_smoke.py CASE DFLUID_SMOKE   (registered by apps_smoke.cmake, one ctest per case)
       apps_smoke.py --list

Each case runs dfluid-smoke once (on the CPU: in a build without CUDA, --device auto would
add a notice line on stderr) and passes when it exits with the expected code (2: a bad flag
or value, 1: the run broke down) and prints exactly one line on stderr holding the listed
words (the option, or the step and what is not finite), within the time limit: refusals
come before anything is allocated or simulated. A breakdown must not print its step as a
normal table row.

Exit code 0: passed; 1: failed.
"""
import subprocess
import sys
import time

from app_test_util import check, device_args  # noqa: E402

# name: (arguments, expected exit code, words of the error line, seconds allowed)
CASES = {
    # Memory that cannot exist is refused before allocating (it used to end in bad_alloc).
    "MemoryThatCannotExist": (["--dim", "3", "--size", "2048"], 2,
                              ["--size 2048", "2048^3 cells", "needed", "available"], 5),
    "MemoryThatCannotExistDouble": (["--dim", "3", "--size", "2048", "--precision", "double"], 2,
                                    ["--size 2048", "double", "needed", "available"], 5),
    "GridTooLarge": (["--dim", "3", "--size", "4096"], 2, ["--size 4096", "too large"], 5),
    # A state that stops being finite ends the run at that step, naming the operator.
    # Buoyancy 1e37 · dt 10 · smoke 2 = 2e38 still fits a float, the pressure does not.
    "PressureOverflowsFloat": (["--size", "16", "--buoyancy", "1e37", "--dt", "10"], 1,
                               ["step 1:", "PressureSolver::project", "not finite", "float"], 30),
    # 1e38 · 10 · 2: the buoyancy force itself leaves the float range.
    "BuoyancyForceOverflowsFloat": (["--size", "16", "--buoyancy", "1e38", "--dt", "10"], 1,
                                    ["step 1:", "forces", "buoyancy", "range of float"], 30),
    # Floating-point options: finite, and in their real ranges.
    "DtInf": (["--dt", "inf"], 2, ["--dt", "inf", "not a finite number"], 5),
    "DtNaN": (["--dt", "nan"], 2, ["--dt", "nan", "not a finite number"], 5),
    "DtZero": (["--dt", "0"], 2, ["--dt", "0", "not a positive number"], 5),
    "DtNegative": (["--dt", "-1"], 2, ["--dt", "-1", "not a positive number"], 5),
    "BuoyancyNaN": (["--buoyancy", "nan"], 2, ["--buoyancy", "not a finite number"], 5),
    "BuoyancyInf": (["--buoyancy", "-inf"], 2, ["--buoyancy", "not a finite number"], 5),
    "ToleranceZero": (["--tolerance", "0"], 2, ["--tolerance", "not in the range 1e-14 to 1"], 5),
    "ToleranceAboveOne": (["--tolerance", "2"], 2, ["--tolerance", "1e-14 to 1"], 5),
    "ToleranceNaN": (["--tolerance", "nan"], 2, ["--tolerance", "not a finite number"], 5),
    # A plain run still works and prints its rows.
    "Runs": (["--size", "16"], 0, [], 60),
    # The cubic (Catmull-Rom) advection runs too; an unknown interpolation is refused.
    "RunsCubic": (["--size", "16", "--interpolation", "cubic"], 0, [], 60),
    "InterpolationUnknown": (["--interpolation", "quadratic"], 2,
                             ["--interpolation", "quadratic"], 5),
}


def row_steps(stdout):
    """The step numbers of the table rows dfluid-smoke printed."""
    steps = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 8 and fields[0].isdigit():
            steps.append(int(fields[0]))
    return steps


def run_case(name, smoke):
    args, expect, words, seconds = CASES[name]
    cmd = [smoke] + device_args() + ["--steps", "3"] + args
    print("$ " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, errors="replace", timeout=600)
    elapsed = time.time() - t0
    sys.stdout.write(p.stdout[-2000:])
    sys.stdout.write(p.stderr[-2000:])
    print("(exit code %d after %.2f s)" % (p.returncode, elapsed))
    check(p.returncode == expect, "exit code %d, expected %d" % (p.returncode, expect))
    check(elapsed <= seconds, "took %.1f s, more than %d s" % (elapsed, seconds))
    for marker in ("runtime error:", "Sanitizer"):
        check(marker not in p.stderr, "a sanitizer report on stderr (%r)" % marker)
    err = p.stderr.strip()
    if expect == 0:
        check(err == "", "stderr is not empty: %r" % err[:2000])
        check(row_steps(p.stdout) == [1, 2, 3], "rows for steps 1..3 expected: %r" % p.stdout)
        return
    check(err and "\n" not in err, "expected one line on stderr, got %r" % err[:2000])
    check(err.startswith("dfluid-smoke: "), "the line does not name the app: %r" % err)
    for w in words:
        check(w in err, "the error line does not say %r: %r" % (w, err))
    if expect == 1:
        # "step K: ..." names the step that broke; the rows stop before it.
        k = int(err.split("step ", 1)[1].split(":", 1)[0])
        check(row_steps(p.stdout) == list(range(1, k)),
              "step %d printed as a normal row: %r" % (k, p.stdout))


def main():
    if sys.argv[1:] == ["--list"]:  # for apps_smoke.cmake: one ctest entry per case
        print(";".join(sorted(CASES)))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print(__doc__)
        print("cases: " + " ".join(sorted(CASES)))
        return 2
    run_case(sys.argv[1], sys.argv[2])
    print("%s: passed" % sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
