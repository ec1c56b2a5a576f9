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


H_CHANNEL = 2.0  # the test channel's height (8 cells of 0.25)


def channel(nx=16, ny=8, nu=0.05, dt=0.1, no_slip=True):
    """A small 2D channel: parabolic inflow at x-low, outflow at x-high, no-slip walls along y,
    an L-shaped body away from every side; implicit diffusion, tight solves."""
    grid = dfluid.Grid((nx, ny), dx=H_CHANNEL / ny)
    grid.set_boundary(0, "inflow", "outflow")
    grid.set_boundary(1, "no-slip", "no-slip")
    ctx = dfluid.Context("cpu")
    solid = np.zeros(grid.shape(), np.uint8)
    solid[3:5, 5:7] = 1  # rows are y, columns x
    solid[5, 5] = 1
    cfg = dfluid.StepConfig(dt=dt, diffusion="implicit", viscosity=nu,
                            pressure_tolerance=1e-13, pressure_max_iterations=400)
    cfg.diffusion_tolerance = 1e-14
    sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64", obstacles=solid)
    if no_slip:
        sim.set_obstacle_wall("no-slip")
    return grid, ctx, sim, solid


def parabola(grid):
    y = (np.arange(grid.cells[1]) + 0.5) * grid.dx
    return 6.0 * y * (H_CHANNEL - y) / H_CHANNEL ** 2
