"""Solver in the loop (Um et al., 2020, "Solver-in-the-Loop: Learning from Differentiable
Physics to Interact with Iterative PDE-Solvers"): a small CNN corrects a coarse dfluid smoke
simulation towards a finer one, trained through several unrolled, differentiable dfluid steps.

The reference is a buoyant smoke plume on a fine grid (2 x the resolution), downsampled to the
coarse grid: density by 2 x 2 averages, the MAC velocity by averaging the two fine faces that
make up each coarse face. The coarse solver misses the fine solver's small-scale dynamics; the
network sees the coarse state (velocity averaged to cells, density) and outputs a correction
that enters each coarse step as its force (u += dt f, before the projection), so the corrected
state stays divergence-free. Training unrolls `unroll` corrected steps from reference states at
random times and minimizes the squared distance to the reference along the way; every step's
gradient is dfluid.torch's (the hand-written step adjoint, with the force gradient).

    PYTHONPATH=build/python python host/python/examples/solver_in_the_loop.py

prints the training loss and the error of the coarse run against the downsampled reference
over the whole horizon, without and with the correction.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import dfluid
import dfluid.torch

DT = torch.float64


def plume_source(n, dx, dtype=DT):
    """A round inflow of smoke near the bottom centre (cell centres at (i + 1/2) dx)."""
    c = (torch.arange(n, dtype=dtype) + 0.5) * dx
    y, x = torch.meshgrid(c, c, indexing="ij")
    L = n * dx
    r2 = ((x - 0.5 * L) ** 2 + (y - 0.15 * L) ** 2) / (0.08 * L) ** 2
    return torch.exp(-2.0 * r2)


def downsample(vel, rho):
    """Fine (2n) MAC state -> coarse (n): face pairs averaged, density 2 x 2 averaged."""
    ux, uy = vel
    cx = 0.5 * (ux[0::2, 0::2] + ux[1::2, 0::2])  # (n, n+1): coarse face i at fine face 2i
    cy = 0.5 * (uy[0::2, 0::2] + uy[0::2, 1::2])  # (n+1, n)
    cr = F.avg_pool2d(rho[None, None], 2)[0, 0]
    return (cx, cy), cr


def faces_to_cells(ux, uy):
    return 0.5 * (ux[..., :, 1:] + ux[..., :, :-1]), 0.5 * (uy[..., 1:, :] + uy[..., :-1, :])


def cells_to_faces(fx, fy):
    """Cell-centred field -> faces of a closed box (wall faces 0)."""
    return (F.pad(0.5 * (fx[..., :, 1:] + fx[..., :, :-1]), (1, 1)),
            F.pad(0.5 * (fy[..., 1:, :] + fy[..., :-1, :]), (0, 0, 1, 1)))


class Correction(torch.nn.Module):
    """Coarse state (velocity on cells, density) -> a force on faces."""

    def __init__(self, width=16):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 5, padding=2), torch.nn.Tanh(),
            torch.nn.Conv2d(width, width, 5, padding=2), torch.nn.Tanh(),
            torch.nn.Conv2d(width, 2, 5, padding=2))
        torch.nn.init.zeros_(self.body[-1].weight)  # start from the plain coarse solver
        torch.nn.init.zeros_(self.body[-1].bias)

    def forward(self, vel, rho):
        cx, cy = faces_to_cells(*vel)
        out = self.body(torch.stack([cx, cy, rho])[None])[0]
        return cells_to_faces(out[0], out[1])


def reference(n, steps, buoyancy, dt):
    """The fine run (2n cells, dx 1/2 of the coarse), downsampled after every step."""
    fine = dfluid.Grid((2 * n, 2 * n), dx=0.5)
    ctx = dfluid.Context("cpu")
    sim = dfluid.Simulation(ctx, fine, dfluid.StepConfig(dt=dt, buoyancy=buoyancy,
                                                         pressure_tolerance=1e-8), dtype="float64")
    vel = tuple(torch.zeros(s, dtype=DT) for s in fine.velocity_shapes)
    rho = torch.zeros(fine.shape(), dtype=DT)
    src = plume_source(2 * n, 0.5)
    state = dfluid.wrap_state(ctx, fine, vel, [rho])
    out = [downsample(vel, rho)]
    for _ in range(steps):
        sim.step(state, sources=[src])
        out.append(downsample(vel, rho))  # new tensors: the averages are not views
    return out


def error(a, b):
    (ax, ay), ar = a
    (bx, by), br = b
    return float(((ax - bx).square().sum() + (ay - by).square().sum() + (ar - br).square().sum()))


def train(size=16, horizon=24, unroll=8, iterations=60, lr=3e-3, batch=4, buoyancy=0.2, dt=0.5,
          seed=0, log=None):
    torch.manual_seed(seed)
    ref = reference(size, horizon, buoyancy, dt)
    coarse = dfluid.Grid((size, size), dx=1.0)
    sim = dfluid.Simulation(dfluid.Context("cpu"), coarse,
                            dfluid.StepConfig(dt=dt, buoyancy=buoyancy, pressure_tolerance=1e-8),
                            dtype="float64")
    fluid = dfluid.torch.Simulator(sim)
    src = plume_source(size, 1.0)
    net = Correction().to(DT)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def step(vel, rho, corrected):
        force = net(vel, rho) if corrected else None
        v, (r,), _ = fluid.step(vel, [rho], force=force, sources=[src])
        return v, r

    def run_error(corrected):
        vel, rho = ref[0]
        total = 0.0
        with torch.no_grad():
            for k in range(1, horizon + 1):
                vel, rho = step(vel, rho, corrected)
                total += error((vel, rho), ref[k])
        return total / horizon

    history = []
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    for it in range(iterations):
        # A batch of unrolls from reference states at random times: one random start alone
        # makes the gradient too noisy for the whole horizon to improve steadily.
        starts = torch.randint(0, horizon - unroll + 1, (batch,), generator=gen).tolist()
        loss = 0.0
        for k0 in starts:
            vel, rho = ref[k0]
            for j in range(1, unroll + 1):
                vel, rho = step(vel, rho, True)
                (rx, ry), rr = ref[k0 + j]
                loss = loss + ((vel[0] - rx).square().sum() + (vel[1] - ry).square().sum() +
                               (rho - rr).square().sum()) / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if log:
            log(f"iteration {it:3d}  unrolled loss {history[-1]:.5f}")
    return {"error_uncorrected": run_error(False), "error_corrected": run_error(True),
            "loss_first": history[0], "loss_last": history[-1],
            "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16, help="coarse cells per axis")
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--unroll", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    a = ap.parse_args()
    r = train(a.size, a.horizon, a.unroll, a.iterations, a.lr, log=print)
    print(f"mean squared error over {a.horizon} steps against the downsampled fine run: "
          f"{r['error_uncorrected']:.5f} uncorrected, {r['error_corrected']:.5f} corrected "
          f"({r['seconds']:.1f} s of training)")


if __name__ == "__main__":
    main()
