"""What dfluid.torch and dfluid.jax share: one step and one rollout, forward and backward,
written once over an `ops` object that supplies the few array operations a framework does its
own way (clone, zeros, copy into a dfluid view, turn a dfluid view into a framework array,
stack). The arithmetic is all dfluid's: Simulation.step / step_adjoint and Rollout.run with
the hand-written adjoints and the checkpoint scheduler.

Arrays handed to dfluid are wrapped, not copied; dfluid writes only into arrays made here
(clones of the inputs, zero gradients), never into the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from . import UserLoss, wrap_gradient, wrap_state


@dataclass
class Controls:
    """A step's (or a rollout's, with a leading step axis) controls and parameter."""
    force: Optional[Sequence[Any]] = None        # tuple of face arrays, or None
    sources: Optional[Sequence[Any]] = None      # list per scalar, None entries allowed
    buoyancy: Any = None                         # scalar array/float or None (the configured)
    viscosity: Any = None                        # scalar array/float or None (the configured)

    def step(self, k: int):
        f = None if self.force is None else tuple(c[k] for c in self.force)
        s = None if self.sources is None else [None if x is None else x[k] for x in self.sources]
        return f, s


def _set_buoyancy(sim, buoyancy, viscosity=None):
    """Sets the parameters a Controls carries (None: keep the Simulation's)."""
    if buoyancy is not None:
        sim.set_buoyancy(float(buoyancy))
    if viscosity is not None:
        sim.set_viscosity(float(viscosity))


def _pressure(sim, pressure, ops, like):
    return ops.clone(pressure) if pressure is not None else ops.zeros(sim.grid.shape(), like)


def step_forward(sim, velocity, scalars, pressure, c: Controls, ops):
    """One step from (velocity, scalars, pressure) into fresh arrays; returns them."""
    v = [ops.clone(x) for x in velocity]
    s = [ops.clone(x) for x in scalars]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_buoyancy(sim, c.buoyancy, c.viscosity)
    state = wrap_state(sim.context, sim.grid, v, s, p)
    sim.step(state, force=None if c.force is None else tuple(c.force), sources=c.sources)
    return v, s, p


def step_backward(sim, velocity, scalars, pressure, c: Controls, grad_v, grad_s, want_force: bool,
                  want_sources: Sequence[bool], want_buoyancy: bool, ops,
                  want_viscosity: bool = False):
    """Vector-Jacobian product of step_forward: cotangents of the outputs (None: zero) in,
    cotangents of velocity, scalars, force components, sources and buoyancy out (and, with
    want_viscosity, a sixth value: the viscosity's)."""
    gv = [ops.zeros(x.shape, x) if g is None else ops.clone(g) for g, x in zip(grad_v, velocity)]
    gs = [ops.zeros(x.shape, x) if g is None else ops.clone(g) for g, x in zip(grad_s, scalars)]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_buoyancy(sim, c.buoyancy, c.viscosity)
    state = wrap_state(sim.context, sim.grid, list(velocity), list(scalars), p)
    grad = wrap_gradient(sim.context, sim.grid, gv, gs)
    gf = [ops.zeros(x.shape, x) for x in c.force] if (want_force and c.force is not None) else None
    gsrc = None
    if c.sources is not None and any(want_sources):
        gsrc = [ops.zeros(x.shape, x) if (x is not None and w) else None
                for x, w in zip(c.sources, want_sources)]
    out = sim.step_adjoint(state, grad, force=None if c.force is None else tuple(c.force),
                           sources=c.sources, grad_force=None if gf is None else tuple(gf),
                           grad_sources=gsrc, buoyancy_gradient=want_buoyancy,
                           viscosity_gradient=want_viscosity)
    if want_viscosity:
        return gv, gs, gf, gsrc, out[1], out[2]
    return gv, gs, gf, gsrc, out[1]


def rollout_forward(sim, steps: int, save_steps: Sequence[int], velocity, scalars, pressure,
                    c: Controls, ops):
    """`steps` steps; returns the states at `save_steps`, stacked per field: (velocity
    components, scalars), each of shape (len(save_steps), *field shape). Nothing else is
    kept: the backward pass recomputes (Rollout.run, checkpointed or not)."""
    v = [ops.clone(x) for x in velocity]
    s = [ops.clone(x) for x in scalars]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_buoyancy(sim, c.buoyancy, c.viscosity)
    state = wrap_state(sim.context, sim.grid, v, s, p)
    out_v: List[list] = [[] for _ in v]
    out_s: List[list] = [[] for _ in s]
    for k in range(steps + 1):
        if k in save_steps:
            for a, x in enumerate(v):
                out_v[a].append(ops.clone(x))
            for i, x in enumerate(s):
                out_s[i].append(ops.clone(x))
        if k < steps:
            f, src = c.step(k)
            sim.step(state, force=f, sources=src)
    return [ops.stack(x) for x in out_v], [ops.stack(x) for x in out_s]


def rollout_backward(rollout, sim, steps: int, save_steps: Sequence[int], velocity, scalars,
                     pressure, c: Controls, grad_v, grad_s, want_force: bool,
                     want_sources: Sequence[bool], want_buoyancy: bool, checkpointing, ops,
                     want_viscosity: bool = False):
    """Vector-Jacobian product of rollout_forward through Rollout.run: the cotangents of the
    saved states enter as a user loss at the saved steps (its gradient is the cotangent), so
    the run's gradients are the products wanted. Returns (grad velocity, grad scalars,
    grad forces stacked per component or None, grad sources stacked per scalar or None,
    grad buoyancy; with want_viscosity, a sixth value: grad viscosity)."""
    index = {k: i for i, k in enumerate(save_steps)}

    def inject(step, state, grad):
        i = index[step]
        for a, g in enumerate(grad_v):
            if g is not None:
                ops.copy_into(grad.velocity[a], g[i])
        for j, g in enumerate(grad_s):
            if g is not None:
                ops.copy_into(grad.scalars[j], g[i])
        return 0.0

    p = _pressure(sim, pressure, ops, velocity[0])
    _set_buoyancy(sim, c.buoyancy, c.viscosity)
    initial = wrap_state(sim.context, sim.grid, list(velocity), list(scalars), p)
    want_src = c.sources is not None and any(want_sources)
    res = rollout.run(initial, steps,
                      forces=None if c.force is None else tuple(c.force),
                      sources=c.sources,
                      user_losses=[UserLoss(sorted(index), inject, "cotangent")],
                      checkpointing=checkpointing,
                      force_gradients=bool(want_force and c.force is not None),
                      source_gradients=bool(want_src), buoyancy_gradient=bool(want_buoyancy),
                      viscosity_gradient=bool(want_viscosity))
    gi = res.grad_initial
    gv = [ops.from_view(x) for x in gi.velocity]
    gs = [ops.from_view(x) for x in gi.scalars]
    gf = None
    if want_force and c.force is not None:
        per_step = res.grad_force
        gf = [ops.stack([ops.from_view(per_step[k][a]) for k in range(steps)])
              for a in range(len(c.force))]
    gsrc = None
    if want_src:
        per_step = res.grad_source
        gsrc = [ops.stack([ops.from_view(per_step[k][i]) for k in range(steps)])
                if (x is not None and w) else None
                for i, (x, w) in enumerate(zip(c.sources, want_sources))]
    if want_viscosity:
        return gv, gs, gf, gsrc, res.grad_buoyancy, res.grad_viscosity
    return gv, gs, gf, gsrc, res.grad_buoyancy
