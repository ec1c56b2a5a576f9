"""Shared set-up of the Python tests: small double-precision smoke problems with a tight
pressure solve (finite differences need the solve converged far below their step)."""

import numpy as np

import dfluid


def smoke_setup(cells=(7, 6), dtype="float64", buoyancy=0.4, dt=0.5, boundary="wall"):
    grid = dfluid.Grid(cells, dx=1.0, boundary=boundary)
    ctx = dfluid.Context("cpu")
    cfg = dfluid.StepConfig(dt=dt, buoyancy=buoyancy,
                            pressure_tolerance=1e-13 if dtype == "float64" else 1e-5,
                            pressure_max_iterations=200)
    sim = dfluid.Simulation(ctx, grid, cfg, dtype=dtype)
    return grid, ctx, sim


def random_state(grid, rng, dtype=np.float64, amplitude=0.3):
    """A smooth-ish random velocity and a blob of density (C order, x fastest)."""
    vel = tuple(amplitude * rng.standard_normal(s).astype(dtype) for s in grid.velocity_shapes)
    rho = rng.uniform(0.2, 1.0, grid.shape()).astype(dtype)
    return vel, [rho]


def address(a):
    """The data pointer of a numpy array."""
    return a.__array_interface__["data"][0]
