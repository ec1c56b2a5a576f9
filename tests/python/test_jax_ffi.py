"""dfluid.jax's XLA FFI path (dfluid._xla): a step and its adjoint as XLA custom calls on
XLA's own buffers. Checks that it gives bitwise the values and gradients of the host-callback
path (float32 and float64, with and without a force, under jit), that its VJP matches central
differences in float64, that dfluid wraps the very buffers JAX passes and returns (addresses)
and allocates nothing in a warm step, and its errors. Skipped (exit 77) where jax is not
installed or the package was built without dfluid._xla."""

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
from common import random_state, smoke_setup

if not dfluid.jax.ffi_available():
    print("dfluid was built without its XLA FFI module (jax not importable at configure "
          "time): skipped")
    sys.exit(77)

from dfluid import _xla  # noqa: E402
from test_jax import directional_check  # noqa: E402


def problem(dtype, seed=0, cells=(6, 5)):
    grid, ctx, sim = smoke_setup(cells, dtype=dtype)
    rng = np.random.default_rng(seed)
    vel, scalars = random_state(grid, rng, dtype=np.dtype(dtype))
    force = tuple((0.1 * rng.standard_normal(s)).astype(dtype) for s in grid.velocity_shapes)
    args = (tuple(map(jnp.asarray, vel)), tuple(map(jnp.asarray, scalars)),
            tuple(map(jnp.asarray, force)))
    return grid, ctx, sim, args


def loss_of(fluid):
    """A loss that reads every output of the step (so every cotangent is non-zero)."""
    def loss(v, s, f):
        vo, so = fluid.step(v, s, f)
        return (sum(jnp.sum(jnp.sin(x) * x) for x in vo)
                + sum(jnp.sum(x ** 2) for x in so))
    return loss


def leaves(t):
    return jax.tree_util.tree_leaves(t)


class JaxFfiStep(unittest.TestCase):
    def test_bitwise_equal_to_the_callback_path(self):
        for dtype in ("float64", "float32"):
            _, _, sim, args = problem(dtype)
            ffi = dfluid.jax.Simulator(sim)
            cb = dfluid.jax.Simulator(sim, ffi=False)
            self.assertTrue(ffi.use_ffi)
            self.assertFalse(cb.use_ffi)
            # One Simulation under both: each result is waited for before the other runs.
            wait = jax.block_until_ready
            for a in (args, args[:2] + (None,)):
                for x, y in zip(leaves(wait(jax.jit(ffi.step)(*a))), leaves(wait(cb.step(*a)))):
                    self.assertEqual(x.dtype, np.dtype(dtype))
                    np.testing.assert_array_equal(x, y)
            g_ffi = wait(jax.jit(jax.grad(loss_of(ffi), argnums=(0, 1, 2)))(*args))
            # both jitted: the loss's own arithmetic then compiles alike on both paths
            g_cb = jax.jit(jax.grad(loss_of(cb), argnums=(0, 1, 2)))(*args)
            for x, y in zip(leaves(g_ffi), leaves(g_cb)):
                self.assertGreater(float(jnp.abs(x).max()), 0.0)
                np.testing.assert_array_equal(x, y)

    def test_vjp_matches_central_differences(self):
        _, _, sim, args = problem("float64", seed=1)
        fluid = dfluid.jax.Simulator(sim)
        directional_check(self, fluid.step, args, 5)
        directional_check(self, lambda v, s: fluid.step(v, s), args[:2], 6)

    def test_buffers_are_wrapped_without_copies(self):
        _, ctx, sim, args = problem("float64", seed=2)
        fluid = dfluid.jax.Simulator(sim)
        # Warm: the Simulation's workspace and the adjoint's replay buffers exist now.
        grad = jax.jit(jax.grad(loss_of(fluid), argnums=(0, 1, 2)))
        step = jax.jit(fluid.step)
        jax.block_until_ready(grad(*args))
        jax.block_until_ready(step(*args))
        ctx.reset_counters()
        out = jax.block_until_ready(step(*args))
        operands, results = _xla._last_call()
        # The operands are the arrays passed in, the results the arrays returned: dfluid read
        # and wrote XLA's buffers themselves.
        self.assertEqual(operands, [x.unsafe_buffer_pointer() for x in leaves(args)])
        self.assertEqual(results[:-1], [x.unsafe_buffer_pointer() for x in leaves(out)])
        jax.block_until_ready(grad(*args))
        c = ctx.counters()
        self.assertEqual(c["allocations"], 0)
        self.assertEqual(c["frees"], 0)

    def test_errors(self):
        _, _, sim, args = problem("float64", seed=3)
        fluid = dfluid.jax.Simulator(sim)
        with self.assertRaisesRegex(dfluid.InvalidArgument, r"velocity\[0\]: float32"):
            fluid.step(tuple(x.astype(jnp.float32) for x in args[0]), args[1])
        with self.assertRaisesRegex(dfluid.InvalidArgument, r"force: 1 arrays, expected 2"):
            fluid.step(args[0], args[1], args[2][:1])
        # A handle that is no longer registered fails with an error naming it.
        step = fluid._make_ffi_step(False)
        _xla.unregister_simulation(fluid._handle)
        with self.assertRaisesRegex(Exception, f"handle {fluid._handle} is not registered"):
            jax.block_until_ready(step(args[0], args[1], None))


if __name__ == "__main__":
    unittest.main()
