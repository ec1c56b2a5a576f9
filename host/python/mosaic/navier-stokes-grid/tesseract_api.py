"""dfluid as a solver of the Mosaic benchmark's ``navier-stokes-grid`` interface (2D and 3D).

A Tesseract API module (tesseract_core): ``apply``, ``vector_jacobian_product`` and
``abstract_eval`` on the interface's inputs and outputs. Load it in-process with
``tesseract_core.Tesseract.from_tesseract_api(<this file>)`` or build it into a container with
``tesseract build`` (tesseract_config.yaml, tesseract_requirements.txt next to it).

What it computes: ``steps`` dfluid steps of size ``dt`` on the box of side ``domain_extent``
with ``N`` cells per axis (from ``v0``): semi-Lagrangian velocity advection (RK2 backtrace;
MacCormack or first order, see ``velocity_advection``), implicit viscous diffusion (backward
Euler, CG), MGPCG projection, in float64 (density 1). With walls, inflow or an obstacle the
projection uses the incremental pressure correction: the default (non-incremental) splitting
settles dt-dependently next to no-slip walls (the drag of Mosaic's drag_opt set-up at N 64
was 0.083 at dt 0.02 and 0.066 at dt 0.01; incremental: 0.0403 and 0.0398). Periodic boxes
without an obstacle keep the default.

Geometry. Mosaic's fields are collocated: ``v0[i, j, 0, a]`` (3D: ``v0[i, j, k, a]``) is
component a at one point per cell. dfluid's velocity lives on MAC faces; the adapter makes
Mosaic's points dfluid's cell centres and converts per axis:

* periodic axis: the domain is ``[0, L)`` with the points at ``i * dx`` (``dx = L / N``; the
  grid's origin is ``-dx/2``). Component a moves half a cell along its own axis, to its faces
  and back, by a Fourier shift (exact for band-limited fields such as the benchmark's initial
  conditions; the Nyquist mode of an even N is dropped, which keeps the shift real). Its
  exact transpose is the opposite shift.
* non-periodic axis: the domain is ``[0, L]`` with the points at the cell centres
  ``(i + 1/2) * dx`` (origin 0; the walls, inflow and outflow sides at 0 and L). A face
  between two points gets their mean (linear interpolation, exact for linear fields); a
  boundary face gets the side's value: 0 on walls, the inflow velocity on an inflow side, a
  copy of its cell's value on an outflow side (zero normal gradient). Back to the points,
  each point is the mean of its cell's two faces. Both maps are linear (plus the prescribed
  boundary values) and the vector-Jacobian product applies their exact transposes
  (test_mosaic checks <P x, y> = <x, P^T y> on every side kind, 2D and 3D).

Boundary conditions (``boundary_conditions``, Mosaic's GridBC: x_lo ... z_hi):

* ``periodic`` -> dfluid 'periodic' (both sides of an axis, or neither).
* ``no_slip``, and ``dirichlet`` without a value or with a zero one -> 'no-slip'.
* ``dirichlet`` with ``value`` (one number per axis): a zero normal component and a
  tangential one -> 'moving-wall' at that velocity; a non-zero normal component -> 'inflow'
  with that uniform normal velocity (+axis positive) and zero tangential velocity (dfluid's
  inflow sides carry no tangential velocity: a value with both is refused). Dirichlet values
  are not differentiable (Mosaic passes them as plain floats).
* ``neumann`` -> 'outflow' (pressure 0 outside, zero normal gradient of the velocity).
* In 2D the z sides must stay periodic (there are none).
Mosaic's own schema refuses non-periodic sides without an obstacle; this adapter runs them
(channels, cavities; ``drag`` is then None).

``inflow_profile`` (2D, shape (N,)): u_x(y) on the x_lo side, ``inflow_profile[j]`` on the
x-low face of row j (the points along y), u_y = 0 there. As Mosaic specifies, it overrides
x_lo whatever its type; x_hi must then be ``neumann`` (outflow) or ``periodic``, which is
taken as an outflow side: the benchmark's optimization/drag_opt passes periodic x sides with
the profile, and a periodic axis cannot carry an inflow side. Not resampled: another length
than N is refused.

``obstacle`` (2D only; Mosaic's GridObstacle): ``shape`` 'cylinder' (``radius``) or 'box'
(``half_widths``), ``center`` and sizes as fractions of ``domain_extent``, ``bc`` 'no_slip'.
Its position is physical, the centre at ``center * L`` in the frames above (on a periodic
axis the nearest image counts). dfluid represents it as a face-fraction body, not as a
staircase mask: the open fractions of the faces from the node signed distance of the circle
or box (face_open_fractions), no-slip at its true surface through ghost fluid in the
implicit viscous step (face_center_distance, set_obstacle_wall('no-slip')). It must keep a
cell clear of the non-periodic sides and be smaller than a periodic axis less two cells.

``drag`` (2D, with an obstacle; else None): the x-force of the fluid on the obstacle per unit
depth and unit density, pressure plus viscous shear (dfluid's obstacle_force), positive
downstream for a flow along +x, averaged over the states after steps ``steps - n + 1 ..
steps`` with ``n = max(1, steps // 2)``: the second half of the run, the "tail window" of
Mosaic's drag_opt and of its solvers that average (Mosaic's schema defines the force,
F_x = surface integral of p n_x - mu (du/dn)_x, not the time window; some solvers report
the final state's). The adapter does not use Mosaic's staircase surface formula, which
omits the shear along the body's top and bottom; on the same dfluid fields at N 32 it
gives 0.031 against dfluid's 0.042 (test_mosaic).

``velocity_advection`` (dfluid's own input, not Mosaic's; default 'auto'): 'maccormack'
(second order; its limiter is not differentiable where it clamps, which it does in every
cell of an exactly uniform flow: at drag_opt's uniform start the adjoint follows the
limiter's branch at the ties, between the one-sided derivatives, 0.9 % from a central
difference at N 16, 4 % at N 32 after 50 steps), 'semi-lagrangian' (first order; smooth there: 4e-11), 'auto': MacCormack in
periodic boxes without an obstacle, semi-Lagrangian with walls, inflow or an obstacle (the
drag_opt drag differs from MacCormack's by 0.8 % at N 32, 1.2 % at 64, 0.4 % at 128).

Gradients: ``v0``, ``viscosity`` and ``inflow_profile``, of ``result`` and ``drag``
(dfluid's Rollout adjoint: hand-written adjoints of each part; the viscosity through
RolloutOptions::viscosity_gradient, the inflow profile through the boundary gradient plus
the initial state's inflow faces). Not differentiable here: ``dt`` (Mosaic marks it
differentiable for some solvers; dfluid has no time-step gradient), the Dirichlet values and
the obstacle (Mosaic passes neither as arrays; dfluid has no gradient with respect to a
body's shape). Refused with a ValueError naming the input: obstacles and inflow profiles in
3D, a profile of another length than N, one periodic side without the other, a non-periodic
z side in 2D, unknown boundary types or obstacle shapes or keys, a Dirichlet value with
both a normal and a tangential component, an obstacle touching a non-periodic side, a net
inflow into a closed box, and gradients of an absent drag or profile.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tesseract_core.runtime import Array, Differentiable, Float32, ShapeDType

import dfluid

# ---------------------------------------------------------------------------- schemas ----
# The interface's fields (names, shapes, defaults as the benchmark's navier-stokes-grid
# schema documents them), written here so that the adapter needs nothing but dfluid,
# numpy, pydantic and tesseract_core.

SIDES = ("x_lo", "x_hi", "y_lo", "y_hi", "z_lo", "z_hi")


class FaceBC(BaseModel):
    type: Literal["periodic", "no_slip", "neumann", "dirichlet"] = Field(
        default="periodic",
        description="periodic; no_slip (velocity 0); neumann (zero normal derivative: an "
                    "outflow side); dirichlet (velocity `value`, None: 0).")
    value: Optional[list[float]] = Field(
        default=None, description="dirichlet: the velocity on the side, one number per axis.")


class GridBC(BaseModel):
    x_lo: FaceBC = Field(default_factory=FaceBC)
    x_hi: FaceBC = Field(default_factory=FaceBC)
    y_lo: FaceBC = Field(default_factory=FaceBC)
    y_hi: FaceBC = Field(default_factory=FaceBC)
    z_lo: FaceBC = Field(default_factory=FaceBC)
    z_hi: FaceBC = Field(default_factory=FaceBC)


class GridObstacle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: Literal["cylinder", "box"] = Field(default="cylinder",
                                              description="cylinder (circle in 2D) or box.")
    center: list[float] = Field(default_factory=lambda: [0.5, 0.5],
                                description="Centre, fractions of domain_extent per axis.")
    radius: Optional[float] = Field(default=None,
                                    description="cylinder: radius, fraction of domain_extent.")
    half_widths: Optional[list[float]] = Field(
        default=None, description="box: half-widths per axis, fractions of domain_extent.")
    bc: Literal["no_slip"] = "no_slip"


class InputSchema(BaseModel):
    v0: Differentiable[Array[(None, None, None, None), Float32]] = Field(
        description="Initial velocity, collocated: (N, N, 1, 2) in 2D, (N, N, N, 3) in 3D.")
    viscosity: Differentiable[Array[(1,), Float32]] = Field(
        default_factory=lambda: np.array([0.05], dtype=np.float32),
        description="Kinematic viscosity.")
    dt: Array[(1,), Float32] = Field(
        default_factory=lambda: np.array([0.01], dtype=np.float32), description="Time step.")
    steps: int = Field(default=300, description="Number of time steps.")
    domain_extent: float = Field(default=2 * np.pi, description="Side of the square box.")
    boundary_conditions: GridBC = Field(default_factory=GridBC,
                                        description="Per-side boundaries (default periodic).")
    obstacle: Optional[GridObstacle] = Field(
        default=None, description="2D: a no-slip cylinder or box (face-fraction body).")
    inflow_profile: Optional[Differentiable[Array[(None,), Float32]]] = Field(
        default=None, description="2D: u_x(y) on the x_lo side, shape (N,); u_y = 0 there.")
    velocity_advection: Literal["auto", "maccormack", "semi-lagrangian"] = Field(
        default="auto",
        description="dfluid's own input (not Mosaic's): MacCormack (second order; its "
                    "limiter is not differentiable where it clamps, e.g. everywhere in an "
                    "exactly uniform flow) or semi-Lagrangian (first order, smooth there); "
                    "auto: MacCormack in periodic boxes without an obstacle, semi-Lagrangian "
                    "with walls, inflow or an obstacle.")

    @model_validator(mode="after")
    def _supported(self) -> "InputSchema":
        # abstract_eval validates shapes and dtypes only (ShapeDType, no values).
        shape = tuple(getattr(self.v0, "shape", ()))
        if len(shape) != 4 or shape[-1] not in (2, 3):
            raise ValueError(f"v0: shape {shape}, expected (N, N, 1, 2) or (N, N, N, 3)")
        d = shape[-1]
        want = (shape[0],) * d + ((1,) if d == 2 else ()) + (d,)
        if shape != want:
            raise ValueError(f"v0: shape {shape}, expected {want} (a square/cubic grid)")
        if shape[0] < 2:
            raise ValueError(f"v0: {shape[0]} cells per axis, expected at least 2")
        if self.steps < 1:
            raise ValueError(f"steps: {self.steps}, expected >= 1")
        if isinstance(self.dt, np.ndarray) and not float(self.dt[0]) > 0:
            raise ValueError(f"dt: {float(self.dt[0])}, expected > 0")
        if isinstance(self.viscosity, np.ndarray) and not float(self.viscosity[0]) >= 0:
            raise ValueError(f"viscosity: {float(self.viscosity[0])}, expected >= 0")
        if not self.domain_extent > 0:
            raise ValueError(f"domain_extent: {self.domain_extent}, expected > 0")
        profile = self.inflow_profile
        if profile is not None and not isinstance(profile, np.ndarray):
            profile = tuple(getattr(profile, "shape", ()))  # a ShapeDType: its shape only
        make_case(shape, self.domain_extent, 0.0, 1.0, self.steps,
                  self.boundary_conditions.model_dump(),
                  None if self.obstacle is None else self.obstacle.model_dump(), profile,
                  self.velocity_advection)
        return self


class OutputSchema(BaseModel):
    result: Differentiable[Array[(None, None, None, None), Float32]] = Field(
        description="Final velocity, the shape of v0.")
    drag: Optional[Differentiable[Array[(1,), Float32]]] = Field(
        default=None,
        description="x-force on the obstacle per unit depth (pressure + viscous shear, "
                    "density 1), mean over the last max(1, steps // 2) states; None without "
                    "an obstacle.")


# -------------------------------------------------------------- the case, validated ----


class Case:
    """What dfluid runs: the grid's sides and values, the obstacle, the drag's window. Built
    (and every input checked) by make_case. (A plain class: the module is loaded from a file
    path, where dataclasses cannot resolve its annotations.)"""

    def __init__(self, n: int, d: int, extent: float, nu: float, dt: float, steps: int,
                 advection: str = "auto"):
        self.n, self.d, self.extent, self.nu, self.dt, self.steps = n, d, extent, nu, dt, steps
        self.advection = advection
        self.kinds: list = []           # per axis: (low, high) dfluid kinds
        self.inflow: dict = {}          # fixed normal velocities (dirichlet) by dfluid side
        self.wall: dict = {}            # moving-wall velocities by dfluid side
        self.profile: Optional[np.ndarray] = None  # inflow_profile (x-low), float64
        self.obstacle: Optional[dict] = None

    @property
    def advection_scheme(self) -> str:
        if self.advection != "auto":
            return self.advection
        closed = self.obstacle is not None or not all(self.periodic(a) for a in range(self.d))
        return "semi-lagrangian" if closed else "maccormack"

    @property
    def dx(self) -> float:
        return self.extent / self.n

    def periodic(self, axis: int) -> bool:
        return self.kinds[axis][0] == "periodic"

    def origin(self) -> tuple:
        return tuple(-0.5 * self.dx if self.periodic(a) else 0.0 for a in range(self.d))

    def drag_steps(self) -> list[int]:
        tail = max(1, self.steps // 2)
        return list(range(self.steps - tail + 1, self.steps + 1))


_KIND_OF = {"no_slip": "no-slip", "neumann": "outflow"}
_FACE_KEEPS_ITS_CELL = ("outflow",)  # boundary faces copied from their cell (zero gradient)


def _side(axis: int, high: bool) -> str:
    return "xyz"[axis] + ("-high" if high else "-low")


def make_case(v0_shape, extent, nu, dt, steps, bc: Optional[dict], obstacle: Optional[dict],
              profile, advection: str = "auto") -> Case:
    """The Case of the inputs, or a ValueError naming the input dfluid cannot represent.
    `profile` may be an array, a shape tuple (abstract evaluation) or None."""
    d = v0_shape[-1]
    n = v0_shape[0]
    bc = bc or {}
    face = {s: dict(bc.get(s) or {"type": "periodic", "value": None}) for s in SIDES}
    for s in SIDES:
        t = face[s].get("type", "periodic")
        face[s]["type"] = getattr(t, "value", t)
    if advection not in ("auto", "maccormack", "semi-lagrangian"):
        raise ValueError(f"velocity_advection: '{advection}', expected 'auto', 'maccormack' "
                         "or 'semi-lagrangian'")
    case = Case(n, d, float(extent), float(nu), float(dt), int(steps), advection)
    if d == 2:
        for s in ("z_lo", "z_hi"):
            if face[s]["type"] != "periodic":
                raise ValueError(f"boundary_conditions.{s}: '{face[s]['type']}' in a 2D run "
                                 "(there is no z side; leave it periodic)")
    if profile is not None:
        shape = tuple(np.shape(profile)) if isinstance(profile, np.ndarray) else tuple(profile)
        if d != 2:
            raise ValueError("inflow_profile: only 2D runs take an inflow profile "
                             "(pass None in 3D)")
        if shape != (n,):
            raise ValueError(f"inflow_profile: shape {shape}, expected ({n},): one u_x per "
                             "point along y")
        if face["x_hi"]["type"] not in ("periodic", "neumann"):
            raise ValueError(f"boundary_conditions.x_hi: '{face['x_hi']['type']}' with an "
                             "inflow_profile; expected neumann (outflow) or periodic (taken "
                             "as outflow)")
        if isinstance(profile, np.ndarray):
            case.profile = np.asarray(profile, dtype=np.float64)
            if not np.all(np.isfinite(case.profile)):
                raise ValueError("inflow_profile: not finite")
    for a in range(d):
        lo, hi = SIDES[2 * a], SIDES[2 * a + 1]
        pair = (face[lo]["type"], face[hi]["type"])
        if (pair.count("periodic") == 1) and not (profile is not None and a == 0):
            raise ValueError(f"boundary_conditions.{lo}, {hi}: '{pair[0]}' and '{pair[1]}'; "
                             "periodic needs both sides of an axis")
        kinds = []
        for s, high in ((lo, False), (hi, True)):
            f = face[s]
            t = f["type"]
            if profile is not None and a == 0:
                kinds.append("inflow" if not high else "outflow")
                continue
            if t == "periodic":
                kinds.append("periodic")
            elif t in _KIND_OF:
                kinds.append(_KIND_OF[t])
            else:  # dirichlet
                value = f.get("value")
                if value is not None and (len(value) != d or not all(np.isfinite(value))):
                    raise ValueError(f"boundary_conditions.{s}.value: {value}, expected {d} "
                                     "finite numbers (one per axis)")
                if value is None or not any(value):
                    kinds.append("no-slip")
                    continue
                tangential = [v for b, v in enumerate(value) if b != a]
                if value[a] == 0:
                    kinds.append("moving-wall")
                    case.wall[_side(a, high)] = tuple(float(v) for v in value)
                elif any(tangential):
                    raise ValueError(f"boundary_conditions.{s}.value: {value}: a normal AND a "
                                     "tangential velocity; dfluid's inflow sides have no "
                                     "tangential velocity (give one or the other)")
                else:
                    kinds.append("inflow")
                    case.inflow[_side(a, high)] = float(value[a])
        case.kinds.append(tuple(kinds))
    if obstacle is not None:
        _check_obstacle(case, obstacle)
        case.obstacle = dict(obstacle)
    return case


def _check_obstacle(case: Case, ob: dict) -> None:
    if case.d != 2:
        raise ValueError("obstacle: only 2D runs take an obstacle in the dfluid adapter "
                         "(pass None in 3D)")
    shape = getattr(ob.get("shape"), "value", ob.get("shape"))
    if ob.get("bc", "no_slip") != "no_slip":
        raise ValueError(f"obstacle.bc: '{ob.get('bc')}', expected 'no_slip'")
    center = ob.get("center")
    if center is None or len(center) != 2 or not all(np.isfinite(center)):
        raise ValueError(f"obstacle.center: {center}, expected 2 finite fractions")
    if shape == "cylinder":
        r = ob.get("radius")
        if r is None or not np.isfinite(r) or not r > 0:
            raise ValueError(f"obstacle.radius: {r}, expected > 0 for a cylinder")
        half = (r, r)
    elif shape == "box":
        half = ob.get("half_widths")
        if half is None or len(half) != 2 or not all(np.isfinite(half)) or min(half) <= 0:
            raise ValueError(f"obstacle.half_widths: {half}, expected 2 numbers > 0 for a box")
    else:
        raise ValueError(f"obstacle.shape: '{shape}', expected 'cylinder' or 'box'")
    margin = 1.0 / case.n  # one cell, as a fraction of the side
    for a in range(2):
        lo, hi = center[a] - half[a], center[a] + half[a]
        if case.periodic(a):
            if 2 * half[a] > 1 - 2 * margin:
                raise ValueError(f"obstacle: {2 * half[a]:.4g} of the periodic {'xy'[a]} axis, "
                                 "expected less than its length minus two cells")
        elif lo < margin or hi > 1 - margin:
            raise ValueError(f"obstacle: spans [{lo:.4g}, {hi:.4g}] along {'xy'[a]}, expected "
                             f"inside [{margin:.4g}, {1 - margin:.4g}] (a cell clear of the "
                             "non-periodic sides)")


# ------------------------------------------------------------------- the obstacle ----


def node_distance(case: Case) -> np.ndarray:
    """The obstacle's signed distance (> 0 in the fluid) at the grid's nodes, shape
    (N + 1, N + 1) (C order, x fastest); nearest periodic image along periodic axes."""
    ob = case.obstacle
    L, dx = case.extent, case.dx
    origin = case.origin()
    rel = []
    for a in range(2):
        x = origin[a] + np.arange(case.n + 1) * dx - ob["center"][a] * L
        if case.periodic(a):
            x = (x + 0.5 * L) % L - 0.5 * L
        rel.append(x)
    X = rel[0][None, :]
    Y = rel[1][:, None]
    shape = getattr(ob.get("shape"), "value", ob.get("shape"))
    if shape == "cylinder":
        return np.hypot(X, Y) - ob["radius"] * L
    hx, hy = (h * L for h in ob["half_widths"])
    qx, qy = np.abs(X) - hx, np.abs(Y) - hy  # the exact distance to an axis-aligned box
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


# ------------------------------------------------ collocated points <-> MAC faces ----


def shift(f: np.ndarray, axis: int, s: float) -> np.ndarray:
    """f sampled s cells further along `axis` (periodic Fourier interpolation). The Nyquist
    mode of an even length is multiplied by cos(pi s) (0 for half a cell): the map stays real,
    and its transpose is shift(., axis, -s)."""
    n = f.shape[axis]
    k = np.arange(n // 2 + 1)
    phase = np.exp(2j * np.pi * k * s / n)
    if n % 2 == 0:
        phase[-1] = np.cos(np.pi * s)
    shape = [1] * f.ndim
    shape[axis] = k.size
    return np.fft.irfft(np.fft.rfft(f, axis=axis) * phase.reshape(shape), n=n, axis=axis)


def _to_dfluid(v: np.ndarray) -> list[np.ndarray]:
    """Mosaic's (N, N, 1, 2) / (N, N, N, 3) array -> dfluid's per-component arrays in C order
    with x fastest ((ny, nx) / (nz, ny, nx)), still at the collocated points."""
    d = v.shape[-1]
    comps = v[:, :, 0, :] if d == 2 else v
    return [np.ascontiguousarray(comps[..., a].T, dtype=np.float64) for a in range(d)]


def _from_dfluid(comps: list[np.ndarray]) -> np.ndarray:
    d = len(comps)
    out = np.stack([c.T for c in comps], axis=-1)
    return out[:, :, None, :] if d == 2 else out


def _axis(d: int, a: int) -> int:
    """The numpy axis of grid axis a in dfluid's C-order arrays (x is the last)."""
    return d - 1 - a


