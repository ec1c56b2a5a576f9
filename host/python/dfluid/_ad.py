"""What dfluid.torch and dfluid.jax share: one step and one rollout, forward and backward,
written once over an `ops` object that supplies the few array operations a framework does its
own way (clone, zeros, copy into a dfluid view, turn a dfluid view into a framework array,
stack). The arithmetic is all dfluid's: Simulation.step / step_adjoint and Rollout.run with
the hand-written adjoints and the checkpoint scheduler.

Arrays handed to dfluid are wrapped, not copied; dfluid writes only into arrays made here
(clones of the inputs, zero gradients), never into the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence

from . import BoundaryGradient, ObstacleForceLoss, UserLoss, wrap_gradient, wrap_state


@dataclass
class Controls:
    """A step's (or a rollout's, with a leading step axis) controls and parameter."""
    force: Optional[Sequence[Any]] = None        # tuple of face arrays, or None
    sources: Optional[Sequence[Any]] = None      # list per scalar, None entries allowed
    buoyancy: Any = None                         # scalar array/float or None (the configured)
    viscosity: Any = None                        # scalar array/float or None (the configured)
    inflow: Optional[Dict[str, Any]] = None      # side -> profile array, or None (the set one)
    wall_velocity: Optional[Sequence[Any]] = None  # obstacle wall velocity (face arrays) or None

    def step(self, k: int):
        f = None if self.force is None else tuple(c[k] for c in self.force)
        s = None if self.sources is None else [None if x is None else x[k] for x in self.sources]
        return f, s


def _set_buoyancy(sim, buoyancy, viscosity=None, c: Optional[Controls] = None):
    """Sets the parameters a Controls carries (None: keep the Simulation's): buoyancy,
    viscosity, inflow profiles (copied by dfluid) and the obstacle wall velocity (wrapped:
    the arrays a Controls holds are private clones, kept alive by the Simulation)."""
    if buoyancy is not None:
        sim.set_buoyancy(float(buoyancy))
    if viscosity is not None:
        sim.set_viscosity(float(viscosity))
    if c is not None and c.inflow is not None:
        vb = sim.velocity_boundary
        sim.set_velocity_boundary(inflow=dict(c.inflow), wall=vb["wall"] or None,
                                  outflow_speed=vb["outflow_speed"] or None)
    if c is not None and c.wall_velocity is not None:
        sim.set_obstacle_wall(sim.obstacle_wall, wall_velocity=tuple(c.wall_velocity))


def _set_params(sim, c: Controls):
    _set_buoyancy(sim, c.buoyancy, c.viscosity, c)


def force_values(sim, state, losses: Sequence[ObstacleForceLoss], steps: int, k: int, acc):
    """Adds state k's share of each force loss (weight * mean over its states of
    direction . F) to acc[i]; the force is read once, only when some loss needs state k."""
    f = None
    for i, loss in enumerate(losses):
        states = list(loss.steps) if len(loss.steps) else list(range(1, steps + 1))
        if k in states:
            if f is None:
                f = sim.obstacle_force(state)
            d = list(loss.direction) + [0.0] * (len(f) - len(loss.direction))
            acc[i] += loss.weight * sum(a * b for a, b in zip(d, f)) / len(states)


def _boundary_grads(c: Controls, gb, ops, like):
    """d / d each inflow profile of c (framework arrays in c.inflow's key order)."""
    if c.inflow is None:
        return None
    got = gb.inflow if gb is not None else {}
    return {k: (ops.from_view(got[_side_name(k)]).reshape(v.shape) if _side_name(k) in got
                else ops.zeros(v.shape, v)) for k, v in c.inflow.items()}


def _side_name(key):
    if isinstance(key, str):
        return key
    return "xyz"[key[0]] + ("-low" if key[1] == 0 else "-high")


def _pressure(sim, pressure, ops, like):
    return ops.clone(pressure) if pressure is not None else ops.zeros(sim.grid.shape(), like)


def step_forward(sim, velocity, scalars, pressure, c: Controls, ops):
    """One step from (velocity, scalars, pressure) into fresh arrays; returns them."""
    v = [ops.clone(x) for x in velocity]
    s = [ops.clone(x) for x in scalars]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_params(sim, c)
    state = wrap_state(sim.context, sim.grid, v, s, p)
    sim.step(state, force=None if c.force is None else tuple(c.force), sources=c.sources)
    return v, s, p


def step_force(sim, velocity, scalars, pressure):
    """The obstacle force of the state (velocity, scalars, pressure): dim floats."""
    return sim.obstacle_force(wrap_state(sim.context, sim.grid, list(velocity), list(scalars),
                                         pressure))


def step_backward(sim, velocity, scalars, pressure, c: Controls, grad_v, grad_s, want_force: bool,
                  want_sources: Sequence[bool], want_buoyancy: bool, ops,
                  want_viscosity: bool = False, grad_obstacle_force=None,
                  want_inflow: bool = False, want_wall: bool = False, extras=None):
    """Vector-Jacobian product of step_forward: cotangents of the outputs (None: zero) in,
    cotangents of velocity, scalars, force components, sources and buoyancy out (and, with
    want_viscosity, a sixth value: the viscosity's). grad_obstacle_force: the cotangent of
    the output state's obstacle force (dim numbers, or None). `extras` (a dict, optional)
    receives 'inflow' (side -> d / d profile) and 'wall_velocity' (face arrays) as asked."""
    gv = [ops.zeros(x.shape, x) if g is None else ops.clone(g) for g, x in zip(grad_v, velocity)]
    gs = [ops.zeros(x.shape, x) if g is None else ops.clone(g) for g, x in zip(grad_s, scalars)]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_params(sim, c)
    state = wrap_state(sim.context, sim.grid, list(velocity), list(scalars), p)
    gw = ([ops.zeros(x.shape, x) for x in c.wall_velocity]
          if (want_wall and c.wall_velocity is not None) else None)
    gp = None
    if grad_obstacle_force is not None:
        # The force is linear in the output state (velocity, pressure) and affine in the
        # wall velocity: its cotangent enters the output's cotangent, the pressure's included.
        gp = ops.zeros(sim.grid.shape(), velocity[0])
        direction = [float(x) for x in grad_obstacle_force]
    grad = wrap_gradient(sim.context, sim.grid, gv, gs, gp)
    if gp is not None:
        sim.obstacle_force_adjoint(direction, 1.0, grad)
        if gw is not None:
            sim.obstacle_force_wall_gradient(direction, 1.0, tuple(gw))
    gb = BoundaryGradient(sim.grid) if (want_inflow and c.inflow is not None) else None
    gf = [ops.zeros(x.shape, x) for x in c.force] if (want_force and c.force is not None) else None
    gsrc = None
    if c.sources is not None and any(want_sources):
        gsrc = [ops.zeros(x.shape, x) if (x is not None and w) else None
                for x, w in zip(c.sources, want_sources)]
    out = sim.step_adjoint(state, grad, force=None if c.force is None else tuple(c.force),
                           sources=c.sources, grad_force=None if gf is None else tuple(gf),
                           grad_sources=gsrc, buoyancy_gradient=want_buoyancy,
                           viscosity_gradient=want_viscosity, grad_boundary=gb,
                           grad_obstacle_wall_velocity=None if gw is None else tuple(gw))
    if extras is not None:
        if gb is not None:
            extras["inflow"] = _boundary_grads(c, gb, ops, velocity[0])
        if gw is not None:
            extras["wall_velocity"] = gw
    if want_viscosity:
        return gv, gs, gf, gsrc, out[1], out[2]
    return gv, gs, gf, gsrc, out[1]


def rollout_forward(sim, steps: int, save_steps: Sequence[int], velocity, scalars, pressure,
                    c: Controls, ops, force_losses: Sequence[ObstacleForceLoss] = (),
                    force_out: Optional[list] = None):
    """`steps` steps; returns the states at `save_steps`, stacked per field: (velocity
    components, scalars), each of shape (len(save_steps), *field shape). Nothing else is
    kept: the backward pass recomputes (Rollout.run, checkpointed or not). With
    `force_losses`, their values (floats) are appended to `force_out`."""
    v = [ops.clone(x) for x in velocity]
    s = [ops.clone(x) for x in scalars]
    p = _pressure(sim, pressure, ops, velocity[0])
    _set_params(sim, c)
    state = wrap_state(sim.context, sim.grid, v, s, p)
    acc = [0.0] * len(force_losses)
    out_v: List[list] = [[] for _ in v]
    out_s: List[list] = [[] for _ in s]
    for k in range(steps + 1):
        if k in save_steps:
            for a, x in enumerate(v):
                out_v[a].append(ops.clone(x))
            for i, x in enumerate(s):
                out_s[i].append(ops.clone(x))
        if k > 0 and force_losses:
            force_values(sim, state, force_losses, steps, k, acc)
        if k < steps:
            f, src = c.step(k)
            sim.step(state, force=f, sources=src)
    if force_out is not None:
        force_out.extend(acc)
    return [ops.stack(x) for x in out_v], [ops.stack(x) for x in out_s]


def rollout_backward(rollout, sim, steps: int, save_steps: Sequence[int], velocity, scalars,
                     pressure, c: Controls, grad_v, grad_s, want_force: bool,
                     want_sources: Sequence[bool], want_buoyancy: bool, checkpointing, ops,
                     want_viscosity: bool = False, force_losses: Sequence[ObstacleForceLoss] = (),
                     grad_force_losses=None, want_inflow: bool = False, want_wall: bool = False,
                     extras=None):
    """Vector-Jacobian product of rollout_forward through Rollout.run: the cotangents of the
    saved states enter as a user loss at the saved steps (its gradient is the cotangent), so
    the run's gradients are the products wanted; those of the force losses' values scale the
    losses' weights. Returns (grad velocity, grad scalars, grad forces stacked per component
    or None, grad sources stacked per scalar or None, grad buoyancy; with want_viscosity, a
    sixth value: grad viscosity). `extras` (a dict, optional) receives 'inflow' (side ->
    d / d profile) and 'wall_velocity' (face arrays) as asked."""
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
    _set_params(sim, c)
    initial = wrap_state(sim.context, sim.grid, list(velocity), list(scalars), p)
    want_src = c.sources is not None and any(want_sources)
    scaled = []
    if grad_force_losses is not None:
        scaled = [replace(loss, weight=loss.weight * float(g))
                  for loss, g in zip(force_losses, grad_force_losses) if float(g) != 0.0]
    want_inflow = bool(want_inflow and c.inflow is not None)
    want_wall = bool(want_wall and c.wall_velocity is not None)
    res = rollout.run(initial, steps,
                      forces=None if c.force is None else tuple(c.force),
                      sources=c.sources,
                      user_losses=[UserLoss(sorted(index), inject, "cotangent")],
                      checkpointing=checkpointing,
                      force_gradients=bool(want_force and c.force is not None),
                      source_gradients=bool(want_src), buoyancy_gradient=bool(want_buoyancy),
                      viscosity_gradient=bool(want_viscosity), obstacle_forces=scaled,
                      boundary_gradient=want_inflow, obstacle_wall_velocity_gradient=want_wall)
    if extras is not None:
        if want_inflow:
            extras["inflow"] = _boundary_grads(c, res.grad_boundary, ops, velocity[0])
        if want_wall:
            gw = res.grad_obstacle_wall_velocity
            extras["wall_velocity"] = ([ops.from_view(x) for x in gw] if gw is not None else
                                       [ops.zeros(x.shape, x) for x in c.wall_velocity])
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
