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
the force (per step in a rollout), the viscosity, the inflow profiles and the no-slip
obstacles' wall velocity; a step can return the force on the obstacles and a rollout the
values of ObstacleForceLoss terms (mean drag, lift), differentiable too. Backward runs the
hand-written adjoints, a rollout's through Rollout.run and its checkpoint plan.

Two ways a step runs. Where the package has its XLA FFI module (dfluid._xla, built when jax
was importable as the package was configured), a plain step (velocity, scalars, optional
force: no viscosity, inflow, wall velocity or obstacle force) and its adjoint are XLA custom
calls (``jax.ffi.ffi_call``): dfluid wraps XLA's own buffers and writes the results into them,
with no host callback and no copies through Python. Everything else (those extra inputs,
rollouts, a package without dfluid._xla, ``Simulator(..., ffi=False)``) runs through
``jax.pure_callback``; both give bitwise the same values. The FFI calls are registered for
the CPU platform, and for CUDA where dfluid is built with CUDA (untested on a GPU).
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Sequence

import jax
import numpy as np

import dfluid

from . import _ad

try:
    from . import _xla
except ImportError:  # built without jax at configure time: host callbacks only
    _xla = None

_ffi_registered = False


def ffi_available() -> bool:
    """True when this package has dfluid._xla, the XLA FFI handlers of a step."""
    return _xla is not None