def _sl(ndim: int, axis: int, s) -> tuple:
    idx = [slice(None)] * ndim
    idx[axis] = s
    return tuple(idx)


def _axes(kinds) -> list:
    """Per axis: None (periodic) or (low face copied from its cell, high face copied)."""
    if kinds is None:
        return None
    return [None if lo == "periodic" else (lo in _FACE_KEEPS_ITS_CELL, hi in _FACE_KEEPS_ITS_CELL)
            for lo, hi in kinds]


def _p2f(c: np.ndarray, ax: int, spec) -> np.ndarray:
    if spec is None:
        return shift(c, ax, -0.5)
    n = c.shape[ax]
    shape = list(c.shape)
    shape[ax] = n + 1
    f = np.zeros(shape)
    f[_sl(c.ndim, ax, slice(1, n))] = 0.5 * (c[_sl(c.ndim, ax, slice(0, n - 1))]
                                             + c[_sl(c.ndim, ax, slice(1, n))])
    if spec[0]:
        f[_sl(c.ndim, ax, 0)] = c[_sl(c.ndim, ax, 0)]
    if spec[1]:
        f[_sl(c.ndim, ax, n)] = c[_sl(c.ndim, ax, n - 1)]
    return f


def _p2f_T(f: np.ndarray, ax: int, spec) -> np.ndarray:
    if spec is None:
        return shift(f, ax, 0.5)
    n = f.shape[ax] - 1
    shape = list(f.shape)
    shape[ax] = n
    c = np.zeros(shape)
    inner = 0.5 * f[_sl(f.ndim, ax, slice(1, n))]
    c[_sl(f.ndim, ax, slice(0, n - 1))] += inner
    c[_sl(f.ndim, ax, slice(1, n))] += inner
    if spec[0]:
        c[_sl(f.ndim, ax, 0)] += f[_sl(f.ndim, ax, 0)]
    if spec[1]:
        c[_sl(f.ndim, ax, n - 1)] += f[_sl(f.ndim, ax, n)]
    return c


