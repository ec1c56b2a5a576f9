"""The Mosaic benchmark's navier-stokes-grid experiments that dfluid can run, on the dfluid
adapter in-process (tesseract_core, no container), with the benchmark's settings
(pasteurlabs/mosaic v0.2.0) unless an option below reduces them:

  forward/baseline      the Taylor-Green vortex, nu 0.05, dt 0.01, one step, N in {16, 32,
                        64, 128}: relative L2 error against the analytic decay exp(-2 nu t).
  forward/tgv_nu_sweep  the Taylor-Green vortex u = sin x cos y, v = -cos x sin y on
                        [0, 2 pi)^2, dt 0.05, 20 steps, nu in {1e-4, 5e-4, 1e-3, 5e-3, 1e-2,
                        5e-2}: the same error (N = 64 as published, and N = 16).
  gradient/fd_check     N 16, nu 1e-3, dt 0.05, 20 steps, loss sum(result^2): its VJP with
                        respect to v0 along 20 random unit directions against central
                        differences with steps eps * RMS(v0), eps in {5, 1, 0.1, 0.01, 1e-3,
                        1e-4}; the median relative error per eps and the cosine between the
                        two sets of directional derivatives, and the "best eps" figure of
                        Mosaic's gradient ranking (the smallest median, with 1 - cosine at
                        that eps); the viscosity's VJP against a central difference.
  gradient/horizon_sweep
                        the same loss and field at N 16, nu 1e-3, dt 0.05 for steps in {5, 10,
                        20, 40, 80, 160, 320}, 8 directions, eps in {1, 0.1, 0.01, 1e-3}: the
                        gradient's norm, the mean relative error per eps, its best eps and
                        1 - cosine there.
  cost                  wall time of apply (forward) and of the VJP endpoint, and of the two
                        together (what Mosaic's jax.grad of the loss calls), nu 0.01, dt 0.01:
                        by N (steps 100, N in {64, 128, 192, 256}) and by steps (N 128, steps
                        in {10, 50, 100, 500, 1000}); one unreported warm-up call, then the
                        mean of --trials calls (Mosaic: 3).

  forward/cylinder      uniform flow u = (1, 0) on [0, 2 pi]^2 past the no-slip cylinder of
                        radius 0.1 L at the centre, neumann x sides, no_slip y sides, N 64,
                        dt 0.01, 500 steps, nu in {0.05, 0.02, 0.01, 0.005}: the drag, its
                        coefficient on U = 1 and the diameter, the lift of the final state.
  optimization/drag_opt the benchmark's channel (N 32, unit box, flat inflow profile 0.5 at
                        x_lo, periodic x sides taken as inflow/outflow, no_slip y, the cylinder
                        of radius 0.05 at the centre, nu 0.0025, dt 0.02, 200 steps): the drag
                        and C_D (on the mean inflow speed and the diameter) at N in
                        --drag-sizes, the drag's inflow-profile and viscosity gradients against
                        central differences (float64, inside the adapter), the apply and VJP
                        times, then --drag-iters iterations of Mosaic's loop: Adam (lr 5e-4),
                        loss |drag| + 50 (mean(profile) - 0.5)^2, profile clipped to
                        [0, 1.5], patience 50 (Mosaic: 250 iterations).

The initial velocity of the gradient and cost experiments is a random divergence-free field
with its energy in a ring at |k| = 2 (width 0.5), maximum speed 0.3, as the benchmark's
"multimode" initial condition describes (not the same random draw); the directions are
unit Gaussian vectors from numpy (not the benchmark's JAX draw).

    python host/python/mosaic/run_checks.py                       # baseline, tgv, fd_check
    python host/python/mosaic/run_checks.py --experiments all     # + horizon_sweep, cost
    python host/python/mosaic/run_checks.py -e cost --trials 1 --cost-steps 10 50 100 500
    python host/python/mosaic/run_checks.py -e cylinder drag_opt --drag-iters 20

Needs dfluid and tesseract-core[runtime]; prints tables. Timings are of the CPU path with
whatever threads the process gets (set OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from tesseract_core import Tesseract

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "navier-stokes-grid",
                   "tesseract_api.py")
EXPERIMENTS = ("baseline", "tgv_nu_sweep", "fd_check", "horizon_sweep", "cost", "cylinder",
               "drag_opt")
DEFAULT = ("baseline", "tgv_nu_sweep", "fd_check")


def f32(x):
    return np.array([x], np.float32)


def tgv(n, extent=2 * np.pi):
    x = np.linspace(0, extent, n, endpoint=False)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return np.stack([np.sin(X) * np.cos(Y), -np.cos(X) * np.sin(Y)], -1)[:, :, None, :]


def ring_field(n, seed=42):
    """Divergence-free: u = d psi/dy, v = -d psi/dx of a random stream function whose
    spectrum is a Gaussian ring at |k| = 2 (width 0.5); maximum speed 0.3."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n, d=1.0 / n)
    KX, KY = np.meshgrid(k, k, indexing="ij")
    amp = np.exp(-0.5 * ((np.hypot(KX, KY) - 2.0) / 0.5) ** 2)
    psi = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.uniform(size=(n, n)))))
    psi_hat = np.fft.fft2(psi)
    u = np.real(np.fft.ifft2(1j * KY * psi_hat))
    v = np.real(np.fft.ifft2(-1j * KX * psi_hat))
    s = 0.3 / np.hypot(u, v).max()
    return np.stack([u * s, v * s], -1)[:, :, None, :]


