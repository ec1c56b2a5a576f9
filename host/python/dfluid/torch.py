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
StepConfig(diffusion="explicit" or "implicit", viscosity > 0)). Backward runs dfluid's hand-written adjoints; a rollout's backward
runs Rollout.run, which recomputes the forward under the checkpoint plan, so a long rollout
trains in bounded memory: the forward keeps only its inputs and the saved states.

Tensors are handed to dfluid without copies (DLPack): on the CPU path they must be CPU
tensors of the simulation's dtype; with a CUDA build, make the Context on torch's stream,
``dfluid.Context.cuda(torch.cuda.current_stream().cuda_stream)``, and pass CUDA tensors.
Inputs are made contiguous first (no copy when they already are).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

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

    def __init__(self, dim, ns, force, sources, buoyancy, pressure, viscosity=None):
        self.dim, self.ns = dim, ns
        self.has_force = force is not None
        self.src_present = [x is not None for x in (sources or [])]
        self.has_buoyancy = buoyancy is not None
        self.has_viscosity = viscosity is not None
        self.has_pressure = pressure is not None

    def flatten(self, velocity, scalars, force, sources, buoyancy, pressure, viscosity=None):
        flat = list(velocity) + list(scalars)
        if self.has_force:
            flat += list(force)
        flat += [x for x in (sources or []) if x is not None]
        if self.has_buoyancy:
            flat.append(buoyancy)
        if self.has_viscosity:
            flat.append(viscosity)
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
        p = next(it) if self.has_pressure else None
        return v, s, f, src, b, p, nu

    def gradients(self, gv, gs, gf, gsrc, gb, like, gnu=None):
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
        if self.has_pressure:
            out.append(None)
        return out


def _controls(f, src, b, nu):
    return _ad.Controls(f, src, None if b is None else float(b),
                        None if nu is None else float(nu))


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


class _StepFunction(torch.autograd.Function):
    @staticmethod
    def forward(fctx, fluid, layout, *flat):
        v, s, f, src, b, p, nu = layout.split([_plain(x) for x in flat])
        c = _controls(f, src, b, nu)
        ov, os_, op = _ad.step_forward(fluid.simulation, v, s, p, c, _ops)
        fctx.fluid, fctx.layout = fluid, layout
        fctx.save_for_backward(*flat)
        fctx.mark_non_differentiable(op)
        return (*ov, *os_, op)

    @staticmethod
    def backward(fctx, *grads):
        layout: _Layout = fctx.layout
        flat = [_plain(x) for x in fctx.saved_tensors]
        v, s, f, src, b, p, nu = layout.split(flat)
        c = _controls(f, src, b, nu)
        want_force, want_src, want_b, want_nu = _wants(fctx, layout)
        gv_out = [_plain(g) for g in grads[:layout.dim]]
        gs_out = [_plain(g) for g in grads[layout.dim:layout.dim + layout.ns]]
        r = _ad.step_backward(fctx.fluid.simulation, v, s, p, c, gv_out, gs_out, want_force,
                              want_src, want_b, _ops, want_viscosity=want_nu)
        gv, gs, gf, gsrc, gb = r[:5]
        return (None, None, *layout.gradients(gv, gs, gf, gsrc, gb if want_b else None, v[0],
                                              r[5] if want_nu else None))


class _RolloutFunction(torch.autograd.Function):
    @staticmethod
    def forward(fctx, fluid, spec, *flat):
        layout, steps, save_steps, checkpointing = spec
        v, s, f, src, b, p, nu = layout.split([_plain(x) for x in flat])
        c = _controls(f, src, b, nu)
        ov, os_ = _ad.rollout_forward(fluid.simulation, steps, save_steps, v, s, p, c, _ops)
        fctx.fluid, fctx.spec = fluid, spec
        fctx.save_for_backward(*flat)
        return (*ov, *os_)

    @staticmethod
    def backward(fctx, *grads):
        layout, steps, save_steps, checkpointing = fctx.spec
        flat = [_plain(x) for x in fctx.saved_tensors]
        v, s, f, src, b, p, nu = layout.split(flat)
        c = _controls(f, src, b, nu)
        want_force, want_src, want_b, want_nu = _wants(fctx, layout)
        gv_out = [_plain(g) for g in grads[:layout.dim]]
        gs_out = [_plain(g) for g in grads[layout.dim:]]
        r = _ad.rollout_backward(
            fctx.fluid.rollout_engine, fctx.fluid.simulation, steps, save_steps, v, s, p, c,
            gv_out, gs_out, want_force, want_src, want_b, checkpointing, _ops,
            want_viscosity=want_nu)
        gv, gs, gf, gsrc, gb = r[:5]
        return (None, None, *layout.gradients(gv, gs, gf, gsrc, gb if want_b else None, v[0],
                                              r[5] if want_nu else None))


