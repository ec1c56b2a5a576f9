"""Two of the Mosaic benchmark's navier-stokes-grid experiments run on the dfluid adapter
in-process (tesseract_core, no container), with the benchmark's settings:

  forward/tgv_nu_sweep  the Taylor-Green vortex u = sin x cos y, v = -cos x sin y on
                        [0, 2 pi)^2, dt 0.05, 20 steps, nu in {1e-4, 5e-4, 1e-3, 5e-3, 1e-2,
                        5e-2}: relative L2 error of the final velocity against the analytic
                        decay exp(-2 nu t) (N = 64 as published, and N = 16);
  gradient/fd_check     N 16, nu 1e-3, dt 0.05, 20 steps, loss sum(result^2): its VJP with
                        respect to v0 along 20 random unit directions against central
                        differences with steps eps * RMS(v0), eps in {5, 1, 0.1, 0.01, 1e-3,
                        1e-4}; the median relative error per eps and the cosine between the
                        two sets of directional derivatives. The initial velocity is a
                        random divergence-free field with its energy in a ring at |k| = 2
                        (width 0.5), maximum speed 0.3, as the benchmark's "multimode"
                        initial condition describes (not the same random draw).
  and the viscosity's gradient of the same loss against a central difference.

    python host/python/mosaic/run_checks.py [--quick]

Needs dfluid and tesseract-core[runtime]; prints a table.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from tesseract_core import Tesseract

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "navier-stokes-grid",
                   "tesseract_api.py")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N = 16 only, 5 directions")
    args = ap.parse_args()
    t = Tesseract.from_tesseract_api(API)
    f32 = lambda x: np.array([x], np.float32)  # noqa: E731

    print("forward/tgv_nu_sweep (dt 0.05, 20 steps): relative L2 error")
    for n in ((16,) if args.quick else (16, 64)):
        v0 = tgv(n).astype(np.float32)
        errs = []
        t0 = time.perf_counter()
        for nu in (1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2):
            out = t.apply({"v0": v0, "viscosity": f32(nu), "dt": f32(0.05), "steps": 20})
            ref = tgv(n) * np.exp(-2 * nu * 1.0)
            errs.append(np.linalg.norm(out["result"] - ref) / np.linalg.norm(ref))
            print(f"  N {n:3d}  nu {nu:7.1e}  error {errs[-1]:.3e}")
        print(f"  N {n:3d}  mean {np.mean(errs):.3e}  ({time.perf_counter() - t0:.1f} s)")

    print("gradient/fd_check (N 16, nu 1e-3, dt 0.05, 20 steps, loss sum(result^2))")
    n, nu, steps = 16, 1e-3, 20
    v0 = ring_field(n).astype(np.float32)
    base = {"viscosity": f32(nu), "dt": f32(0.05), "steps": steps}
    loss = lambda v, **kw: float(np.sum(  # noqa: E731
        t.apply({**base, **kw, "v0": v.astype(np.float32)})["result"].astype(np.float64) ** 2))
    res = t.apply({**base, "v0": v0})["result"]
    vjp = t.vector_jacobian_product({**base, "v0": v0}, vjp_inputs=["v0", "viscosity"],
                                    vjp_outputs=["result"],
                                    cotangent_vector={"result": 2 * res})
    g = vjp["v0"].astype(np.float64)
    scale = float(np.sqrt(np.mean(v0.astype(np.float64) ** 2)))
    rng = np.random.default_rng(0)
    ndirs = 5 if args.quick else 20
    dirs = [d / np.linalg.norm(d) for d in (rng.standard_normal(v0.shape) for _ in range(ndirs))]
    ad = np.array([np.vdot(g, d) for d in dirs])
    for eps in (5.0, 1.0, 0.1, 0.01, 1e-3, 1e-4):
        h = eps * scale
        fd = np.array([(loss(v0 + h * d) - loss(v0 - h * d)) / (2 * h) for d in dirs])
        rel = np.abs(fd - ad) / np.maximum(np.maximum(np.abs(fd), np.abs(ad)), 1e-30)
        cos = np.dot(fd, ad) / (np.linalg.norm(fd) * np.linalg.norm(ad))
        print(f"  eps {eps:7.1e}  median rel. error {np.median(rel):.2e}  cosine {cos:.6f}")
    hn = 1e-2 * nu
    fd_nu = (loss(v0, viscosity=f32(nu + hn)) - loss(v0, viscosity=f32(nu - hn))) / (2 * hn)
    print(f"  viscosity: VJP {float(vjp['viscosity'][0]):.6e}  central difference {fd_nu:.6e}")


if __name__ == "__main__":
    main()