def _f2p(f: np.ndarray, ax: int, spec) -> np.ndarray:
    if spec is None:
        return shift(f, ax, 0.5)
    n = f.shape[ax] - 1
    return 0.5 * (f[_sl(f.ndim, ax, slice(0, n))] + f[_sl(f.ndim, ax, slice(1, n + 1))])


def _f2p_T(c: np.ndarray, ax: int, spec) -> np.ndarray:
    if spec is None:
        return shift(c, ax, -0.5)
    n = c.shape[ax]
    shape = list(c.shape)
    shape[ax] = n + 1
    f = np.zeros(shape)
    f[_sl(c.ndim, ax, slice(0, n))] += 0.5 * c
    f[_sl(c.ndim, ax, slice(1, n + 1))] += 0.5 * c
    return f


def _per_component(op, comps, kinds):
    d = len(comps)
    axes = _axes(kinds) or [None] * d
    return [np.ascontiguousarray(op(c, _axis(d, a), axes[a])) for a, c in enumerate(comps)]


def points_to_faces(comps: list[np.ndarray], kinds=None) -> list[np.ndarray]:
    """Component a to its faces along axis a: a half-cell Fourier shift on a periodic axis
    (face i at (i - 1/2) dx), the mean of the two neighbouring points on a non-periodic one,
    its boundary faces 0 (the caller writes the boundary's values there) or, on an outflow
    side, a copy of their cell. `kinds`: Case.kinds (None: every axis periodic)."""
    return _per_component(_p2f, comps, kinds)


