"""dfluid as a solver of the Mosaic benchmark's ``navier-stokes-grid`` interface (2D and 3D).

A Tesseract API module (tesseract_core): ``apply``, ``vector_jacobian_product`` and
``abstract_eval`` on the interface's inputs and outputs. Load it in-process with
``tesseract_core.Tesseract.from_tesseract_api(<this file>)`` or build it into a container with
``tesseract build`` (tesseract_config.yaml, tesseract_requirements.txt next to it).

What it computes: ``steps`` dfluid steps of size ``dt`` on the periodic box
``[0, domain_extent)^d`` with ``N`` cells per axis (from ``v0``): semi-Lagrangian velocity
advection, implicit viscous diffusion (backward Euler, CG), MGPCG projection, in float64.
Mosaic's fields are collocated: ``v0[i, j, 0, a]`` (3D: ``v0[i, j, k, a]``) is component a
at the point ``(i, j) * dx``. dfluid's velocity lives on MAC faces, so the adapter puts the
grid's cell centres on those points (origin ``-dx/2``) and moves each component half a cell
along its own axis, to its faces and back, by a Fourier shift (exact for the band-limited
fields of the benchmark's initial conditions; the Nyquist mode of an even N is dropped,
which keeps the shift real). The shift is linear and its exact transpose is the opposite
shift, which is what the vector-Jacobian product applies.

Gradients: ``v0`` and ``viscosity`` (dfluid's Rollout adjoint: the hand-written adjoints of
each part, the viscosity through RolloutOptions::viscosity_gradient). Not supported (a
ValueError naming the input): walls, inflow and outflow sides (only all-periodic boundaries),
obstacles and ``inflow_profile`` (so ``drag`` is always None), gradients with respect to
``dt``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, Field, model_validator
from tesseract_core.runtime import Array, Differentiable, Float32, ShapeDType

import dfluid

# ---------------------------------------------------------------------------- schemas ----
# The interface's fields (names, shapes, defaults as the benchmark's navier-stokes-grid
# schema documents them), written here so that the adapter needs nothing but dfluid,
# numpy, pydantic and tesseract_core.


class FaceBC(BaseModel):
    type: str = Field(default="periodic", description="periodic, no_slip, neumann, dirichlet")
    value: Optional[list[float]] = None


class GridBC(BaseModel):
    x_lo: FaceBC = Field(default_factory=FaceBC)
    x_hi: FaceBC = Field(default_factory=FaceBC)
    y_lo: FaceBC = Field(default_factory=FaceBC)
    y_hi: FaceBC = Field(default_factory=FaceBC)
    z_lo: FaceBC = Field(default_factory=FaceBC)
    z_hi: FaceBC = Field(default_factory=FaceBC)


class InputSchema(BaseModel):
    v0: Differentiable[Array[(None, None, None, None), Float32]] = Field(
        description="Initial velocity, collocated: (N, N, 1, 2) in 2D, (N, N, N, 3) in 3D.")
    viscosity: Differentiable[Array[(1,), Float32]] = Field(
        default_factory=lambda: np.array([0.05], dtype=np.float32),
        description="Kinematic viscosity.")
    dt: Array[(1,), Float32] = Field(
        default_factory=lambda: np.array([0.01], dtype=np.float32), description="Time step.")
    steps: int = Field(default=300, description="Number of time steps.")
    domain_extent: float = Field(default=2 * np.pi, description="Side of the periodic box.")
    boundary_conditions: GridBC = Field(default_factory=GridBC,
                                        description="Per-side boundaries: periodic only here.")
    obstacle: Optional[dict[str, Any]] = Field(default=None, description="Not supported.")
    inflow_profile: Optional[Array[(None,), Float32]] = Field(default=None,
                                                              description="Not supported.")

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
        for side, face in self.boundary_conditions.model_dump().items():
            if face["type"] != "periodic":
                raise ValueError(f"boundary_conditions.{side}: '{face['type']}' is not supported "
                                 "by the dfluid adapter (periodic boundaries only)")
        if self.obstacle:
            raise ValueError("obstacle: not supported by the dfluid adapter; pass None")
        if self.inflow_profile is not None:
            raise ValueError("inflow_profile: not supported by the dfluid adapter; pass None")
        if self.steps < 1:
            raise ValueError(f"steps: {self.steps}, expected >= 1")
        if isinstance(self.dt, np.ndarray) and not float(self.dt[0]) > 0:
            raise ValueError(f"dt: {float(self.dt[0])}, expected > 0")
        if isinstance(self.viscosity, np.ndarray) and not float(self.viscosity[0]) >= 0:
            raise ValueError(f"viscosity: {float(self.viscosity[0])}, expected >= 0")
        if not self.domain_extent > 0:
            raise ValueError(f"domain_extent: {self.domain_extent}, expected > 0")
        return self


class OutputSchema(BaseModel):
    result: Differentiable[Array[(None, None, None, None), Float32]] = Field(
        description="Final velocity, the shape of v0.")
    drag: Optional[Array[(1,), Float32]] = Field(
        default=None, description="None: the adapter supports no obstacle.")


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


def points_to_faces(comps: list[np.ndarray]) -> list[np.ndarray]:
    """Component a moves half a cell back along axis a: face i sits at (i - 1/2) dx."""
    d = len(comps)
    return [np.ascontiguousarray(shift(c, _axis(d, a), -0.5)) for a, c in enumerate(comps)]


def faces_to_points(comps: list[np.ndarray]) -> list[np.ndarray]:
    d = len(comps)
    return [np.ascontiguousarray(shift(c, _axis(d, a), 0.5)) for a, c in enumerate(comps)]


# Transposes (exact: see shift): the adjoint of points_to_faces is faces_to_points and vice
# versa.
points_to_faces_T = faces_to_points
faces_to_points_T = points_to_faces

# --------------------------------------------------------------------- the solver ----


def _simulation(n: int, d: int, extent: float, nu: float, dt: float):
    dx = extent / n
    grid = dfluid.Grid((n,) * d, dx=dx, origin=(-0.5 * dx,) * d, boundary="periodic")
    cfg = dfluid.StepConfig(dt=dt, diffusion="implicit", viscosity=nu, velocity_advection="maccormack", backtrace="rk2",
                            pressure_tolerance=1e-12, pressure_max_iterations=2000)
    cfg.diffusion_tolerance = 1e-12
    cfg.diffusion_max_iterations = 2000
    ctx = dfluid.Context("cpu")
    return grid, ctx, dfluid.Simulation(ctx, grid, cfg, dtype="float64")


def forward64(v0: np.ndarray, nu: float, dt: float, steps: int, extent: float) -> np.ndarray:
    """The simulation in float64 on Mosaic's layout: v0 -> the velocity after `steps`."""
    d = v0.shape[-1]
    grid, ctx, sim = _simulation(v0.shape[0], d, extent, nu, dt)
    state = dfluid.wrap_state(ctx, grid, points_to_faces(_to_dfluid(v0)), [],
                              np.zeros(grid.shape()))
    for _ in range(steps):
        sim.step(state)
    return _from_dfluid(faces_to_points([np.asarray(u) for u in state.velocity]))


