"""dfluid: a differentiable grid fluid simulator (C++/CUDA) with a thin Python layer.

Everything computes in the C++ library; this package only picks the precision and carries
arrays across without copies:

* ``State.wrap`` / ``Gradient.wrap`` make dfluid compute in *your* arrays (numpy, torch, jax,
  CuPy: anything with the buffer protocol or DLPack), and the arrays a ``State``,
  ``Gradient`` or ``RolloutResult`` hands out view dfluid's memory (numpy arrays on the CPU
  path, DLPack arrays on the GPU). Wrong dtype, shape, device, layout or a read-only array
  where dfluid writes raises :class:`InvalidArgument` naming the argument.
* Arrays are in C order, x fastest: a 2D cell field of ``Grid((nx, ny))`` has the shape
  ``(ny, nx)``; ``grid.velocity_shapes`` gives the MAC face arrays.

``dfluid.torch`` and ``dfluid.jax`` wrap steps and checkpointed rollouts as autograd
functions (imported on demand: neither framework is needed by this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import _dfluid
from ._dfluid import (  # noqa: F401  (re-exported)
    BoundaryGradient,
    BoundaryKind,
    Context,
    CudaError,
    Error,
    Grid,
    InvalidArgument,
    IoError,
    Location,
    NonFiniteValue,
    ShapeMismatch,
    SnapshotWriter,
    SolveReport,
    SolverNotConverged,
    StepConfig,
    StepReport,
    UnstableTimeStep,
    build_has_cuda,
    cpu_threads,
    cuda_available,
    list_snapshots,
    read_field,
    read_grid,
    read_run_attributes,
    set_cpu_threads,
    side_shape,
)

__version__ = _dfluid.__version__

_SUFFIX = {"float32": "F32", "float64": "F64"}


def _suffix(dtype: Any, name: str = "dtype") -> str:
    """'F32' or 'F64' for a dtype given as a string, numpy/torch/jax dtype or Python type."""
    s = str(getattr(dtype, "__name__", dtype))
    for key, suffix in _SUFFIX.items():
        if s == key or s.endswith("." + key) or s == key.replace("float", "f"):
            return suffix
    if s in ("float", "double"):
        return "F32" if s == "float" else "F64"
    raise InvalidArgument(f"{name}: {s!r}, expected 'float32' or 'float64'")


def _array_suffix(arr: Any, name: str) -> str:
    if not hasattr(arr, "dtype"):
        raise InvalidArgument(f"{name}: expected an array (numpy, torch, jax, cupy), "
                              f"got {type(arr).__name__}")
    return _suffix(arr.dtype, name + ".dtype")


def State(ctx: Context, grid: Grid, scalars: Sequence[str] = ("density",),
          dtype: Any = "float32"):
    """A zero smoke state allocated by dfluid (velocity, scalars named `scalars`, pressure)."""
    return getattr(_dfluid, "State" + _suffix(dtype))(ctx, grid, list(scalars))


def wrap_state(ctx: Context, grid: Grid, velocity: Sequence[Any], scalars: Sequence[Any],
               pressure: Any = None, names: Optional[Sequence[str]] = None):
    """A state that computes in the caller's arrays, without copies (see StateF32.wrap).

    The precision is the arrays' dtype (float32 or float64)."""
    if not isinstance(velocity, (tuple, list)) or not velocity:
        raise InvalidArgument("velocity: expected a tuple of face arrays (grid.velocity_shapes)")
    cls = getattr(_dfluid, "State" + _array_suffix(velocity[0], "velocity[0]"))
    return cls.wrap(ctx, grid, tuple(velocity), list(scalars), pressure,
                    None if names is None else list(names))


def Gradient(ctx: Context, grid: Grid, num_scalars: int = 1, dtype: Any = "float32"):
    """A zero state cotangent (velocity and `num_scalars` scalars) allocated by dfluid."""
    return getattr(_dfluid, "Gradient" + _suffix(dtype))(ctx, grid, num_scalars)


def wrap_gradient(ctx: Context, grid: Grid, velocity: Sequence[Any], scalars: Sequence[Any],
                  pressure: Any = None):
    """A state cotangent in the caller's arrays (no copy); `pressure` (optional): the
    cotangent of the state's pressure (what a loss on the obstacle force adds)."""
    if not isinstance(velocity, (tuple, list)) or not velocity:
        raise InvalidArgument("velocity: expected a tuple of face arrays (grid.velocity_shapes)")
    cls = getattr(_dfluid, "Gradient" + _array_suffix(velocity[0], "velocity[0]"))
    return cls.wrap(ctx, grid, tuple(velocity), list(scalars), pressure)


def Simulation(ctx: Context, grid: Grid, config: Optional[StepConfig] = None,
               dtype: Any = "float32", obstacles: Any = None):
    """One smoke step in float32 or float64: ``step(state, force, sources)`` and
    ``step_adjoint(input, grad, ...)`` (see SimulationF32)."""
    return getattr(_dfluid, "Simulation" + _suffix(dtype))(
        ctx, grid, config if config is not None else StepConfig(), obstacles)


def rigid_rotation_velocity(ctx: Context, grid: Grid, center: Sequence[float], rate: float,
                            dtype: Any = "float32"):
    """The velocity of a rigid rotation about `center` at `rate` (radians per unit time,
    counter-clockwise about +z) on every face, a tuple of face arrays viewing dfluid's memory:
    u = -rate (y - cy), v = rate (x - cx). A spinning body's wall velocity
    (``sim.set_obstacle_wall("no-slip", wall_velocity=...)``); linear in `rate`, so
    d loss / d rate = <grad_obstacle_wall_velocity, rigid_rotation_velocity(..., rate=1)>."""
    return getattr(_dfluid, "rigid_rotation_velocity" + _suffix(dtype))(
        ctx, grid, list(center), float(rate))