def faces_to_points(comps: list[np.ndarray], kinds=None) -> list[np.ndarray]:
    """The inverse direction: a Fourier shift, or the mean of each cell's two faces."""
    return _per_component(_f2p, comps, kinds)


def points_to_faces_T(comps: list[np.ndarray], kinds=None) -> list[np.ndarray]:
    """The exact transpose of points_to_faces."""
    return _per_component(_p2f_T, comps, kinds)


def faces_to_points_T(comps: list[np.ndarray], kinds=None) -> list[np.ndarray]:
    """The exact transpose of faces_to_points."""
    return _per_component(_f2p_T, comps, kinds)


# --------------------------------------------------------------------- the solver ----


def _simulation(case: Case):
    grid = dfluid.Grid((case.n,) * case.d, dx=case.dx, origin=case.origin())
    for a, (lo, hi) in enumerate(case.kinds):
        grid.set_boundary(a, lo, hi)
    cfg = dfluid.StepConfig(dt=case.dt, diffusion="implicit", viscosity=case.nu,
                            velocity_advection=case.advection_scheme, backtrace="rk2",
                            pressure_tolerance=1e-12, pressure_max_iterations=2000)
    cfg.diffusion_tolerance = 1e-12
    cfg.diffusion_max_iterations = 2000
    if case.obstacle is not None or not all(case.periodic(a) for a in range(case.d)):
        # The non-incremental splitting's steady state depends on dt next to no-slip walls
        # (the drag of Mosaic's drag_opt set-up at N 64: 0.083 at dt 0.02, 0.066 at dt
        # 0.01); the incremental one does not (0.0403, 0.0398). Periodic boxes keep
        # the default (their figures are unchanged by either).
        cfg.pressure_correction = "incremental"
    ctx = dfluid.Context("cpu")
    sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64")
    inflow = {side: np.full(dfluid.side_shape(grid, side), u) for side, u in case.inflow.items()}
    if case.profile is not None:
        inflow["x-low"] = case.profile.copy()
    if inflow or case.wall:
        try:
            sim.set_velocity_boundary(inflow=inflow or None, wall=dict(case.wall) or None)
        except dfluid.InvalidArgument as e:
            raise ValueError(f"boundary_conditions: dfluid refuses these sides: {e}") from None
    if case.obstacle is not None:
        phi = node_distance(case)
        sim.set_obstacle_fractions(dfluid.face_open_fractions(ctx, grid, phi, dtype="float64"),
                                   dfluid.face_center_distance(ctx, grid, phi, dtype="float64"))
        sim.set_obstacle_wall("no-slip")
    return grid, ctx, sim