def rel_l2(out, ref):
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


def tgv_error(t, n, nu, dt, steps):
    out = t.apply({"v0": tgv(n).astype(np.float32), "viscosity": f32(nu), "dt": f32(dt),
                   "steps": steps})["result"]
    return rel_l2(out, tgv(n) * np.exp(-2 * nu * dt * steps))


def run_baseline(t, args):
    print("forward/baseline (TGV, nu 0.05, dt 0.01, 1 step): relative L2 error")
    for n in ((16, 32) if args.quick else (16, 32, 64, 128)):
        print(f"  N {n:3d}  error {tgv_error(t, n, 0.05, 0.01, 1):.3e}")


def run_tgv_nu_sweep(t, args):
    print("forward/tgv_nu_sweep (dt 0.05, 20 steps): relative L2 error")
    for n in ((16,) if args.quick else (16, 64)):
        errs = []
        t0 = time.perf_counter()
        for nu in (1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2):
            errs.append(tgv_error(t, n, nu, 0.05, 20))
            print(f"  N {n:3d}  nu {nu:7.1e}  error {errs[-1]:.3e}")
        print(f"  N {n:3d}  mean {np.mean(errs):.3e}  ({time.perf_counter() - t0:.1f} s)")


class FD:
    """The loss sum(result^2) of the ring field at N 16, nu 1e-3, dt 0.05: its VJP gradient
    and central differences along random unit directions."""

    def __init__(self, t, steps, n=16, nu=1e-3, dt=0.05):
        self.t = t
        self.v0 = ring_field(n).astype(np.float32)
        self.base = {"viscosity": f32(nu), "dt": f32(dt), "steps": steps}
        self.nu = nu
        self.scale = float(np.sqrt(np.mean(self.v0.astype(np.float64) ** 2)))

    def loss(self, v, **kw):
        out = self.t.apply({**self.base, **kw, "v0": v.astype(np.float32)})["result"]
        return float(np.sum(out.astype(np.float64) ** 2))

    def vjp(self, wrt=("v0",)):
        res = self.t.apply({**self.base, "v0": self.v0})["result"]
        return self.t.vector_jacobian_product({**self.base, "v0": self.v0},
                                              vjp_inputs=list(wrt), vjp_outputs=["result"],
                                              cotangent_vector={"result": 2 * res})

    def sweep(self, g, ndirs, eps_values):
        """Per eps: (relative errors per direction, cosine)."""
        rng = np.random.default_rng(0)
        dirs = [d / np.linalg.norm(d)
                for d in (rng.standard_normal(self.v0.shape) for _ in range(ndirs))]
        ad = np.array([np.vdot(g, d) for d in dirs])
        out = {}
        for eps in eps_values:
            h = eps * self.scale
            fd = np.array([(self.loss(self.v0 + h * d) - self.loss(self.v0 - h * d)) / (2 * h)
                           for d in dirs])
            rel = np.abs(fd - ad) / np.maximum(np.maximum(np.abs(fd), np.abs(ad)), 1e-30)
            out[eps] = (rel, float(np.dot(fd, ad) / (np.linalg.norm(fd) * np.linalg.norm(ad))))
        return out