def circle_node_distance(grid: Grid, center: Sequence[float], radius: float):
    """The signed distance |x - center| - radius at every node of `grid` (a circle in 2D, a
    sphere in 3D; positive outside), a float64 array of the node shape (ny + 1, nx + 1) or
    (nz + 1, ny + 1, nx + 1). Negate it for a fluid inside a container."""
    return _dfluid.circle_node_distance(grid, list(center), float(radius))


def face_open_fractions(ctx: Context, grid: Grid, node_distance: Any, dtype: Any = "float32"):
    """The open fraction in [0, 1] of every face from a signed distance at the nodes
    (> 0 fluid; e.g. circle_node_distance): a tuple of face arrays viewing dfluid's memory, for
    ``sim.set_obstacle_fractions(...)`` (a sharper obstacle than a mask's staircase)."""
    return getattr(_dfluid, "face_open_fractions" + _suffix(dtype))(ctx, grid, node_distance)


def face_center_distance(ctx: Context, grid: Grid, node_distance: Any, dtype: Any = "float32"):
    """The signed distance at every face centre (the mean of the face's corner nodes) from a
    node distance (e.g. circle_node_distance): a tuple of face arrays, for
    ``sim.set_obstacle_fractions(fractions, face_distance)``, which lets the body be no-slip
    with its wall at its true distance (ghost fluid; implicit diffusion)."""
    return getattr(_dfluid, "face_center_distance" + _suffix(dtype))(ctx, grid, node_distance)


def Rollout(simulation):
    """Rollout gradients (store-all or checkpointed) over `simulation` (kept alive)."""
    name = type(simulation).__name__
    if not name.startswith("Simulation"):
        raise InvalidArgument(f"simulation: expected a dfluid Simulation, got {name}")
    return getattr(_dfluid, "Rollout" + name[len("Simulation"):])(simulation)


def Optimizer(ctx: Context, size: int, kind: str = "lbfgs", learning_rate: float = 1e-3,
              dtype: Any = "float32", lbfgs_history: int = 8, gradient_tolerance: float = 0.0):
    """L-BFGS ('lbfgs'), Adam ('adam') or gradient descent ('gd') on a flat array of `size`
    values: ``opt.step(x, objective)`` runs one iteration, updating x in place, with
    ``objective(x, grad) -> loss`` writing d loss / d x into grad (see OptimizerF32)."""
    return getattr(_dfluid, "Optimizer" + _suffix(dtype))(ctx, size, kind, learning_rate,
                                                          lbfgs_history, gradient_tolerance)


@dataclass
class Keyframe:
    """Loss ``weight * 1/2 * sum mask * (q_step - target)^2`` on scalar `scalar` at state
    `step` (state 0 is the initial one). `target` and `mask`: cell arrays."""
    step: int
    target: Any
    scalar: int = 0
    weight: float = 1.0
    mask: Any = None
    name: str = "keyframe"


@dataclass
class VelocityTarget:
    """Loss ``weight * 1/2 * sum (u_step - target)^2`` over every face; `target`: a tuple of
    face arrays."""
    step: int
    target: Sequence[Any]
    weight: float = 1.0
    name: str = "velocity"


@dataclass
class UserLoss:
    """A loss written in Python: ``fn(step, state, grad) -> float`` at each of `steps`; it
    writes d value / d state into ``grad``'s arrays (zero on entry). The arrays of `state`
    and `grad` alias dfluid's memory for the duration of the call only."""
    steps: Sequence[int]
    fn: Callable[[int, Any, Any], float]
    name: str = "user"


@dataclass
class ObstacleForceLoss:
    """Loss ``weight * mean over the states in steps of direction . F(state)``, F the force of
    the fluid on the obstacles (``Simulation.obstacle_force``: pressure and, with no-slip walls
    and diffusion, viscous shear). Drag: `direction` the mean flow's, lift: across it. `steps`:
    state indices in [1, N]; empty: every state 1..N. The Simulation needs obstacles."""
    steps: Sequence[int] = ()
    direction: Sequence[float] = (1.0, 0.0)
    weight: float = 1.0
    name: str = "drag"


@dataclass
class Checkpointing:
    """Checkpointed backward pass (RolloutOptions::checkpointing): a budget in bytes per
    level (device = the context's memory; host = pinned host; disk), or slot counts
    (``slots`` > 0 takes precedence). strategy: auto, store-all, recompute, revolve,
    multi-level."""
    device_bytes: int = 0
    host_bytes: int = 0
    disk_bytes: int = 0
    slots: int = 0
    host_slots: int = 0
    disk_slots: int = 0
    strategy: str = "auto"
    disk_directory: str = ""


__all__ = [
    "BoundaryGradient", "BoundaryKind", "Checkpointing", "Context", "CudaError", "Error", "Gradient", "Grid",
    "InvalidArgument", "IoError", "Keyframe", "Location", "NonFiniteValue", "ObstacleForceLoss", "Optimizer", "Rollout",
    "ShapeMismatch", "Simulation", "SnapshotWriter", "SolveReport", "SolverNotConverged",
    "State", "StepConfig", "StepReport", "UnstableTimeStep", "UserLoss", "VelocityTarget",
    "build_has_cuda", "cpu_threads", "cuda_available", "list_snapshots", "read_field",
    "read_grid", "read_run_attributes", "rigid_rotation_velocity", "set_cpu_threads",
    "circle_node_distance", "face_open_fractions", "face_center_distance",
    "side_shape", "wrap_gradient", "wrap_state",
]