def _boundary_faces(case: Case, faces: list[np.ndarray]) -> None:
    """Writes the prescribed normal velocity into the boundary faces of the initial state:
    0 on walls (points_to_faces left them 0), the profile on inflow sides."""
    d = case.d
    values = dict(case.inflow)
    if case.profile is not None:
        values["x-low"] = case.profile
    for side, u in values.items():
        a = "xyz".index(side[0])
        ax = _axis(d, a)
        i = 0 if side.endswith("low") else faces[a].shape[ax] - 1
        faces[a][_sl(d, ax, i)] = u


def _initial_state(case: Case, grid, ctx, v0: np.ndarray):
    faces = points_to_faces(_to_dfluid(v0), case.kinds)
    _boundary_faces(case, faces)
    return dfluid.wrap_state(ctx, grid, faces, [], np.zeros(grid.shape()))


def simulate64(v0: np.ndarray, case: Case, final_state: bool = False):
    """The simulation in float64 on Mosaic's layout: (result, drag or None) after
    case.steps steps; with final_state, also (the final dfluid state, sim, grid)."""
    grid, ctx, sim = _simulation(case)
    state = _initial_state(case, grid, ctx, v0)
    window = set(case.drag_steps()) if case.obstacle is not None else set()
    forces = []
    for k in range(1, case.steps + 1):
        sim.step(state)
        if k in window:
            forces.append(sim.obstacle_force(state)[0])
    result = _from_dfluid(faces_to_points([np.asarray(u) for u in state.velocity], case.kinds))
    drag = float(np.mean(forces)) if forces else None
    if final_state:
        return result, drag, (state, sim, grid)
    return result, drag