def run_fd_check(t, args):
    print("gradient/fd_check (N 16, nu 1e-3, dt 0.05, 20 steps, loss sum(result^2))")
    fd = FD(t, 20)
    vjp = fd.vjp(("v0", "viscosity"))
    sweep = fd.sweep(vjp["v0"].astype(np.float64), 5 if args.quick else 20,
                     (5.0, 1.0, 0.1, 0.01, 1e-3, 1e-4))
    for eps, (rel, cos) in sweep.items():
        print(f"  eps {eps:7.1e}  median rel. error {np.median(rel):.2e}  cosine {cos:.6f}")
    best = min(sweep, key=lambda e: np.median(sweep[e][0]))
    print(f"  best eps {best:.0e}: median rel. error {np.median(sweep[best][0]):.2e}, "
          f"1 - cosine {1 - sweep[best][1]:.2e}")
    nu = fd.nu
    hn = 1e-2 * nu
    fd_nu = (fd.loss(fd.v0, viscosity=f32(nu + hn)) - fd.loss(fd.v0, viscosity=f32(nu - hn))) \
        / (2 * hn)
    print(f"  viscosity: VJP {float(vjp['viscosity'][0]):.6e}  central difference {fd_nu:.6e}")


def run_horizon_sweep(t, args):
    print("gradient/horizon_sweep (N 16, nu 1e-3, dt 0.05, 8 directions, loss sum(result^2))")
    print("  steps   T      |grad|      mean rel. error at eps 1, 0.1, 0.01, 1e-3"
          "        best eps  1 - cosine there  (s)")
    for steps in ((5, 10, 20) if args.quick else (5, 10, 20, 40, 80, 160, 320)):
        t0 = time.perf_counter()
        fd = FD(t, steps)
        g = fd.vjp()["v0"].astype(np.float64)
        sweep = fd.sweep(g, 8, (1.0, 0.1, 0.01, 1e-3))
        means = {e: float(np.mean(rel)) for e, (rel, _) in sweep.items()}
        best = min(means, key=means.get)
        cells = "  ".join(f"{means[e]:.2e}" for e in sweep)
        print(f"  {steps:5d}  {steps * 0.05:5.2f}  {np.linalg.norm(g):.3e}   {cells}"
              f"   {best:7.0e}  {1 - sweep[best][1]:.2e}  ({time.perf_counter() - t0:.1f})")


def timed(fn, trials):
    fn()  # warm-up, not reported (as Mosaic's cost kernels do)
    ts = []
    for _ in range(trials):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.mean(ts))


def cost_point(t, n, steps, trials):
    inp = {"v0": ring_field(n).astype(np.float32), "viscosity": f32(0.01), "dt": f32(0.01),
           "steps": steps}
    res = t.apply(inp)["result"]

    def vjp():
        t.vector_jacobian_product(inp, vjp_inputs=["v0"], vjp_outputs=["result"],
                                  cotangent_vector={"result": 2 * res})

    fwd = timed(lambda: t.apply(inp), trials)
    back = timed(vjp, trials)
    print(f"  N {n:4d}  steps {steps:5d}  apply {fwd:8.3f} s  VJP {back:8.3f} s  "
          f"apply + VJP {fwd + back:8.3f} s")


