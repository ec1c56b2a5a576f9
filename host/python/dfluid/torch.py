"""dfluid steps and rollouts as PyTorch autograd functions.

    import dfluid, dfluid.torch
    sim = dfluid.Simulation(dfluid.Context("cpu"), grid, dfluid.StepConfig(buoyancy=0.5),
                            dtype="float64")
    fluid = dfluid.torch.Simulator(sim)
    v, s, p = fluid.step(velocity, scalars, force=f)            # one differentiable step
    vs, ss = fluid.rollout(velocity, scalars, steps=100, forces=fs,
                           checkpointing=dfluid.Checkpointing(slots=8))

Gradients flow to the initial velocity and scalars, the force (per step in a rollout), the
scalar sources, the buoyancy coefficient (a 0-d tensor; the Simulation must have been made
with a non-zero buoyancy) and the viscosity (a 0-d tensor; the Simulation must diffuse:
StepConfig(diffusion="explicit" or "implicit", viscosity > 0)), the inflow profiles
(inflow={"x-low": u}) and the no-slip obstacles' wall velocity (wall_velocity=, e.g. a rate
times Simulator.rotation_velocity(center)); a step can also return the force on the
obstacles (obstacle_force=True) and a rollout the values of dfluid.ObstacleForceLoss terms
(obstacle_forces=[...]: mean drag, lift), both differentiable. Backward runs dfluid's
hand-written adjoints; a rollout's backward
runs Rollout.run, which recomputes the forward under the checkpoint plan, so a long rollout
trains in bounded memory: the forward keeps only its inputs and the saved states.

Tensors are handed to dfluid without copies (DLPack): on the CPU path they must be CPU
tensors of the simulation's dtype; with a CUDA build, make the Context on torch's stream,
``dfluid.Context.cuda(torch.cuda.current_stream().cuda_stream)``, and pass CUDA tensors.
Inputs are made contiguous first (no copy when they already are).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

import dfluid

from . import _ad


class _TorchOps:
    """The array operations of dfluid._ad for torch tensors."""

    @staticmethod
    def clone(x):
        return x.detach().clone(memory_format=torch.contiguous_format)

    @staticmethod
    def zeros(shape, like):
        return torch.zeros(tuple(shape), dtype=like.dtype, device=like.device)

    @staticmethod
    def copy_into(view, src):
        torch.from_dlpack(view).copy_(src)

    @staticmethod
    def from_view(view):
        return torch.from_dlpack(view)  # aliases dfluid's result (kept alive), no copy

    @staticmethod
    def stack(xs):
        return torch.stack(list(xs))


_ops = _TorchOps()


def _plain(x):
    """A detached, contiguous tensor dfluid can wrap (None stays None)."""
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        raise dfluid.InvalidArgument(f"expected a torch.Tensor, got {type(x).__name__}")
    return x.detach().contiguous()


class _Layout:
    """Where each input sits in the flat tensor list of an autograd.Function."""

    def __init__(self, dim, ns, force, sources, buoyancy, pressure, viscosity=None, inflow=None,
                 wall_velocity=None):
        self.dim, self.ns = dim, ns
        self.has_force = force is not None
        self.src_present = [x is not None for x in (sources or [])]
        self.has_buoyancy = buoyancy is not None
        self.has_viscosity = viscosity is not None
        self.inflow_keys = list(inflow.keys()) if inflow is not None else None
        self.has_wall = wall_velocity is not None
        self.has_pressure = pressure is not None

    def flatten(self, velocity, scalars, force, sources, buoyancy, pressure, viscosity=None,
                inflow=None, wall_velocity=None):
        flat = list(velocity) + list(scalars)
        if self.has_force:
            flat += list(force)
        flat += [x for x in (sources or []) if x is not None]
        if self.has_buoyancy:
            flat.append(buoyancy)
        if self.has_viscosity:
            flat.append(viscosity)
        if self.inflow_keys is not None:
            flat += [inflow[k] for k in self.inflow_keys]
        if self.has_wall:
            flat += list(wall_velocity)
        if self.has_pressure:
            flat.append(pressure)
        return flat

    def split(self, flat):
        it = iter(flat)
        v = [next(it) for _ in range(self.dim)]
        s = [next(it) for _ in range(self.ns)]
        f = [next(it) for _ in range(self.dim)] if self.has_force else None
        src = [next(it) if p else None for p in self.src_present] if self.src_present else None
        b = next(it) if self.has_buoyancy else None
        nu = next(it) if self.has_viscosity else None
        inflow = ({k: next(it) for k in self.inflow_keys} if self.inflow_keys is not None
                  else None)
        wall = [next(it) for _ in range(self.dim)] if self.has_wall else None
        p = next(it) if self.has_pressure else None
        self._extra = (inflow, wall)
        return v, s, f, src, b, p, nu

    def boundary(self, flat):
        """(inflow dict, wall velocity list) of a flat list, as split() finds them."""
        self.split(flat)
        return self._extra

    def gradients(self, gv, gs, gf, gsrc, gb, like, gnu=None, extras=None):
        """Gradients in the order of flatten (None where not wanted)."""
        out = list(gv) + list(gs)
        if self.has_force:
            out += list(gf) if gf is not None else [None] * self.dim
        for i, present in enumerate(self.src_present):
            if present:
                out.append(gsrc[i] if gsrc is not None else None)
        if self.has_buoyancy:
            out.append(None if gb is None else torch.tensor(gb, dtype=like.dtype,
                                                            device=like.device))
        if self.has_viscosity:
            out.append(None if gnu is None else torch.tensor(gnu, dtype=like.dtype,
                                                             device=like.device))
        extras = extras or {}
        if self.inflow_keys is not None:
            gi = extras.get("inflow")
            # dfluid's profile gradients are float64 host values: into the input's dtype.
            out += [None if gi is None else gi[k].to(dtype=like.dtype, device=like.device)
                    for k in self.inflow_keys]
        if self.has_wall:
            gw = extras.get("wall_velocity")
            out += list(gw) if gw is not None else [None] * self.dim
        if self.has_pressure:
            out.append(None)
        return out


def _controls(f, src, b, nu, inflow=None, wall=None):
    # Inflow profiles are host values in the library (copied by set_velocity_boundary): CUDA
    # tensors come to the host first (a no-op for CPU tensors). The wall velocity is wrapped.
    if inflow is not None:
        inflow = {k: v.cpu() for k, v in inflow.items()}
    return _ad.Controls(f, src, None if b is None else float(b),
                        None if nu is None else float(nu), inflow, wall)


def _wants_boundary(fctx, layout: _Layout):
    """Whether the inflow profiles and the wall velocity need gradients."""
    need = list(fctx.needs_input_grad[2:])
    n = layout.dim + layout.ns + (layout.dim if layout.has_force else 0)
    n += sum(layout.src_present) + layout.has_buoyancy + layout.has_viscosity
    k = len(layout.inflow_keys) if layout.inflow_keys is not None else 0
    want_inflow = any(need[n:n + k])
    want_wall = any(need[n + k:n + k + (layout.dim if layout.has_wall else 0)])
    return want_inflow, want_wall


def _wants(fctx, layout: _Layout):
    need = list(fctx.needs_input_grad[2:])  # skip the non-tensor leading arguments
    it = iter(need)
    for _ in range(layout.dim + layout.ns):
        next(it)
    want_force = any(next(it) for _ in range(layout.dim)) if layout.has_force else False
    want_src = [next(it) if p else False for p in layout.src_present]
    want_b = next(it) if layout.has_buoyancy else False
    want_nu = next(it) if layout.has_viscosity else False
    return want_force, want_src, want_b, want_nu


def _split_controls(layout: _Layout, flat):
    v, s, f, src, b, p, nu = layout.split(flat)
    inflow, wall = layout._extra
    return v, s, p, _controls(f, src, b, nu, inflow, wall)


class _StepFunction(torch.autograd.Function):
    @staticmethod
    def forward(fctx, fluid, spec, *flat):
        layout, with_force = spec
        v, s, p, c = _split_controls(layout, [_plain(x) for x in flat])
        sim = fluid.simulation
        ov, os_, op = _ad.step_forward(sim, v, s, p, c, _ops)
        fctx.fluid, fctx.spec = fluid, spec
        fctx.save_for_backward(*flat)
        fctx.mark_non_differentiable(op)
        if not with_force:
            return (*ov, *os_, op)
        force = torch.tensor(_ad.step_force(sim, ov, os_, op), dtype=v[0].dtype,
                             device=v[0].device)
        return (*ov, *os_, op, force)

    @staticmethod
    def backward(fctx, *grads):
        layout, with_force = fctx.spec
        flat = [_plain(x) for x in fctx.saved_tensors]
        v, s, p, c = _split_controls(layout, flat)
        want_force, want_src, want_b, want_nu = _wants(fctx, layout)
        want_inflow, want_wall = _wants_boundary(fctx, layout)
        gv_out = [_plain(g) for g in grads[:layout.dim]]
        gs_out = [_plain(g) for g in grads[layout.dim:layout.dim + layout.ns]]
        g_force = None
        if with_force and grads[-1] is not None:
            g_force = [float(x) for x in grads[-1].detach().cpu()]
        extras = {}
        r = _ad.step_backward(fctx.fluid.simulation, v, s, p, c, gv_out, gs_out, want_force,
                              want_src, want_b, _ops, want_viscosity=want_nu,
                              grad_obstacle_force=g_force, want_inflow=want_inflow,
                              want_wall=want_wall, extras=extras)
        gv, gs, gf, gsrc, gb = r[:5]
        return (None, None, *layout.gradients(gv, gs, gf, gsrc, gb if want_b else None, v[0],
                                              r[5] if want_nu else None, extras))


class _RolloutFunction(torch.autograd.Function):
    @staticmethod
    def forward(fctx, fluid, spec, *flat):
        layout, steps, save_steps, checkpointing, force_losses = spec
        v, s, p, c = _split_controls(layout, [_plain(x) for x in flat])
        values = []
        ov, os_ = _ad.rollout_forward(fluid.simulation, steps, save_steps, v, s, p, c, _ops,
                                      force_losses, values)
        fctx.fluid, fctx.spec = fluid, spec
        fctx.save_for_backward(*flat)
        if not force_losses:
            return (*ov, *os_)
        return (*ov, *os_, torch.tensor(values, dtype=v[0].dtype, device=v[0].device))

    @staticmethod
    def backward(fctx, *grads):
        layout, steps, save_steps, checkpointing, force_losses = fctx.spec
        flat = [_plain(x) for x in fctx.saved_tensors]
        v, s, p, c = _split_controls(layout, flat)
        want_force, want_src, want_b, want_nu = _wants(fctx, layout)
        want_inflow, want_wall = _wants_boundary(fctx, layout)
        gv_out = [_plain(g) for g in grads[:layout.dim]]
        gs_out = [_plain(g) for g in grads[layout.dim:layout.dim + layout.ns]]
        g_losses = None
        if force_losses and grads[-1] is not None:
            g_losses = [float(x) for x in grads[-1].detach().cpu()]
        extras = {}
        r = _ad.rollout_backward(
            fctx.fluid.rollout_engine, fctx.fluid.simulation, steps, save_steps, v, s, p, c,
            gv_out, gs_out, want_force, want_src, want_b, checkpointing, _ops,
            want_viscosity=want_nu, force_losses=force_losses, grad_force_losses=g_losses,
            want_inflow=want_inflow, want_wall=want_wall, extras=extras)
        gv, gs, gf, gsrc, gb = r[:5]
        return (None, None, *layout.gradients(gv, gs, gf, gsrc, gb if want_b else None, v[0],
                                              r[5] if want_nu else None, extras))


class Simulator:
    """Differentiable steps and rollouts of a dfluid Simulation for PyTorch.

    `checkpointing` (dfluid.Checkpointing or None for store-all) is the default of
    :meth:`rollout`'s backward pass."""

    def __init__(self, simulation, checkpointing: Optional[dfluid.Checkpointing] = None):
        self.simulation = simulation
        self.rollout_engine = dfluid.Rollout(simulation)
        self.checkpointing = checkpointing
        self._grid = simulation.grid

    def _layout(self, velocity, scalars, force, sources, buoyancy, pressure, viscosity=None,
                inflow=None, wall_velocity=None):
        if not isinstance(velocity, (tuple, list)) or len(velocity) != self._grid.dim:
            raise dfluid.InvalidArgument(
                f"velocity: expected a tuple of {self._grid.dim} tensors (grid.velocity_shapes)")
        if not isinstance(scalars, (tuple, list)):
            raise dfluid.InvalidArgument("scalars: expected a list of cell tensors")
        if force is not None and (not isinstance(force, (tuple, list))
                                  or len(force) != self._grid.dim):
            raise dfluid.InvalidArgument(
                f"force: expected a tuple of {self._grid.dim} face tensors or None")
        if sources is not None and len(sources) > len(scalars):
            raise dfluid.InvalidArgument("sources: more entries than scalars")
        if buoyancy is not None and not isinstance(buoyancy, torch.Tensor):
            buoyancy = torch.tensor(float(buoyancy), dtype=velocity[0].dtype)
        if viscosity is not None and not isinstance(viscosity, torch.Tensor):
            viscosity = torch.tensor(float(viscosity), dtype=velocity[0].dtype)
        if inflow is not None and not isinstance(inflow, dict):
            raise dfluid.InvalidArgument(
                "inflow: expected a dict side -> profile tensor ({'x-low': u}), got "
                f"{type(inflow).__name__}")
        if wall_velocity is not None and (not isinstance(wall_velocity, (tuple, list))
                                          or len(wall_velocity) != self._grid.dim):
            raise dfluid.InvalidArgument(
                f"wall_velocity: expected a tuple of {self._grid.dim} face tensors "
                "(grid.velocity_shapes) or None")
        layout = _Layout(self._grid.dim, len(scalars), force, sources, buoyancy, pressure,
                         viscosity, inflow, wall_velocity)
        return layout, layout.flatten(velocity, scalars, force, sources, buoyancy, pressure,
                                      viscosity, inflow, wall_velocity)

    def rotation_velocity(self, center: Sequence[float]) -> Tuple[torch.Tensor, ...]:
        """The wall velocity of a rotation at rate 1 about `center` (face tensors of the
        simulation's dtype): ``wall_velocity=tuple(rate * w for w in ...)`` spins the body at
        a differentiable `rate`."""
        sim = self.simulation
        views = dfluid.rigid_rotation_velocity(sim.context, self._grid, center, 1.0,
                                               dtype=sim.dtype)
        return tuple(torch.from_dlpack(x).clone() for x in views)

    def step(self, velocity: Sequence[torch.Tensor], scalars: Sequence[torch.Tensor],
             force: Optional[Sequence[torch.Tensor]] = None,
             sources: Optional[Sequence[Optional[torch.Tensor]]] = None,
             buoyancy: Any = None, pressure: Optional[torch.Tensor] = None,
             viscosity: Any = None, inflow: Optional[Dict[str, torch.Tensor]] = None,
             wall_velocity: Optional[Sequence[torch.Tensor]] = None,
             obstacle_force: bool = False):
        """One step. Returns (velocity, scalars, pressure); pressure (the warm start of the
        next solve, zero when None) carries no gradient. viscosity: a 0-d tensor (or float)
        replacing StepConfig.viscosity, differentiable (the StepConfig needs diffusion
        'explicit' or 'implicit' and a non-zero viscosity). inflow: a dict side -> profile
        tensor (Simulation.set_velocity_boundary's), wall_velocity: the no-slip obstacles'
        wall velocity (face tensors; see :meth:`rotation_velocity`), both differentiable and
        left set on the Simulation. obstacle_force=True appends the force on the obstacles
        in the output state, a differentiable (dim,) tensor."""
        layout, flat = self._layout(velocity, scalars, force, sources, buoyancy, pressure,
                                    viscosity, inflow, wall_velocity)
        out = _StepFunction.apply(self, (layout, bool(obstacle_force)), *flat)
        d, ns = self._grid.dim, len(scalars)
        if obstacle_force:
            return tuple(out[:d]), list(out[d:d + ns]), out[d + ns], out[d + ns + 1]
        return tuple(out[:d]), list(out[d:d + ns]), out[d + ns]

    def rollout(self, velocity: Sequence[torch.Tensor], scalars: Sequence[torch.Tensor],
                steps: int, forces: Optional[Sequence[torch.Tensor]] = None,
                sources: Optional[Sequence[Optional[torch.Tensor]]] = None,
                buoyancy: Any = None, save_steps: Optional[Sequence[int]] = None,
                checkpointing: Any = "default", pressure: Optional[torch.Tensor] = None,
                viscosity: Any = None, inflow: Optional[Dict[str, torch.Tensor]] = None,
                wall_velocity: Optional[Sequence[torch.Tensor]] = None,
                obstacle_forces: Sequence[dfluid.ObstacleForceLoss] = ()):
        """`steps` steps from (velocity, scalars). forces: a tuple of per-component tensors
        of shape (steps, *face shape); sources: per scalar (steps, *cell shape) or None.
        Returns the states at `save_steps` (default: the last), stacked per field:
        (velocity components, scalars), each (len(save_steps), *field shape). viscosity,
        inflow, wall_velocity: as for :meth:`step`, held over the rollout. With
        `obstacle_forces` (dfluid.ObstacleForceLoss: e.g. the mean drag over the last
        states), a third value: their values, a differentiable (len(obstacle_forces),)
        tensor whose backward is the same Rollout.run, the losses weighted by the
        cotangent."""
        if int(steps) < 1:
            raise dfluid.InvalidArgument(f"steps: {steps}, expected >= 1")
        save = sorted(set(int(k) for k in (save_steps if save_steps is not None else [steps])))
        if not save or save[0] < 0 or save[-1] > steps:
            raise dfluid.InvalidArgument(f"save_steps: {list(save)}, expected states in [0, {steps}]")
        ck = self.checkpointing if checkpointing == "default" else checkpointing
        layout, flat = self._layout(velocity, scalars, forces, sources, buoyancy, pressure,
                                    viscosity, inflow, wall_velocity)
        fl = tuple(obstacle_forces)
        out = _RolloutFunction.apply(self, (layout, int(steps), save, ck, fl), *flat)
        d, ns = self._grid.dim, len(scalars)
        if fl:
            return tuple(out[:d]), list(out[d:d + ns]), out[d + ns]
        return tuple(out[:d]), list(out[d:d + ns])
