#!/usr/bin/env python3
"""Check of dfluid-bench's rollout-gradient mode (the ctest AppBench.RolloutGradients).

    check_rollout.py DFLUID_BENCH WORKDIR

Runs `dfluid-bench --device cpu --rollout-steps 4 8 --sizes 16x16x16` with a device budget
that holds every state of the 4-step rollout but not of the 8-step one (so store-all runs at
4 steps and is skipped at 8, where Revolve recomputes states) and a host budget for the
two-level plan, then checks: exit code 0; the table names every plan and says that the losses
agree bitwise; in the JSON ("rollouts"), every plan ran or carries a note, the plans that ran
performed exactly the advances they planned, their losses and buoyancy gradients are
bitwise equal, and the memory the gradient added stays within the plan's prediction.
"""
import json
import os
import subprocess
import sys

PLANS = ["store-all", "revolve", "multi-level"]


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bench, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    out_json = os.path.join(workdir, "rollouts.json")
    cmd = [bench, "--device", "cpu", "--precision", "float", "--rollout-steps", "4", "8",
           "--sizes", "16x16x16", "--device-budget", "1792KiB", "--host-budget", "1MiB",
           "--repeats", "1", "--json", out_json]
    print(" ".join(cmd))
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode != 0:
        fail("exit code %d" % run.returncode)

    lines = run.stdout.splitlines()
    for name in PLANS:
        if not any(line.startswith(name + " ") for line in lines):
            fail("the table does not name the plan " + name)
    for steps in (4, 8):
        if "16x16x16, %d steps: losses agree bitwise" % steps not in run.stdout:
            fail("the output does not say that the losses agree (%d steps)" % steps)

    with open(out_json) as f:
        data = json.load(f)
    if data.get("memory_counter") != "host_peak":
        fail("memory_counter is %r, expected host_peak on the CPU path" % data.get("memory_counter"))
    cases = {c["steps"]: c for c in data["rollouts"]}
    if sorted(cases) != [4, 8]:
        fail("expected cases for 4 and 8 steps, got %s" % sorted(cases))
    for steps, case in cases.items():
        names = [p["plan"] for p in case["plans"]]
        if names != PLANS:
            fail("%d steps: plans %s, expected %s" % (steps, names, PLANS))
        ran = [p for p in case["plans"] if p["ran"]]
        for p in case["plans"]:
            if not p["ran"] and not p.get("note"):
                fail("%d steps: %s was skipped without a note" % (steps, p["plan"]))
        for p in ran:
            if p["advances_planned"] != p["advances_performed"]:
                fail("%d steps, %s: planned %d advances, performed %d" %
                     (steps, p["plan"], p["advances_planned"], p["advances_performed"]))
            if p["reverses_performed"] != steps:
                fail("%d steps, %s: %d adjoint steps" % (steps, p["plan"], p["reverses_performed"]))
            added = p["peak_bytes"] - p["held_before_bytes"]
            if not 0 < added <= p["predicted_peak_bytes"]:
                fail("%d steps, %s: the gradient added %d bytes, the plan predicts at most %d" %
                     (steps, p["plan"], added, p["predicted_peak_bytes"]))
            if p["gradient_s"] <= 0 or p["ratio"] <= 0:
                fail("%d steps, %s: no gradient time" % (steps, p["plan"]))
            # The gradient evaluation's events: every advance and every adjoint step runs a
            # pressure solve with at least one convergence check (a host wait), and the loss
            # values come back in one more wait at the end.
            ev = p.get("counters")
            if not isinstance(ev, dict) or ev.get("launches", 0) <= 0:
                fail("%d steps, %s: no counters in the JSON: %r" % (steps, p["plan"], ev))
            least = p["advances_performed"] + steps + 1
            if ev["host_waits"] < least:
                fail("%d steps, %s: %d host waits, fewer than the %d solves' checks + 1" %
                     (steps, p["plan"], ev["host_waits"], least - 1))
        if case["plans_compared"] != len(ran) or not case["losses_agree"] or \
                not case["buoyancy_gradients_agree"]:
            fail("%d steps: the plans' results are not reported bitwise equal" % steps)
        if len({p["loss_hex"] for p in ran}) != 1 or len({p["grad_buoyancy"] for p in ran}) != 1:
            fail("%d steps: losses %s" % (steps, [p["loss_hex"] for p in ran]))
        by_name = {p["plan"]: p for p in case["plans"]}
        if not by_name["revolve"]["ran"] or not by_name["multi-level"]["ran"]:
            fail("%d steps: revolve and multi-level must run" % steps)
        if by_name["multi-level"]["slots_host"] < 1:
            fail("%d steps: the multi-level plan has no host slot" % steps)
    if not cases[4]["plans"][0]["ran"]:
        fail("4 steps: store-all should fit the budget")
    if cases[8]["plans"][0]["ran"]:
        fail("8 steps: store-all should not fit the budget")
    revolve8 = cases[8]["plans"][1]
    if revolve8["advances_performed"] <= 7:
        fail("8 steps: revolve recomputed nothing (%d advances)" % revolve8["advances_performed"])
    # Every plan's loss is the same rollout's: the two cases differ, the plans within one don't.
    print("PASS: %s" % ", ".join("%d steps: %d plans bitwise equal" % (s, cases[s]["plans_compared"])
                                 for s in sorted(cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