def vjp64(v0: np.ndarray, nu: float, dt: float, steps: int, extent: float,
          cotangent: np.ndarray) -> tuple[np.ndarray, float]:
    """(d <cotangent, forward64> / d v0, d <cotangent, forward64> / d nu) in float64."""
    d = v0.shape[-1]
    grid, ctx, sim = _simulation(v0.shape[0], d, extent, nu, dt)
    initial = dfluid.wrap_state(ctx, grid, points_to_faces(_to_dfluid(v0)), [],
                                np.zeros(grid.shape()))
    g_faces = faces_to_points_T(_to_dfluid(cotangent))

    def inject(step, state, grad):  # <cotangent, result>: its gradient is the cotangent
        for a in range(d):
            np.asarray(grad.velocity[a])[...] = g_faces[a]
        return 0.0

    res = dfluid.Rollout(sim).run(initial, steps,
                                  user_losses=[dfluid.UserLoss([steps], inject, "cotangent")],
                                  force_gradients=False, source_gradients=False,
                                  buoyancy_gradient=False, viscosity_gradient=True)
    gv0 = _from_dfluid(points_to_faces_T([np.asarray(g) for g in res.grad_initial.velocity]))
    return gv0, res.grad_viscosity


# ------------------------------------------------------------ Tesseract endpoints ----


def apply(inputs: InputSchema) -> OutputSchema:
    """The velocity after `steps` steps (float32, the layout of v0)."""
    v = forward64(np.asarray(inputs.v0, dtype=np.float64), float(inputs.viscosity[0]),
                  float(inputs.dt[0]), inputs.steps, inputs.domain_extent)
    return OutputSchema(result=v.astype(np.float32), drag=None)


def vector_jacobian_product(inputs: InputSchema, vjp_inputs: set[str], vjp_outputs: set[str],
                            cotangent_vector: dict[str, Any]) -> dict[str, Any]:
    """Cotangents of v0 and viscosity from the cotangent of `result` (drag is None)."""
    unsupported = set(vjp_inputs) - {"v0", "viscosity"}
    if unsupported:
        raise ValueError(f"vjp_inputs: {sorted(unsupported)} not differentiable in the dfluid "
                         "adapter (v0 and viscosity are)")
    v0 = np.asarray(inputs.v0, dtype=np.float64)
    ct = cotangent_vector.get("result") if "result" in vjp_outputs else None
    if ct is None:
        ct = np.zeros_like(v0)
    gv0, gnu = vjp64(v0, float(inputs.viscosity[0]), float(inputs.dt[0]), inputs.steps,
                     inputs.domain_extent, np.asarray(ct, dtype=np.float64))
    out: dict[str, Any] = {}
    if "v0" in vjp_inputs:
        out["v0"] = gv0.astype(np.float32)
    if "viscosity" in vjp_inputs:
        out["viscosity"] = np.array([gnu], dtype=np.float32)
    return out


def abstract_eval(abstract_inputs):
    """result: the shape of v0, float32; drag: None."""
    v0 = abstract_inputs.v0
    shape = tuple(v0.shape) if hasattr(v0, "shape") else tuple(v0["shape"])
    return {"result": ShapeDType(shape=shape, dtype="float32"), "drag": None}