def run_cost(t, args):
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"cost (nu 0.01, dt 0.01; CPU, OMP_NUM_THREADS {threads}, mean of {args.trials} "
          "after one warm-up)")
    for n in args.cost_sizes:
        cost_point(t, n, 100, args.trials)
    for steps in args.cost_steps:
        cost_point(t, 128, steps, args.trials)


def uniform(n, u):
    v = np.zeros((n, n, 1, 2), np.float32)
    v[..., 0] = u
    return v


def run_cylinder(t, args):
    print("forward/cylinder (N 64, L 2 pi, dt 0.01, 500 steps, R 0.1 L, neumann x, no_slip y)")
    n = 64
    for nu in (0.05, 0.02, 0.01, 0.005):
        t0 = time.perf_counter()
        out = t.apply({"v0": uniform(n, 1.0), "viscosity": f32(nu), "dt": f32(0.01),
                       "steps": 500, "obstacle": {"shape": "cylinder", "center": [0.5, 0.5],
                                                  "radius": 0.1},
                       "boundary_conditions": {"x_lo": {"type": "neumann"},
                                               "x_hi": {"type": "neumann"},
                                               "y_lo": {"type": "no_slip"},
                                               "y_hi": {"type": "no_slip"}}})
        drag = float(out["drag"][0])
        diameter = 0.2 * 2 * np.pi
        print(f"  nu {nu:6.3f}  Re {diameter / nu:6.1f}  drag {drag:.4f}"
              f"  C_D {drag / (0.5 * diameter):.3f}  max |u| {np.abs(out['result']).max():.3f}"
              f"  ({time.perf_counter() - t0:.1f} s)")


CHANNEL = {"x_lo": {"type": "periodic"}, "x_hi": {"type": "periodic"},
           "y_lo": {"type": "no_slip"}, "y_hi": {"type": "no_slip"}}


def drag_opt_inputs(n, profile):
    return {"v0": uniform(n, 0.5), "inflow_profile": np.asarray(profile, np.float32),
            "viscosity": f32(0.0025), "dt": f32(0.02), "steps": 200, "domain_extent": 1.0,
            "obstacle": {"shape": "cylinder", "center": [0.5, 0.5], "radius": 0.05},
            "boundary_conditions": CHANNEL}