def gradient64(v0: np.ndarray, case: Case, ct_result: Optional[np.ndarray],
               ct_drag: float = 0.0) -> dict:
    """d (<ct_result, result> + ct_drag drag) / d v0, viscosity and inflow_profile in
    float64: {'v0': (the shape of v0), 'viscosity': float, 'inflow_profile': (N,) or None}."""
    d = case.d
    grid, ctx, sim = _simulation(case)
    initial = _initial_state(case, grid, ctx, v0)
    user = []
    if ct_result is not None:
        g_faces = faces_to_points_T(_to_dfluid(ct_result), case.kinds)

        def inject(step, state, grad):  # <ct_result, result>: its gradient is the cotangent
            for a in range(d):
                np.asarray(grad.velocity[a])[...] = g_faces[a]
            return 0.0

        user = [dfluid.UserLoss([case.steps], inject, "cotangent")]
    forces = []
    if case.obstacle is not None and ct_drag != 0.0:
        forces = [dfluid.ObstacleForceLoss(steps=case.drag_steps(), direction=(1.0, 0.0),
                                           weight=float(ct_drag))]
    if not user and not forces:
        return {"v0": np.zeros_like(v0, dtype=np.float64), "viscosity": 0.0,
                "inflow_profile": None if case.profile is None else np.zeros(case.n)}
    res = dfluid.Rollout(sim).run(initial, case.steps, user_losses=user, obstacle_forces=forces,
                                  force_gradients=False, source_gradients=False,
                                  buoyancy_gradient=False, viscosity_gradient=True,
                                  boundary_gradient=case.profile is not None)
    g_init = [np.asarray(g).copy() for g in res.grad_initial.velocity]
    out = {"v0": _from_dfluid(points_to_faces_T(g_init, case.kinds)),
           "viscosity": float(res.grad_viscosity), "inflow_profile": None}
    if case.profile is not None:
        # the profile enters each step's boundary and the initial state's x-low faces
        out["inflow_profile"] = (np.asarray(res.grad_boundary.inflow["x-low"]).copy()
                                 + g_init[0][:, 0])
    return out