def _register_ffi_targets():
    global _ffi_registered
    if _ffi_registered:
        return
    for name, capsule in _xla.handlers().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    if _xla.has_cuda:
        for name, capsule in _xla.handlers(cuda=True).items():
            jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
    _ffi_registered = True


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
    """Differentiable steps and rollouts of a dfluid Simulation for JAX.

    ffi: None (default) runs plain steps as XLA FFI calls where dfluid._xla exists, False
    always uses host callbacks, True requires the FFI module. Lifetime: the Simulator holds
    the Simulation and registers it with dfluid._xla under a handle that the compiled
    functions carry; the handle is dropped when the Simulator is freed, and a compiled
    function called after that fails with an error naming the handle (it never reaches a
    freed Simulation). The Simulation must not be stepped from two threads at once."""

    def __init__(self, simulation, checkpointing: Optional[dfluid.Checkpointing] = None,
                 ffi: Optional[bool] = None):
        if ffi and _xla is None:
            raise dfluid.InvalidArgument(
                "ffi=True: this dfluid package has no XLA FFI module (dfluid._xla); rebuild it "
                "with jax importable by its Python, or pass ffi=None / False")
        self.use_ffi = _xla is not None and ffi is not False
        self._handle = None
        if self.use_ffi:
            _register_ffi_targets()
            self._handle = _xla.register_simulation(simulation._address, simulation.dtype)
            weakref.finalize(self, _xla.unregister_simulation, self._handle)
        self._ffi_steps = {}
        self.simulation = simulation
        self.rollout_engine = dfluid.Rollout(simulation)
        self.checkpointing = checkpointing
        self.dim = simulation.grid.dim
        self.dtype = np.dtype(simulation.dtype)
        self._steps = {}
        self._rollouts = {}

    @staticmethod
    def _controls(force, nu, inflow, wall):
        f = None if force is None else tuple(_writable(force))
        return _ad.Controls(f, viscosity=None if nu is None else float(nu),
                            inflow=None if inflow is None else
                            {k: np.asarray(v) for k, v in inflow.items()},
                            wall_velocity=None if wall is None else tuple(_writable(wall)))

    @staticmethod
    def _grad_shapes(velocity, scalars, force, nu, inflow, wall):
        """The ShapeDtypeStructs of the cotangents of (velocity, scalars, force, nu, inflow,
        wall), None where the input is None."""
        sds = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)  # noqa: E731
        return (tuple(map(sds, velocity)), tuple(map(sds, scalars)),
                None if force is None else tuple(map(sds, force)),
                None if nu is None else jax.ShapeDtypeStruct((), nu.dtype),
                None if inflow is None else {k: sds(v) for k, v in inflow.items()},
                None if wall is None else tuple(map(sds, wall)))

    @staticmethod
    def _pack(r, extras, force, nu, inflow, wall):
        """The host callback's cotangents in the order of _grad_shapes (None dropped)."""
        out = (tuple(_writable(r[0])), tuple(_writable(r[1])))
        if force is not None:
            out += (tuple(r[2]),)
        if nu is not None:
            out += (np.asarray(r[5], dtype=np.asarray(nu).dtype),)
        if inflow is not None:
            out += ({k: np.asarray(extras["inflow"][k], dtype=np.asarray(v).dtype)
                     for k, v in inflow.items()},)
        if wall is not None:
            out += (tuple(np.asarray(x) for x in extras["wall_velocity"]),)
        return out

    @staticmethod
    def _unpack(r, force, nu, inflow, wall):
        it = iter(r)
        gv, gs = next(it), next(it)
        gf = next(it) if force is not None else None
        gnu = next(it) if nu is not None else None
        gi = next(it) if inflow is not None else None
        gw = next(it) if wall is not None else None
        return (gv, gs, gf, gnu, gi, gw)

    # ---- one step: (velocity, scalars, force, nu, inflow, wall) -> (velocity, scalars[, F]) --
    def _make_step(self, with_force):
        sim, dim, cls = self.simulation, self.dim, type(self)

        def host_forward(velocity, scalars, force, nu, inflow, wall):
            v, s, p = _ad.step_forward(sim, _writable(velocity), _writable(scalars), None,
                                       cls._controls(force, nu, inflow, wall), _ops)
            if not with_force:
                return tuple(v), tuple(s)
            f = np.asarray(_ad.step_force(sim, v, s, p), dtype=v[0].dtype)
            return tuple(v), tuple(s), f

        def host_backward(velocity, scalars, force, nu, inflow, wall, gv, gs, gF):
            c = cls._controls(force, nu, inflow, wall)
            extras = {}
            r = _ad.step_backward(sim, _writable(velocity), _writable(scalars), None, c,
                                  _writable(gv), _writable(gs), c.force is not None, [], False,
                                  _ops, want_viscosity=nu is not None,
                                  grad_obstacle_force=None if gF is None else
                                  [float(x) for x in np.asarray(gF)],
                                  want_inflow=inflow is not None, want_wall=wall is not None,
                                  extras=extras)
            return cls._pack(r, extras, force, nu, inflow, wall)

        def shapes(velocity, scalars):
            out = (tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in velocity),
                   tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in scalars))
            if with_force:
                out += (jax.ShapeDtypeStruct((dim,), velocity[0].dtype),)
            return out

        @jax.custom_vjp
        def step(velocity, scalars, force, nu, inflow, wall):
            return jax.pure_callback(host_forward, shapes(velocity, scalars), velocity, scalars,
                                     force, nu, inflow, wall, vmap_method="sequential")

        def fwd(*args):
            return step(*args), args

        def bwd(res, g):
            gs_shapes = tuple(x for x in cls._grad_shapes(*res) if x is not None)
            gF = g[2] if with_force else None
            r = jax.pure_callback(host_backward, gs_shapes, *res, g[0], g[1], gF,
                                  vmap_method="sequential")
            return cls._unpack(r, *res[2:])

        step.defvjp(fwd, bwd)
        return step

    # ---- one step as XLA FFI calls: (velocity, scalars, force) -> (velocity, scalars) ----
    def _check_ffi_operands(self, velocity, scalars, force):
        grid, dt = self.simulation.grid, self.dtype
        groups = [("velocity", velocity, list(grid.velocity_shapes)),
                  ("scalars", scalars, [tuple(grid.shape())] * len(scalars))]
        if force is not None:
            groups.append(("force", force, list(grid.velocity_shapes)))
        for name, xs, shapes in groups:
            if len(xs) != len(shapes):
                raise dfluid.InvalidArgument(f"{name}: {len(xs)} arrays, expected {len(shapes)}")
            for i, (x, shape) in enumerate(zip(xs, shapes)):
                if tuple(x.shape) != tuple(shape) or np.dtype(x.dtype) != dt:
                    raise dfluid.InvalidArgument(
                        f"{name}[{i}]: {np.dtype(x.dtype).name} {tuple(x.shape)}, expected "
                        f"{dt.name} {tuple(shape)} (the Simulation's dtype and grid)")

    def _make_ffi_step(self, has_force):
        suffix = "f64" if self.dtype == np.float64 else "f32"
        dim, handle, dt = self.dim, self._handle, self.dtype
        cell = jax.ShapeDtypeStruct(tuple(self.simulation.grid.shape()), dt)
        sds = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)  # noqa: E731
        attrs = dict(handle=np.int64(handle), has_force=bool(has_force))
        check = self._check_ffi_operands
        # The Simulator (and with it the handle) lives as long as these functions.
        keep = self

        def call(name, results, operands, n):
            return jax.ffi.ffi_call(name, results, vmap_method="sequential")(
                *operands, num_scalars=np.int64(n), **attrs)

        @jax.custom_vjp
        def step(velocity, scalars, force):
            check(velocity, scalars, force)
            n = len(scalars)
            results = [sds(x) for x in velocity] + [sds(x) for x in scalars] + [cell]
            operands = list(velocity) + list(scalars) + (list(force) if has_force else [])
            r = call(f"dfluid_step_{suffix}", results, operands, n)
            return tuple(r[:dim]), tuple(r[dim:dim + n])

        def fwd(velocity, scalars, force):
            return step(velocity, scalars, force), (velocity, scalars, force)

        def bwd(res, g):
            velocity, scalars, force = res
            n = len(scalars)
            results = [sds(x) for x in velocity] + [sds(x) for x in scalars]
            if has_force:
                results += [sds(x) for x in force]
            operands = (list(velocity) + list(scalars) + (list(force) if has_force else [])
                        + list(g[0]) + list(g[1]))
            r = call(f"dfluid_step_adjoint_{suffix}", results + [cell], operands, n)
            gf = tuple(r[dim + n:2 * dim + n]) if has_force else None
            return tuple(r[:dim]), tuple(r[dim:dim + n]), gf

        step.defvjp(fwd, bwd)
        step._dfluid_keep = keep
        return step

    def _nu(self, viscosity):
        return None if viscosity is None else jax.numpy.asarray(viscosity, dtype=self.dtype)

    def step(self, velocity: Sequence[Any], scalars: Sequence[Any], force: Any = None,
             viscosity: Any = None, inflow: Optional[Dict[str, Any]] = None,
             wall_velocity: Optional[Sequence[Any]] = None, obstacle_force: bool = False):
        """One step (cold pressure start). Returns (velocity tuple, scalars tuple), and with
        obstacle_force=True the force on the obstacles in the output state, a (dim,) array.
        viscosity, inflow (dict side -> profile), wall_velocity (the no-slip obstacles' face
        arrays): differentiable inputs, as for :meth:`rollout`."""
        if (self.use_ffi and viscosity is None and inflow is None and wall_velocity is None
                and not obstacle_force):
            has_force = force is not None
            if has_force not in self._ffi_steps:
                self._ffi_steps[has_force] = self._make_ffi_step(has_force)
            return self._ffi_steps[has_force](tuple(velocity), tuple(scalars),
                                              tuple(force) if has_force else None)
        key = bool(obstacle_force)
        if key not in self._steps:
            self._steps[key] = self._make_step(key)
        return self._steps[key](tuple(velocity), tuple(scalars),
                                None if force is None else tuple(force), self._nu(viscosity),
                                None if inflow is None else dict(inflow),
                                None if wall_velocity is None else tuple(wall_velocity))

    def rotation_velocity(self, center: Sequence[float]):
        """The wall velocity of a rotation at rate 1 about `center` (face arrays): pass
        ``wall_velocity=tuple(rate * w for w in ...)`` for a differentiable rate."""
        sim = self.simulation
        views = dfluid.rigid_rotation_velocity(sim.context, sim.grid, center, 1.0,
                                               dtype=sim.dtype)
        return tuple(jax.numpy.asarray(np.array(x)) for x in views)

    # ---- a rollout: -> states at save_steps (and the force losses' values) ----
    def _make_rollout(self, steps, save, checkpointing, force_losses):
        sim, rollout, cls = self.simulation, self.rollout_engine, type(self)

        def host_forward(velocity, scalars, forces, nu, inflow, wall):
            values = []
            v, s = _ad.rollout_forward(sim, steps, save, _writable(velocity), _writable(scalars),
                                       None, cls._controls(forces, nu, inflow, wall), _ops,
                                       force_losses, values)
            if not force_losses:
                return tuple(v), tuple(s)
            return tuple(v), tuple(s), np.asarray(values, dtype=v[0].dtype)

        def host_backward(velocity, scalars, forces, nu, inflow, wall, gv, gs, gl):
            c = cls._controls(forces, nu, inflow, wall)
            extras = {}
            r = _ad.rollout_backward(
                rollout, sim, steps, save, _writable(velocity), _writable(scalars), None, c,
                _writable(gv), _writable(gs), c.force is not None, [], False, checkpointing,
                _ops, want_viscosity=nu is not None, force_losses=force_losses,
                grad_force_losses=None if gl is None else list(np.asarray(gl)),
                want_inflow=inflow is not None, want_wall=wall is not None, extras=extras)
            return cls._pack(r, extras, forces, nu, inflow, wall)

        def shapes(velocity, scalars):
            n = len(save)
            out = (tuple(jax.ShapeDtypeStruct((n,) + x.shape, x.dtype) for x in velocity),
                   tuple(jax.ShapeDtypeStruct((n,) + x.shape, x.dtype) for x in scalars))
            if force_losses:
                out += (jax.ShapeDtypeStruct((len(force_losses),), velocity[0].dtype),)
            return out

        @jax.custom_vjp
        def run(velocity, scalars, forces, nu, inflow, wall):
            return jax.pure_callback(host_forward, shapes(velocity, scalars), velocity, scalars,
                                     forces, nu, inflow, wall, vmap_method="sequential")

        def fwd(*args):
            return run(*args), args

        def bwd(res, g):
            gs_shapes = tuple(x for x in cls._grad_shapes(*res) if x is not None)
            gl = g[2] if force_losses else None
            r = jax.pure_callback(host_backward, gs_shapes, *res, g[0], g[1], gl,
                                  vmap_method="sequential")
            return cls._unpack(r, *res[2:])

        run.defvjp(fwd, bwd)
        return run

    def rollout(self, velocity: Sequence[Any], scalars: Sequence[Any], forces: Any = None,
                steps: int = 1, save_steps: Optional[Sequence[int]] = None,
                checkpointing: Any = "default", viscosity: Any = None,
                inflow: Optional[Dict[str, Any]] = None,
                wall_velocity: Optional[Sequence[Any]] = None,
                obstacle_forces: Sequence[dfluid.ObstacleForceLoss] = ()):
        """`steps` steps; forces: tuple of per-component arrays (steps, *face shape) or None.
        Returns the states at `save_steps` (default: the last), stacked per field, and with
        `obstacle_forces` (dfluid.ObstacleForceLoss terms: mean drag, lift) a third value,
        their values as a (len(obstacle_forces),) array. Differentiable inputs besides the
        state and forces: viscosity (a 0-d array replacing StepConfig.viscosity; the
        StepConfig needs diffusion 'explicit' or 'implicit' and a non-zero viscosity), inflow
        (a dict side -> profile, Simulation.set_velocity_boundary's) and wall_velocity (the
        no-slip obstacles' wall velocity, face arrays), held over the rollout."""
        if int(steps) < 1:
            raise dfluid.InvalidArgument(f"steps: {steps}, expected >= 1")
        save = tuple(sorted(set(int(k) for k in (save_steps or [steps]))))
        if save[0] < 0 or save[-1] > steps:
            raise dfluid.InvalidArgument(f"save_steps: {list(save)}, expected states in [0, {steps}]")
        ck = self.checkpointing if checkpointing == "default" else checkpointing
        fl = tuple(obstacle_forces)
        fkey = tuple((tuple(x.steps), tuple(x.direction), float(x.weight), x.name) for x in fl)
        key = (int(steps), save, id(ck), fkey)
        if key not in self._rollouts:
            self._rollouts[key] = (self._make_rollout(int(steps), save, ck, fl), ck)
        return self._rollouts[key][0](tuple(velocity), tuple(scalars),
                                      None if forces is None else tuple(forces),
                                      self._nu(viscosity),
                                      None if inflow is None else dict(inflow),
                                      None if wall_velocity is None else tuple(wall_velocity))
