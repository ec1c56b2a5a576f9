"""What the Python layer costs per step: a warm smoke step called from Python against the same
step timed in C++ around Simulation::step (inside the binding), the cost of wrapping arrays,
dfluid.torch's differentiable step (its clones and autograd bookkeeping), and dfluid.jax's
jitted step and gradient through its two paths: the XLA FFI calls (dfluid._xla, where built)
and the host callbacks (jax.pure_callback), against the same cold-started step in C++. Also
checks that nothing is allocated or copied by a warm step on wrapped arrays (Context counters).

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
        jax_rows(sim, grid, snap, reps, args.dtype)


def jax_rows(sim, grid, snap, reps, dtype):
    """dfluid.jax's jitted step (and gradient) through the FFI and the callback path, and
    their overhead over the same cold-started step timed in C++ (dfluid.jax starts each
    step's pressure solve from zero). The three are timed in turn within each repetition and
    the overhead is the median of the per-repetition differences, so that a machine whose
    load changes over the run does not bias one path."""
    try:
        import jax
        import jax.numpy as jnp
        import dfluid.jax as djax
    except ImportError:
        return
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    ctx = sim.context
    vel = tuple(x.copy() for x in snap[:-2])
    rho = snap[-2].copy()
    p = np.zeros(grid.shape(), dtype=dtype)
    state = dfluid.wrap_state(ctx, grid, vel, [rho], p)

    def cpp_cold():
        for dst, src in zip(list(vel) + [rho], snap[:-1]):
            dst[...] = src
        p[...] = 0
        return sim._step_timed(state)

    v = tuple(jnp.asarray(x) for x in snap[:-2])
    s = (jnp.asarray(snap[-2]),)
    modes = [("callback", False)] + ([("FFI", True)] if djax.ffi_available() else [])
    fns = {}
    for name, ffi in modes:
        fluid = djax.Simulator(sim, ffi=ffi)
        step = jax.jit(fluid.step)
        grad = jax.jit(jax.grad(lambda v, s, f=fluid: jnp.sum(f.step(v, s)[1][0] ** 2),
                                argnums=(0, 1)))
        for _ in range(2):
            jax.block_until_ready(step(v, s))
            jax.block_until_ready(grad(v, s))
        fns[name] = (fluid, step, grad)

    def wall(fn):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(v, s))
        return time.perf_counter() - t0

    cold, over, steps, grads = [], {n: [] for n in fns}, {n: [] for n in fns}, {n: [] for n in fns}
    for _ in range(reps):
        for name, (_, step, grad) in fns.items():
            t_cpp = cpp_cold()
            t = wall(step)
            cold.append(t_cpp)
            steps[name].append(t)
            over[name].append(t - t_cpp)
            grads[name].append(wall(grad))
    print(f"{grid.cells}: C++ step from a cold pressure start {statistics.median(cold) * 1e3:.3f} ms")
    for name in fns:
        print(f"{grid.cells}: dfluid.jax {name}: jitted step {statistics.median(steps[name]) * 1e3:.3f}"
              f" ms, overhead over the C++ step {statistics.median(over[name]) * 1e6:.0f} us; "
              f"jitted grad (step + adjoint) {statistics.median(grads[name]) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