def periodic_case(shape, nu, dt, steps, extent) -> Case:
    return make_case(shape, extent, nu, dt, steps, None, None, None)


def forward64(v0: np.ndarray, nu: float, dt: float, steps: int, extent: float) -> np.ndarray:
    """The periodic simulation in float64: v0 -> the velocity after `steps`."""
    return simulate64(v0, periodic_case(v0.shape, nu, dt, steps, extent))[0]


def vjp64(v0: np.ndarray, nu: float, dt: float, steps: int, extent: float,
          cotangent: np.ndarray) -> tuple[np.ndarray, float]:
    """Periodic: (d <cotangent, forward64> / d v0, d <cotangent, forward64> / d nu)."""
    g = gradient64(v0, periodic_case(v0.shape, nu, dt, steps, extent), cotangent)
    return g["v0"], g["viscosity"]


# ------------------------------------------------------------ Tesseract endpoints ----


def case_of(inputs: InputSchema) -> Case:
    return make_case(tuple(inputs.v0.shape), inputs.domain_extent, float(inputs.viscosity[0]),
                     float(inputs.dt[0]), inputs.steps, inputs.boundary_conditions.model_dump(),
                     None if inputs.obstacle is None else inputs.obstacle.model_dump(),
                     None if inputs.inflow_profile is None
                     else np.asarray(inputs.inflow_profile), inputs.velocity_advection)


