"""What the Python layer costs per step: a warm smoke step called from Python against the same
step timed in C++ around Simulation::step (inside the binding), the cost of wrapping arrays,
and dfluid.torch's differentiable step (its clones and autograd bookkeeping). Also checks
that nothing is allocated or copied by a warm step on wrapped arrays (Context counters).

    PYTHONPATH=build/python python host/python/benchmarks/step_overhead.py [--sizes 64x64 32x32x32]
"""

import argparse
import statistics
import time

import numpy as np

import dfluid


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["64x64", "32x32x32"])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the default)")
    args = ap.parse_args()
    try:
        import torch
        import dfluid.torch as dtorch
    except ImportError:
        torch = None
    if args.threads > 0:
        dfluid.set_cpu_threads(args.threads)
    ctx = dfluid.Context("cpu")
    print(f"dfluid {dfluid.__version__}, CPU path, {dfluid.cpu_threads()} threads, {args.dtype}")
    for size in args.sizes:
        cells = tuple(int(n) for n in size.split("x"))
        grid = dfluid.Grid(cells)
        cfg = dfluid.StepConfig(dt=1.0, buoyancy=0.5, pressure_tolerance=1e-4)
        sim = dfluid.Simulation(ctx, grid, cfg, dtype=args.dtype)
        rng = np.random.default_rng(0)
        vel = tuple(np.zeros(s, dtype=args.dtype) for s in grid.velocity_shapes)
        rho = rng.uniform(0, 1, grid.shape()).astype(args.dtype)
        p = np.zeros(grid.shape(), dtype=args.dtype)
        state = dfluid.wrap_state(ctx, grid, vel, [rho], p)
        # The state (pressure included) is reset before each timed step, so every step is the
        # same computation. The overhead is the wall time of a call less the step's own time
        # measured inside it, so the load of the machine does not enter it.
        reps = max(3, args.repeats if grid.dim == 2 else args.repeats // 4)
        for _ in range(3):
            sim.step(state)
        snap = [v.copy() for v in vel] + [rho.copy(), p.copy()]

        def reset():
            for dst, src in zip(list(vel) + [rho, p], snap):
                dst[...] = src

        cpp, call, py = [], [], []
        for _ in range(reps):
            reset()
            t0 = time.perf_counter()
            inner = sim._step_timed(state)
            call.append(time.perf_counter() - t0 - inner)  # Python -> C++ -> Python
            cpp.append(inner)
            reset()
            t0 = time.perf_counter()
            sim.step(state)
            py.append(time.perf_counter() - t0)
        t_cpp, t_py = statistics.median(cpp), statistics.median(py)
        overhead = statistics.median(call)
        t_wrap = median_time(lambda: dfluid.wrap_state(ctx, grid, vel, [rho]), 200)
        ctx.reset_counters()
        sim.step(state)
        c = ctx.counters()
        print(f"{size}: step {t_cpp * 1e3:.3f} ms timed in C++, {t_py * 1e3:.3f} ms timed around"
              f" sim.step in Python; overhead of the Python call {overhead * 1e6:.1f} us, wrap_state {t_wrap * 1e6:.1f} us;"
              f" warm step: {c['allocations']} allocations, {c['bytes_to_device']} bytes to"
              f" device")
        if torch is not None:
            fluid = dtorch.Simulator(sim)
            tv = tuple(torch.from_numpy(v.copy()) for v in snap[:-2])
            tr = torch.from_numpy(snap[-2].copy())
            t_torch = median_time(lambda: fluid.step(tv, [tr]), reps)
            print(f"{size}: dfluid.torch step (cold pressure start, clones) {t_torch * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
