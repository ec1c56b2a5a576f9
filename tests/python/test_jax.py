"""dfluid.jax: the custom VJPs of a step and of a checkpointed rollout against central
differences, in float64. Skipped (exit 77) where jax is not installed."""

import sys
import unittest

try:
    import jax
except ImportError:
    print("jax is not installed: skipped")
    sys.exit(77)

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

import dfluid
import dfluid.jax
from common import channel, parabola, random_state, smoke_setup


def directional_check(test, fn, args, seed):
    """<d, J^T w> (jax.vjp) against the central difference of <w, fn(x + h d)>."""
    rng = np.random.default_rng(seed)
    out, vjp = jax.vjp(fn, *args)
    w = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.standard_normal(x.shape)), out)
    d = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.standard_normal(x.shape)), args)
    cot = vjp(w)
    adj = sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(cot),
                                                    jax.tree_util.tree_leaves(d)))
    h = 1e-6

    def value(sign):
        shifted = jax.tree_util.tree_map(lambda x, y: x + sign * h * y, args, d)
        o = fn(*shifted)
        return sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(o),
                                                        jax.tree_util.tree_leaves(w)))

    fd = (value(1) - value(-1)) / (2 * h)
    test.assertLess(abs(fd - adj), 1e-6 * abs(adj), f"fd {fd} vjp {adj}")


class JaxStep(unittest.TestCase):
    def test_step_vjp_matches_central_differences(self):
        grid, ctx, sim = smoke_setup((6, 5))
        fluid = dfluid.jax.Simulator(sim)
        rng = np.random.default_rng(0)
        vel, scalars = random_state(grid, rng)
        force = tuple(0.1 * rng.standard_normal(s) for s in grid.velocity_shapes)
        args = (tuple(map(jnp.asarray, vel)), tuple(map(jnp.asarray, scalars)),
                tuple(map(jnp.asarray, force)))
        directional_check(self, fluid.step, args, 1)
        # without a force: the gradient of the state alone
        directional_check(self, lambda v, s: fluid.step(v, s), args[:2], 4)
        # jit composes with the callback
        out = jax.jit(fluid.step)(*args)
        np.testing.assert_array_equal(out[1][0], fluid.step(*args)[1][0])

    def test_rollout_vjp_matches_central_differences(self):
        grid, ctx, sim = smoke_setup((6, 5))
        steps = 3
        rng = np.random.default_rng(2)
        vel, scalars = random_state(grid, rng)
        forces = tuple(0.1 * rng.standard_normal((steps,) + s) for s in grid.velocity_shapes)
        args = (tuple(map(jnp.asarray, vel)), tuple(map(jnp.asarray, scalars)),
                tuple(map(jnp.asarray, forces)))
        fluid = dfluid.jax.Simulator(sim, checkpointing=dfluid.Checkpointing(slots=2))

        def run(v, s, f):
            return fluid.rollout(v, s, f, steps=steps, save_steps=[2, steps])

        directional_check(self, run, args, 3)
        # a scalar loss through jax.grad
        loss = lambda v, s, f: jnp.sum(run(v, s, f)[1][0][-1] ** 2)
        g = jax.grad(loss, argnums=2)(*args)
        self.assertEqual(g[0].shape, forces[0].shape)
        self.assertGreater(float(jnp.abs(g[0]).max()), 0.0)

    def test_viscosity_vjp_matches_central_differences(self):
        grid, ctx, _ = smoke_setup((6, 5))
        cfg = dfluid.StepConfig(dt=0.5, diffusion="implicit", viscosity=0.3,
                                pressure_tolerance=1e-13, pressure_max_iterations=200)
        cfg.diffusion_tolerance = 1e-14
        sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64")
        fluid = dfluid.jax.Simulator(sim)
        rng = np.random.default_rng(4)
        vel, scalars = random_state(grid, rng)
        v = tuple(map(jnp.asarray, vel))
        s = tuple(map(jnp.asarray, scalars))
        w = rng.standard_normal((2,) + grid.velocity_shapes[0])
        loss = lambda nu: jnp.sum(fluid.rollout(v, s, steps=2, save_steps=[1, 2],  # noqa: E731
                                                viscosity=nu)[0][0] * w)
        step_loss = lambda nu: jnp.sum(fluid.step(v, s, viscosity=nu)[0][0] * w[0])  # noqa: E731
        nu0, h = 0.3, 1e-5
        for f in (loss, step_loss):
            g = float(jax.grad(f)(jnp.asarray(nu0)))
            fd = (float(f(jnp.asarray(nu0 + h))) - float(f(jnp.asarray(nu0 - h)))) / (2 * h)
            self.assertGreater(abs(g), 1e-3)
            self.assertLess(abs(g - fd) / abs(g), 1e-6)


class JaxObstacles(unittest.TestCase):
    """The inflow profile and a rotation rate as inputs, the force on the body (a step) and
    the mean drag and lift (a checkpointed rollout) as outputs, against central differences."""

    def test_step_and_rollout_forces_match_central_differences(self):
        grid, ctx, sim, _ = channel()
        fluid = dfluid.jax.Simulator(sim, checkpointing=dfluid.Checkpointing(slots=2))
        unit = fluid.rotation_velocity((6.0 * grid.dx, 4.0 * grid.dx))
        rng = np.random.default_rng(9)
        vel = tuple(jnp.asarray(0.5 * rng.random(s)) for s in grid.velocity_shapes)
        losses = [dfluid.ObstacleForceLoss(steps=[2, 3, 4]),
                  dfluid.ObstacleForceLoss(direction=(0.0, 1.0), name="lift")]

        def step(profile, rate):
            v, _, force = fluid.step(vel, (), inflow={"x-low": profile},
                                     wall_velocity=tuple(rate * w for w in unit),
                                     obstacle_force=True)
            return v, force

        def rollout(profile, rate):
            v, _, values = fluid.rollout(vel, (), steps=4, inflow={"x-low": profile},
                                         wall_velocity=tuple(rate * w for w in unit),
                                         obstacle_forces=losses)
            return v, values

        args = (jnp.asarray(parabola(grid)), jnp.asarray(0.6))
        directional_check(self, step, args, 10)
        directional_check(self, rollout, args, 11)


if __name__ == "__main__":
    unittest.main(verbosity=2)