def apply(inputs: InputSchema) -> OutputSchema:
    """The velocity after `steps` steps (float32, the layout of v0) and the drag."""
    v, drag = simulate64(np.asarray(inputs.v0, dtype=np.float64), case_of(inputs))
    return OutputSchema(result=v.astype(np.float32),
                        drag=None if drag is None else np.array([drag], dtype=np.float32))


def vector_jacobian_product(inputs: InputSchema, vjp_inputs: set[str], vjp_outputs: set[str],
                            cotangent_vector: dict[str, Any]) -> dict[str, Any]:
    """Cotangents of v0, viscosity and inflow_profile from those of result and drag."""
    unsupported = set(vjp_inputs) - {"v0", "viscosity", "inflow_profile"}
    if unsupported:
        raise ValueError(f"vjp_inputs: {sorted(unsupported)} not differentiable in the dfluid "
                         "adapter (v0, viscosity and inflow_profile are)")
    if "inflow_profile" in vjp_inputs and inputs.inflow_profile is None:
        raise ValueError("vjp_inputs: inflow_profile is None in these inputs")
    case = case_of(inputs)
    if "drag" in vjp_outputs and case.obstacle is None:
        raise ValueError("vjp_outputs: drag is None without an obstacle")
    v0 = np.asarray(inputs.v0, dtype=np.float64)
    ct = cotangent_vector.get("result") if "result" in vjp_outputs else None
    ct_drag = cotangent_vector.get("drag") if "drag" in vjp_outputs else None
    g = gradient64(v0, case, None if ct is None else np.asarray(ct, dtype=np.float64),
                   0.0 if ct_drag is None else float(np.asarray(ct_drag).reshape(-1)[0]))
    out: dict[str, Any] = {}
    if "v0" in vjp_inputs:
        out["v0"] = g["v0"].astype(np.float32)
    if "viscosity" in vjp_inputs:
        out["viscosity"] = np.array([g["viscosity"]], dtype=np.float32)
    if "inflow_profile" in vjp_inputs:
        out["inflow_profile"] = g["inflow_profile"].astype(np.float32)
    return out


def abstract_eval(abstract_inputs):
    """result: the shape of v0, float32; drag: (1,) float32 with an obstacle, else None."""
    v0 = abstract_inputs.v0
    shape = tuple(v0.shape) if hasattr(v0, "shape") else tuple(v0["shape"])
    drag = ShapeDType(shape=(1,), dtype="float32") if abstract_inputs.obstacle is not None \
        else None
    return {"result": ShapeDType(shape=shape, dtype="float32"), "drag": drag}
