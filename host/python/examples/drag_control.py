"""Drag reduction behind a cylinder with PyTorch: the inflow profile (at a fixed flow rate) or
the cylinder's rotation rate is optimized through dfluid's checkpointed rollout to lower the
body's mean drag coefficient. The problem of the C++ app dfluid-drag, driven from Python.

The channel (lengths in cylinder diameters D, velocities in the mean inflow U = 1): 4.1 D high
with no-slip walls at the bottom and the top, the parabolic inflow on the left, an outflow on
the right, a staircase cylinder of diameter 1 centred 2 D from the inflow and 2 D above the
bottom wall (the Schafer-Turek 1996 proportions), no-slip walls on the body, viscosity
nu = U D / Re. The flow starts from rest; the loss is the drag coefficient
C_D = 2 F_x / (U^2 D) averaged over the last half of the states (dfluid.ObstacleForceLoss, the
force of the fluid on the body: pressure and viscous shear) plus lambda/2 |z|^2:

* --control inflow: u_j = Q u0_j e^{s_j} / sum_k u0_k e^{s_k} dy, s_j = sum_m z_m cos(m pi y_j / H)
  (m = 1..modes): a smooth positive modulation of the parabola u0 at its flow rate Q;
* --control rotation: the body's walls move with a rigid rotation at the rate
  omega = 2 U a / D about its centroid (a: the surface speed in U), the wall velocity
  omega * dfluid.torch.Simulator.rotation_velocity(center).

Both enter dfluid.torch's rollout as differentiable inputs (inflow=..., wall_velocity=...);
the mean drag is its differentiable output (obstacle_forces=[...]), whose backward is one
Rollout.run under a checkpoint plan. torch.optim.LBFGS (or Adam) does the rest.

    PYTHONPATH=build/python python host/python/examples/drag_control.py [--control rotation]

prints the loss per evaluation and the mean drag coefficient uncontrolled and optimized.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import dfluid
import dfluid.torch

H = 4.1  # channel height in cylinder diameters
U = 1.0  # mean inflow speed


def make_channel(size, length, reynolds, dt, tolerance):
    """Grid, body, step configuration and the parabolic profile of the channel, the way
    dfluid-drag builds them (so the uncontrolled drag is the app's)."""
    dx = H / size
    nx = int(round(length / dx))
    grid = dfluid.Grid((nx, size), dx=dx)
    grid.set_boundary(0, "inflow", "outflow")
    grid.set_boundary(1, "no-slip", "no-slip")
    c = (np.arange(max(nx, size)) + 0.5) * dx
    x, y = np.meshgrid(c[:nx] - 2.0, c[:size] - 2.0)
    solid = (x * x + y * y <= 0.25).astype(np.uint8)  # cells whose centre is inside
    rows = np.nonzero(solid.any(axis=1))[0]
    frontal = (rows[-1] - rows[0] + 1) * dx  # the height the staircase spans
    ys, xs = np.nonzero(solid)
    center = (float(((xs + 0.5) * dx).mean()), float(((ys + 0.5) * dx).mean()))
    yj = (np.arange(size) + 0.5) * dx
    base = 6 * U * yj * (H - yj) / H ** 2
    base *= U / base.mean()
    cfg = dfluid.StepConfig(dt=dt, diffusion="implicit", viscosity=U * frontal / reynolds,
                            pressure_tolerance=tolerance)
    cfg.diffusion_tolerance = min(tolerance, 1e-6)
    return grid, solid, frontal, center, base, cfg


def train(size=32, length=11.0, reynolds=20.0, steps=64, dt=0.125, control="inflow", modes=6,
          regularization=None, iterations=10, optimizer="lbfgs", lr=None, slots=8,
          tolerance=1e-6, log=None):
    """Optimizes the control; returns the figures (mean drag coefficients uncontrolled and
    optimized, the loss history, the control, seconds)."""
    if control not in ("inflow", "rotation"):
        raise ValueError(f"control: {control!r}, expected 'inflow' or 'rotation'")
    t0 = time.perf_counter()
    grid, solid, frontal, center, base, cfg = make_channel(size, length, reynolds, dt, tolerance)
    ctx = dfluid.Context("cpu")
    sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64", obstacles=solid)
    sim.set_obstacle_wall("no-slip")
    sim.set_velocity_boundary(inflow={"x-low": base})
    fluid = dfluid.torch.Simulator(sim, checkpointing=dfluid.Checkpointing(slots=slots))
    average = steps // 2
    drag = dfluid.ObstacleForceLoss(steps=list(range(steps - average + 1, steps + 1)),
                                    direction=(1.0, 0.0), weight=2.0 / (U * U * frontal))
    velocity = tuple(torch.zeros(s, dtype=torch.float64) for s in grid.velocity_shapes)
    u0 = torch.tensor(base)
    yj = (torch.arange(size, dtype=torch.float64) + 0.5) * grid.dx
    cosines = torch.stack([torch.cos(m * math.pi * yj / H) for m in range(1, modes + 1)])
    unit = fluid.rotation_velocity(center)
    lam = regularization if regularization is not None else (5.0 if control == "inflow" else 0.1)
    z = torch.zeros(modes if control == "inflow" else 1, dtype=torch.float64,
                    requires_grad=True)

    def controls(z):
        if control == "inflow":
            u = u0 * torch.exp(z @ cosines)
            return {"inflow": {"x-low": u * (u0.sum() / u.sum())}}  # the flow rate of u0
        omega = 2 * U * z[0] / frontal
        return {"wall_velocity": tuple(omega * w for w in unit)}

    def mean_drag(z):
        _, _, values = fluid.rollout(velocity, [], steps, obstacle_forces=[drag], **controls(z))
        return values[0]

    history = []

    def closure():
        opt.zero_grad()
        cd = mean_drag(z)
        loss = cd + 0.5 * lam * (z * z).sum()
        loss.backward()
        history.append((loss.item(), cd.item()))
        if log:
            log(f"evaluation {len(history):3d}: loss {history[-1][0]:.5f}, mean C_D {history[-1][1]:.5f}")
        return loss

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([z], lr=lr or 1.0, max_iter=iterations, history_size=8,
                                line_search_fn="strong_wolfe")
        opt.step(closure)
    elif optimizer == "adam":
        opt = torch.optim.Adam([z], lr=lr or 0.1)
        for _ in range(iterations):
            opt.step(closure)
    else:
        raise ValueError(f"optimizer: {optimizer!r}, expected 'lbfgs' or 'adam'")
    with torch.no_grad():
        controlled = float(mean_drag(z))
        uncontrolled = float(mean_drag(torch.zeros_like(z)))
    out = {"drag_uncontrolled": uncontrolled, "drag_controlled": controlled,
           "loss_first": history[0][0], "loss_last": min(h[0] for h in history),
           "evaluations": len(history), "z": z.detach().tolist(),
           "seconds": time.perf_counter() - t0, "cells": grid.cells}
    if control == "inflow":
        out["profile"] = controls(z.detach())["inflow"]["x-low"].tolist()
    else:
        out["surface_speed"] = z[0].item()
        out["rate"] = 2 * U * z[0].item() / frontal
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="cells across the channel")
    ap.add_argument("--length", type=float, default=11.0, help="channel length in D")
    ap.add_argument("--reynolds", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--dt", type=float, default=0.125)
    ap.add_argument("--control", choices=("inflow", "rotation"), default="inflow")
    ap.add_argument("--modes", type=int, default=6)
    ap.add_argument("--regularization", type=float, default=None,
                    help="lambda (default 5 for inflow, 0.1 for rotation)")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    ap.add_argument("--slots", type=int, default=8, help="checkpoint slots of the rollout")
    a = ap.parse_args()
    r = train(a.size, a.length, a.reynolds, a.steps, a.dt, a.control, a.modes,
              a.regularization, a.iterations, a.optimizer, slots=a.slots, log=print)
    what = (f"surface speed {r['surface_speed']:.3f} U (rate {r['rate']:.3f})"
            if a.control == "rotation" else f"profile {np.round(r['profile'], 3).tolist()}")
    print(f"mean drag coefficient {r['drag_uncontrolled']:.4f} uncontrolled, "
          f"{r['drag_controlled']:.4f} optimized "
          f"({100 * (1 - r['drag_controlled'] / r['drag_uncontrolled']):.1f}% less; {what}; "
          f"{r['evaluations']} evaluations, {r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