def run_drag_opt(t, args):
    print("optimization/drag_opt (unit box, R 0.05, nu 0.0025, dt 0.02, 200 steps, flat 0.5)")
    for n in args.drag_sizes:
        t0 = time.perf_counter()
        drag = float(t.apply(drag_opt_inputs(n, np.full(n, 0.5)))["drag"][0])
        print(f"  N {n:4d}  drag {drag:.5f}  C_D {drag / (0.5 * 0.25 * 0.1):.3f}"
              f"  ({time.perf_counter() - t0:.1f} s)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("dfluid_mosaic_api_checks", API)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    n = 32
    inp = drag_opt_inputs(n, np.full(n, 0.5))
    case = m.make_case((n, n, 1, 2), 1.0, 0.0025, 0.02, 200, CHANNEL, inp["obstacle"],
                       np.full(n, 0.5))
    v0 = inp["v0"].astype(np.float64)
    g = m.gradient64(v0, case, None, 1.0)

    def drag64(nu=0.0025, prof=np.full(n, 0.5)):
        return m.simulate64(v0, m.make_case((n, n, 1, 2), 1.0, nu, 0.02, 200, CHANNEL,
                                            inp["obstacle"], prof))[1]

    rng = np.random.default_rng(0)
    for k in range(3):
        d = rng.standard_normal(n)
        fd = (drag64(prof=0.5 + 1e-6 * d) - drag64(prof=0.5 - 1e-6 * d)) / 2e-6
        ad = float(g["inflow_profile"] @ d)
        print(f"  d drag / d profile along direction {k}: adjoint {ad:.9e}  central difference "
              f"{fd:.9e}  rel. error {abs(fd - ad) / abs(ad):.1e}")
    fd = (drag64(nu=0.0025 * (1 + 1e-4)) - drag64(nu=0.0025 * (1 - 1e-4))) / (2e-4 * 0.0025)
    print(f"  d drag / d viscosity: adjoint {g['viscosity']:.9e}  central difference {fd:.9e}"
          f"  rel. error {abs(fd - g['viscosity']) / abs(g['viscosity']):.1e}")
    fwd = timed(lambda: t.apply(inp), 1)
    back = timed(lambda: t.vector_jacobian_product(
        inp, vjp_inputs=["inflow_profile"], vjp_outputs=["drag"],
        cotangent_vector={"drag": np.ones(1, np.float32)}), 1)
    print(f"  N 32: apply {fwd:.2f} s, VJP (drag -> inflow_profile) {back:.2f} s")
    if args.drag_iters <= 0:
        return
    # Mosaic's loop: Adam (lr 5e-4, beta 0.9 / 0.999, eps 1e-8) on |drag| + a flow penalty.
    p = np.full(n, 0.5)
    mom, var = np.zeros(n), np.zeros(n)
    best, stale, drags = np.inf, 0, []
    t0 = time.perf_counter()
    for it in range(1, args.drag_iters + 1):
        x = drag_opt_inputs(n, p)
        drag = float(t.apply(x)["drag"][0])
        gd = t.vector_jacobian_product(x, vjp_inputs=["inflow_profile"], vjp_outputs=["drag"],
                                       cotangent_vector={"drag": np.ones(1, np.float32)})
        loss = abs(drag) + 50.0 * (p.mean() - 0.5) ** 2
        grad = np.sign(drag) * gd["inflow_profile"].astype(np.float64) \
            + 100.0 * (p.mean() - 0.5) / n
        mom = 0.9 * mom + 0.1 * grad
        var = 0.999 * var + 0.001 * grad ** 2
        p = np.clip(p - 5e-4 * (mom / (1 - 0.9 ** it)) / (np.sqrt(var / (1 - 0.999 ** it))
                                                           + 1e-8), 0.0, 1.5)
        drags.append(drag)
        best, stale = (loss, 0) if loss < best else (best, stale + 1)
        if it % 10 == 0 or it == 1:
            print(f"  iteration {it:4d}  drag {drag:.5f}  mean profile {p.mean():.4f}"
                  f"  ({time.perf_counter() - t0:.0f} s)")
        if stale >= 50:
            break
    print(f"  drag {drags[0]:.5f} -> {drags[-1]:.5f} after {len(drags)} iterations "
          f"({100 * (drags[0] - drags[-1]) / drags[0]:.1f} % lower)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-e", "--experiments", nargs="+", default=list(DEFAULT),
                    choices=EXPERIMENTS + ("all",),
                    help=f"default: {' '.join(DEFAULT)}; all: every one")
    ap.add_argument("--quick", action="store_true",
                    help="smaller sweeps: fewer N, 5 fd_check directions, horizons up to 20")
    ap.add_argument("--trials", type=int, default=3, help="cost: timed calls per point")
    ap.add_argument("--cost-sizes", type=int, nargs="*", default=[64, 128, 192, 256],
                    help="cost by N (steps 100)")
    ap.add_argument("--cost-steps", type=int, nargs="*", default=[10, 50, 100, 500, 1000],
                    help="cost by steps (N 128)")
    ap.add_argument("--drag-sizes", type=int, nargs="*", default=[32, 64, 128],
                    help="drag_opt: the drag at these N")
    ap.add_argument("--drag-iters", type=int, default=250,
                    help="drag_opt: Adam iterations (0: none)")
    args = ap.parse_args()
    chosen = EXPERIMENTS if "all" in args.experiments else args.experiments
    t = Tesseract.from_tesseract_api(API)
    for name in EXPERIMENTS:
        if name in chosen:
            t0 = time.perf_counter()
            globals()[f"run_{name}"](t, args)
            print(f"  ({name}: {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
