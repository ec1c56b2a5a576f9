"""dfluid steps and rollouts as JAX functions with custom vector-Jacobian products.

    import jax; jax.config.update("jax_enable_x64", True)   # for float64 simulations
    import dfluid, dfluid.jax
    fluid = dfluid.jax.Simulator(dfluid.Simulation(ctx, grid, cfg, dtype="float64"))
    v, s = fluid.step(velocity, scalars, force)                 # jax.custom_vjp
    vs, ss = fluid.rollout(velocity, scalars, forces, steps=20)  # checkpointed backward

The functions run dfluid on the host through ``jax.pure_callback`` (the CPU path: XLA hands
the callback host buffers; dfluid wraps them and writes only into arrays it made), so they
compose with jax.grad, jax.vjp and jax.jit, but not with vmap over a batch (a callback per
batch entry: vmap_method="sequential"). Gradients reach the initial velocity and scalars,
the force (per step in a rollout) and the viscosity; backward runs the hand-written adjoints, a rollout's through
Rollout.run and its checkpoint plan.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import numpy as np

import dfluid

from . import _ad


class _NumpyOps:
    """The array operations of dfluid._ad for the numpy arrays of host callbacks."""

    @staticmethod
    def clone(x):
        return np.array(x, copy=True, order="C")

    @staticmethod
    def zeros(shape, like):
        return np.zeros(tuple(shape), dtype=like.dtype)

    @staticmethod
    def copy_into(view, src):
        np.copyto(view, src)

    @staticmethod
    def from_view(view):
        return np.asarray(view)

    @staticmethod
    def stack(xs):
        return np.stack(list(xs))


_ops = _NumpyOps()


def _writable(xs):
    # XLA's callback buffers may be read-only; dfluid wraps the state it reads as writable
    # arrays (it does not write the input of an adjoint), so hand it private copies.
    return [np.array(x, copy=True, order="C") for x in xs]


class Simulator:
    """Differentiable steps and rollouts of a dfluid Simulation for JAX (host callbacks)."""

    def __init__(self, simulation, checkpointing: Optional[dfluid.Checkpointing] = None):
        self.simulation = simulation
        self.rollout_engine = dfluid.Rollout(simulation)
        self.checkpointing = checkpointing
        self.dim = simulation.grid.dim
        self.dtype = np.dtype(simulation.dtype)
        self._step = self._make_step()
        self._rollouts = {}

    # ---- one step: (velocity, scalars, force, viscosity) -> (velocity, scalars) ----
    def _make_step(self):
        sim = self.simulation

        def controls(force, nu):
            f = None if force is None else tuple(_writable(force))
            return _ad.Controls(f, viscosity=None if nu is None else float(nu))

        def host_forward(velocity, scalars, force, nu):
            v, s, _ = _ad.step_forward(sim, _writable(velocity), _writable(scalars), None,
                                       controls(force, nu), _ops)
            return tuple(v), tuple(s)

        def host_backward(velocity, scalars, force, nu, gv, gs):
            c = controls(force, nu)
            r = _ad.step_backward(sim, _writable(velocity), _writable(scalars), None, c,
                                  _writable(gv), _writable(gs), c.force is not None, [], False,
                                  _ops, want_viscosity=nu is not None)
            out = (tuple(r[0]), tuple(r[1]))
            if c.force is not None:
                out = out + (tuple(r[2]),)
            if nu is not None:
                out = out + (np.asarray(r[5], dtype=np.asarray(nu).dtype),)
            return out

        def shapes(velocity, scalars):
            return (tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in velocity),
                    tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in scalars))

        @jax.custom_vjp
        def step(velocity, scalars, force, nu):
            return jax.pure_callback(host_forward, shapes(velocity, scalars), velocity, scalars,
                                     force, nu, vmap_method="sequential")

        def fwd(velocity, scalars, force, nu):
            return step(velocity, scalars, force, nu), (velocity, scalars, force, nu)

        def bwd(res, g):
            velocity, scalars, force, nu = res
            out_shapes = shapes(velocity, scalars)
            if force is not None:
                out_shapes = out_shapes + (tuple(jax.ShapeDtypeStruct(x.shape, x.dtype)
                                                 for x in force),)
            if nu is not None:
                out_shapes = out_shapes + (jax.ShapeDtypeStruct((), nu.dtype),)
            r = jax.pure_callback(host_backward, out_shapes, velocity, scalars, force, nu, g[0],
                                  g[1], vmap_method="sequential")
            return (r[0], r[1], r[2] if force is not None else None,
                    r[-1] if nu is not None else None)

        step.defvjp(fwd, bwd)
        return step

    def step(self, velocity: Sequence[Any], scalars: Sequence[Any], force: Any = None,
             viscosity: Any = None):
        """One step (cold pressure start). Returns (velocity tuple, scalars tuple).
        viscosity: as for :meth:`rollout`."""
        nu = None if viscosity is None else jax.numpy.asarray(viscosity, dtype=self.dtype)
        return self._step(tuple(velocity), tuple(scalars),
                          None if force is None else tuple(force), nu)

    # ---- a rollout: (velocity, scalars, forces, viscosity) -> states at save_steps ----
    def _make_rollout(self, steps, save, checkpointing):
        sim, rollout = self.simulation, self.rollout_engine

        def controls(forces, nu):
            f = None if forces is None else tuple(_writable(forces))
            return _ad.Controls(f, viscosity=None if nu is None else float(nu))

        def host_forward(velocity, scalars, forces, nu):
            v, s = _ad.rollout_forward(sim, steps, save, _writable(velocity), _writable(scalars),
                                       None, controls(forces, nu), _ops)
            return tuple(v), tuple(s)

        def host_backward(velocity, scalars, forces, nu, gv, gs):
            c = controls(forces, nu)
            r = _ad.rollout_backward(
                rollout, sim, steps, save, _writable(velocity), _writable(scalars), None, c,
                _writable(gv), _writable(gs), c.force is not None, [], False, checkpointing,
                _ops, want_viscosity=nu is not None)
            out = (tuple(_writable(r[0])), tuple(_writable(r[1])))
            if c.force is not None:
                out = out + (tuple(r[2]),)
            if nu is not None:
                out = out + (np.asarray(r[5], dtype=np.asarray(nu).dtype),)
            return out

        def shapes(velocity, scalars):
            n = len(save)
            return (tuple(jax.ShapeDtypeStruct((n,) + x.shape, x.dtype) for x in velocity),
                    tuple(jax.ShapeDtypeStruct((n,) + x.shape, x.dtype) for x in scalars))

        @jax.custom_vjp
        def run(velocity, scalars, forces, nu):
            return jax.pure_callback(host_forward, shapes(velocity, scalars), velocity, scalars,
                                     forces, nu, vmap_method="sequential")

        def fwd(velocity, scalars, forces, nu):
            return run(velocity, scalars, forces, nu), (velocity, scalars, forces, nu)

        def bwd(res, g):
            velocity, scalars, forces, nu = res
            out_shapes = (tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in velocity),
                          tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in scalars))
            if forces is not None:
                out_shapes = out_shapes + (tuple(jax.ShapeDtypeStruct(x.shape, x.dtype)
                                                 for x in forces),)
            if nu is not None:
                out_shapes = out_shapes + (jax.ShapeDtypeStruct((), nu.dtype),)
            r = jax.pure_callback(host_backward, out_shapes, velocity, scalars, forces, nu, g[0],
                                  g[1], vmap_method="sequential")
            gf = r[2] if forces is not None else None
            gnu = r[-1] if nu is not None else None
            return (r[0], r[1], gf, gnu)

        run.defvjp(fwd, bwd)
        return run

    def rollout(self, velocity: Sequence[Any], scalars: Sequence[Any], forces: Any = None,
                steps: int = 1, save_steps: Optional[Sequence[int]] = None,
                checkpointing: Any = "default", viscosity: Any = None):
        """`steps` steps; forces: tuple of per-component arrays (steps, *face shape) or None.
        Returns the states at `save_steps` (default: the last), stacked per field.
        viscosity: a 0-d array replacing StepConfig.viscosity over the rollout, differentiable
        (the StepConfig needs diffusion 'explicit' or 'implicit' and a non-zero viscosity)."""
        if int(steps) < 1:
            raise dfluid.InvalidArgument(f"steps: {steps}, expected >= 1")
        save = tuple(sorted(set(int(k) for k in (save_steps or [steps]))))
        if save[0] < 0 or save[-1] > steps:
            raise dfluid.InvalidArgument(f"save_steps: {list(save)}, expected states in [0, {steps}]")
        ck = self.checkpointing if checkpointing == "default" else checkpointing
        key = (int(steps), save, id(ck))
        if key not in self._rollouts:
            self._rollouts[key] = (self._make_rollout(int(steps), save, ck), ck)
        nu = None if viscosity is None else jax.numpy.asarray(viscosity, dtype=self.dtype)
        return self._rollouts[key][0](tuple(velocity), tuple(scalars),
                                      None if forces is None else tuple(forces), nu)