class Simulator:
    """Differentiable steps and rollouts of a dfluid Simulation for PyTorch.

    `checkpointing` (dfluid.Checkpointing or None for store-all) is the default of
    :meth:`rollout`'s backward pass."""

    def __init__(self, simulation, checkpointing: Optional[dfluid.Checkpointing] = None):
        self.simulation = simulation
        self.rollout_engine = dfluid.Rollout(simulation)
        self.checkpointing = checkpointing
        self._grid = simulation.grid

    def _layout(self, velocity, scalars, force, sources, buoyancy, pressure, viscosity=None):
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
        layout = _Layout(self._grid.dim, len(scalars), force, sources, buoyancy, pressure,
                         viscosity)
        return layout, layout.flatten(velocity, scalars, force, sources, buoyancy, pressure,
                                      viscosity)

    def step(self, velocity: Sequence[torch.Tensor], scalars: Sequence[torch.Tensor],
             force: Optional[Sequence[torch.Tensor]] = None,
             sources: Optional[Sequence[Optional[torch.Tensor]]] = None,
             buoyancy: Any = None, pressure: Optional[torch.Tensor] = None,
             viscosity: Any = None) -> Tuple[Tuple[torch.Tensor, ...], list, torch.Tensor]:
        """One step. Returns (velocity, scalars, pressure); pressure (the warm start of the
        next solve, zero when None) carries no gradient. viscosity: a 0-d tensor (or float)
        replacing StepConfig.viscosity, differentiable (the StepConfig needs diffusion
        'explicit' or 'implicit' and a non-zero viscosity)."""
        layout, flat = self._layout(velocity, scalars, force, sources, buoyancy, pressure,
                                    viscosity)
        out = _StepFunction.apply(self, layout, *flat)
        d, ns = self._grid.dim, len(scalars)
        return tuple(out[:d]), list(out[d:d + ns]), out[d + ns]

    def rollout(self, velocity: Sequence[torch.Tensor], scalars: Sequence[torch.Tensor],
                steps: int, forces: Optional[Sequence[torch.Tensor]] = None,
                sources: Optional[Sequence[Optional[torch.Tensor]]] = None,
                buoyancy: Any = None, save_steps: Optional[Sequence[int]] = None,
                checkpointing: Any = "default", pressure: Optional[torch.Tensor] = None,
                viscosity: Any = None) -> Tuple[Tuple[torch.Tensor, ...], list]:
        """`steps` steps from (velocity, scalars). forces: a tuple of per-component tensors
        of shape (steps, *face shape); sources: per scalar (steps, *cell shape) or None.
        Returns the states at `save_steps` (default: the last), stacked per field:
        (velocity components, scalars), each (len(save_steps), *field shape). viscosity: as
        for :meth:`step`, held over the rollout."""
        if int(steps) < 1:
            raise dfluid.InvalidArgument(f"steps: {steps}, expected >= 1")
        save = sorted(set(int(k) for k in (save_steps if save_steps is not None else [steps])))
        if not save or save[0] < 0 or save[-1] > steps:
            raise dfluid.InvalidArgument(f"save_steps: {list(save)}, expected states in [0, {steps}]")
        ck = self.checkpointing if checkpointing == "default" else checkpointing
        layout, flat = self._layout(velocity, scalars, forces, sources, buoyancy, pressure,
                                    viscosity)
        out = _RolloutFunction.apply(self, (layout, int(steps), save, ck), *flat)
        d = self._grid.dim
        return tuple(out[:d]), list(out[d:])
