"""A network controller for keyframe smoke control, trained through dfluid's checkpointed rollout.

The keyframe problem of dfluid-control (McNamara et al. 2004), posed for a family of initial
states: a blob of smoke at a random place in a closed box must arrive `shift` cells to the
right at the last step. A small convolutional network sees the initial density and the target
and outputs the force fields of every step; the loss is the relative keyframe error
(1/2 |rho_N - target|^2 / |target|^2) plus a small effort term. Its gradient comes from
dfluid.torch's rollout function, whose backward runs Rollout.run under a checkpoint plan
(Revolve with `slots` checkpoints), i.e. dfluid's hand-written adjoints; PyTorch only trains
the network (Adam).

    PYTHONPATH=build/python python host/python/examples/network_controller.py --size 32 --steps 16

prints the loss per iteration, and the relative keyframe error |rho_N - target| / |target|
with and without the controller, on the training blobs and on blobs it has not seen.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import dfluid
import dfluid.torch


def blob(n, cx, cy, radius, dtype):
    """A smooth round blob of smoke (cell centres at i + 1/2)."""
    y, x = torch.meshgrid(torch.arange(n, dtype=dtype) + 0.5, torch.arange(n, dtype=dtype) + 0.5,
                          indexing="ij")
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / radius ** 2
    return torch.exp(-2.0 * r2)


def cells_to_faces(fx, fy):
    """Cell-centred force components -> MAC faces of a closed box (wall faces stay 0): the
    mean of the two cells beside each interior face. Shapes (..., n, n) -> (..., n, n+1) and
    (..., n+1, n). Plain torch, so autograd differentiates it."""
    ux = F.pad(0.5 * (fx[..., :, 1:] + fx[..., :, :-1]), (1, 1))
    uy = F.pad(0.5 * (fy[..., 1:, :] + fy[..., :-1, :]), (0, 0, 1, 1))
    return ux, uy


class Controller(torch.nn.Module):
    """(initial density, target) -> the force of each of `steps` steps, on cells."""

    def __init__(self, steps, width=16, scale=0.05):
        super().__init__()
        self.steps, self.scale = steps, scale
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(2, width, 5, padding=2), torch.nn.Tanh(),
            torch.nn.Conv2d(width, width, 5, padding=2), torch.nn.Tanh(),
            torch.nn.Conv2d(width, 2 * steps, 5, padding=2))
        torch.nn.init.zeros_(self.body[-1].weight)  # start from "no control"
        torch.nn.init.zeros_(self.body[-1].bias)

    def forward(self, rho0, target):
        out = self.scale * self.body(torch.stack([rho0, target])[None])[0]
        fx, fy = out[: self.steps], out[self.steps:]
        return cells_to_faces(fx, fy)  # (steps, n, n+1), (steps, n+1, n)


def problems(n, count, shift, radius, generator, dtype):
    """`count` (initial, target) pairs: a blob at a random place, the target `shift` cells
    to its right."""
    pairs = []
    for _ in range(count):
        cx = float(radius + 1 + torch.rand((), generator=generator) * (n - 2 * radius - 2 - shift))
        cy = float(radius + 1 + torch.rand((), generator=generator) * (n - 2 * radius - 2))
        pairs.append((blob(n, cx, cy, radius, dtype), blob(n, cx + shift, cy, radius, dtype)))
    return pairs


def train(size=16, steps=8, iterations=40, train_count=4, test_count=2, shift=None, slots=3,
          lr=1e-2, effort=1e-4, seed=0, log=None):
    """Trains the controller; returns a dict of the losses and the keyframe errors."""
    dtype = torch.float64
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shift = shift if shift is not None else max(2, size // 4)
    radius = max(1.5, size / 10)
    grid = dfluid.Grid((size, size), dx=1.0)
    ctx = dfluid.Context("cpu")
    cfg = dfluid.StepConfig(dt=1.0, pressure_tolerance=1e-8)
    sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64")
    fluid = dfluid.torch.Simulator(sim, checkpointing=dfluid.Checkpointing(slots=slots,
                                                                           strategy="revolve"))
    zero_velocity = tuple(torch.zeros(s, dtype=dtype) for s in grid.velocity_shapes)
    net = Controller(steps).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    training = problems(size, train_count, shift, radius, gen, dtype)
    held_out = problems(size, test_count, shift, radius, gen, dtype)

    def run(rho0, target, controlled=True):
        forces = net(rho0, target) if controlled else None
        _, (rho,) = fluid.rollout(zero_velocity, [rho0], steps, forces=forces)
        err = (rho[-1] - target).square().sum() / target.square().sum()
        pen = 0.0 if forces is None else effort * sum(f.square().sum() for f in forces)
        return 0.5 * err + pen, err.sqrt()

    def errors(pairs, controlled):
        with torch.no_grad():
            return [float(run(r, t, controlled)[1]) for r, t in pairs]

    history = []
    t0 = time.perf_counter()
    for it in range(iterations):
        opt.zero_grad()
        loss = sum(run(r, t)[0] for r, t in training) / len(training)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if log:
            log(f"iteration {it:3d}  loss {float(loss):.5f}")
    seconds = time.perf_counter() - t0
    mean = lambda xs: sum(xs) / len(xs)
    return {
        "loss_first": history[0], "loss_last": history[-1], "seconds": seconds,
        "train_error_uncontrolled": mean(errors(training, False)),
        "train_error_controlled": mean(errors(training, True)),
        "test_error_uncontrolled": mean(errors(held_out, False)),
        "test_error_controlled": mean(errors(held_out, True)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--train", type=int, default=8, help="training blobs")
    ap.add_argument("--test", type=int, default=4, help="held-out blobs")
    ap.add_argument("--slots", type=int, default=4, help="checkpoint slots of the rollout")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    r = train(a.size, a.steps, a.iterations, a.train, a.test, None, a.slots, a.lr, seed=a.seed,
              log=print)
    print(f"loss {r['loss_first']:.4f} -> {r['loss_last']:.4f} in {r['seconds']:.1f} s")
    print(f"relative keyframe error, training blobs: {r['train_error_uncontrolled']:.3f} "
          f"uncontrolled -> {r['train_error_controlled']:.3f} controlled")
    print(f"relative keyframe error, held-out blobs: {r['test_error_uncontrolled']:.3f} "
          f"uncontrolled -> {r['test_error_controlled']:.3f} controlled")


if __name__ == "__main__":
    main()
