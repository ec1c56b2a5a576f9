"""The Python package on numpy arrays: zero-copy exchange, argument errors, the step adjoint
and rollout gradients against finite differences, checkpointed == store-all, HDF5 round trip.
Run by ctest (tests/python.cmake) with the build's package on PYTHONPATH."""

import os
import tempfile
import unittest

import numpy as np

import dfluid
from common import address, random_state, smoke_setup


class ZeroCopy(unittest.TestCase):
    def test_wrapped_state_computes_in_the_callers_arrays(self):
        grid, ctx, sim = smoke_setup(dtype="float32")
        rng = np.random.default_rng(1)
        vel, scalars = random_state(grid, rng, np.float32)
        state = dfluid.wrap_state(ctx, grid, vel, scalars)
        # The arrays the state hands out are the caller's memory.
        for a in range(grid.dim):
            self.assertEqual(address(state.velocity[a]), address(vel[a]))
        self.assertEqual(address(state.scalars[0]), address(scalars[0]))
        before = [v.copy() for v in vel]
        sim.step(state)  # warm-up: the simulation's own buffers are allocated here
        self.assertFalse(np.array_equal(before[0], vel[0]), "step did not write the array")
        ctx.reset_counters()
        sim.step(state)
        c = ctx.counters()
        # A warm step on wrapped arrays allocates nothing and copies nothing to or from the host.
        self.assertEqual(c["allocations"], 0)
        self.assertEqual(c["bytes_to_device"], 0)
        self.assertGreater(c["launches"], 0)

    def test_owned_state_views_alias_dfluid_memory(self):
        grid, ctx, sim = smoke_setup(dtype="float64")
        state = dfluid.State(ctx, grid, ["density", "temperature"], dtype="float64")
        rho = state.scalars[0]
        self.assertEqual(address(rho), address(state.scalars[0]))  # the same memory each time
        self.assertEqual(rho.shape, grid.shape())
        self.assertEqual([v.shape for v in state.velocity], list(grid.velocity_shapes))
        rho[2:4, 2:5] = 1.0  # written through the view, seen by dfluid
        ctx.reset_counters()
        sim.step(state)
        self.assertEqual(ctx.counters()["bytes_to_device"], 0)
        self.assertGreater(np.abs(state.velocity[1]).max(), 0.0)  # buoyancy moved the smoke
        self.assertEqual(state.scalar_names, ["density", "temperature"])
        del state  # the view keeps the state's memory alive
        self.assertTrue(np.isfinite(rho).all())

    def test_wrapped_arrays_are_kept_alive_by_the_state(self):
        grid, ctx, sim = smoke_setup()
        vel, scalars = random_state(grid, np.random.default_rng(8))
        expected = scalars[0].copy()
        ptr = address(scalars[0])
        state = dfluid.wrap_state(ctx, grid, list(vel), scalars)
        scalars[0] = None  # the caller drops its references: the state holds the array
        del vel
        junk = [np.full_like(expected, 7.0) for _ in range(8)]  # would reuse freed memory
        self.assertEqual(address(state.scalars[0]), ptr)
        np.testing.assert_array_equal(state.scalars[0], expected)
        self.assertTrue(all((j == 7.0).all() for j in junk))
        sim.step(state)

    def test_views_outlive_their_rollout_result(self):
        grid, ctx, sim = smoke_setup()
        vel, scalars = random_state(grid, np.random.default_rng(2))
        res = dfluid.Rollout(sim).run(dfluid.wrap_state(ctx, grid, vel, scalars), 2,
                                      keyframes=[dfluid.Keyframe(2, np.zeros(grid.shape()))])
        g = res.grad_initial.scalars[0]
        final = res.final_state.scalars[0]
        del res
        self.assertTrue(np.isfinite(g).all() and np.isfinite(final).all())


class ArgumentErrors(unittest.TestCase):
    def setUp(self):
        self.grid, self.ctx, self.sim = smoke_setup((8, 6), dtype="float64")
        self.vel, self.scalars = random_state(self.grid, np.random.default_rng(3))

    def refuse(self, fn, *words):
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fn()
        for w in words:
            self.assertIn(w, str(e.exception))
        self.assertIsInstance(e.exception, ValueError)

    def test_shape_dtype_layout_readonly_type(self):
        g, ctx = self.grid, self.ctx
        u, v = self.vel
        rho = self.scalars[0]
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u[:, :-1].copy(), v), [rho]),
                    "velocity[0]", "shape (6, 8)", "expected shape (6, 9)", "faces normal to x")
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u, v), [rho.astype(np.float32)]),
                    "scalars[0]", "dtype float32", "expected float64")
        non_contiguous = np.zeros((8, 6)).T  # the right shape, Fortran order
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u, v), [non_contiguous]),
                    "scalars[0]", "not C-contiguous", "ascontiguousarray")
        read_only = rho.copy()
        read_only.flags.writeable = False
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u, v), [read_only]),
                    "scalars[0]", "read-only")
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u, v), [[1.0, 2.0]]),
                    "scalars[0]", "expected an array", "list")
        self.refuse(lambda: dfluid.wrap_state(ctx, g, (u,), [rho]), "velocity", "2 arrays")

    def test_controls_and_losses_name_the_argument(self):
        g, ctx, sim = self.grid, self.ctx, self.sim
        state = dfluid.wrap_state(ctx, g, self.vel, self.scalars)
        self.refuse(lambda: sim.step(state, force=(self.vel[0], np.zeros((3, 3)))),
                    "force[1]", "expected shape (7, 8)")
        self.refuse(lambda: sim.step(state, sources=[np.zeros(g.shape(), np.float32)]),
                    "sources[0]", "float32")
        rollout = dfluid.Rollout(sim)
        forces = tuple(np.zeros((2,) + s) for s in g.velocity_shapes)
        self.refuse(lambda: rollout.run(state, 3, forces=forces), "forces[0]",
                    "expected shape (3, 6, 9)", "one entry per step")
        self.refuse(lambda: rollout.run(state, 2, keyframes=[dfluid.Keyframe(1, np.zeros(3))]),
                    "keyframes[0].target")
        self.refuse(lambda: rollout.run(state, 2, keyframes=[dfluid.Keyframe(5, np.zeros(g.shape()))]),
                    "step")
        # A non-read-only input that dfluid only reads may be read-only.
        f = np.zeros(g.velocity_shapes[0])
        f.flags.writeable = False
        sim.step(state, force=(f, np.zeros(g.velocity_shapes[1])))

    def test_grid_and_config_errors(self):
        self.refuse(lambda: dfluid.Grid((8, 1)), "grid.n")
        self.refuse(lambda: dfluid.Grid((8, 8), boundary="sticky"), "boundary", "sticky")
        self.refuse(lambda: dfluid.Grid((8, 8)).set_boundary(2, "wall", "wall"), "axis")
        self.refuse(lambda: dfluid.State(self.ctx, self.grid, dtype="int8"), "dtype")
        self.refuse(lambda: self.sim.set_buoyancy(0.0), "set_buoyancy", "non-zero")


class Gradients(unittest.TestCase):
    """Double precision: the binding's step adjoint and rollout gradients against central
    differences of the binding's forward (the C++ suites check the adjoints themselves)."""

    def test_step_adjoint_matches_central_differences(self):
        grid, ctx, sim = smoke_setup((7, 6))
        rng = np.random.default_rng(4)
        vel, scalars = random_state(grid, rng)
        force = tuple(0.1 * rng.standard_normal(s) for s in grid.velocity_shapes)
        w_v = [rng.standard_normal(x.shape) for x in vel]
        w_s = [rng.standard_normal(x.shape) for x in scalars]
        d_v = [rng.standard_normal(x.shape) for x in vel]
        d_s = [rng.standard_normal(x.shape) for x in scalars]
        d_f = [rng.standard_normal(x.shape) for x in force]

        def objective(h):
            v = [x + h * d for x, d in zip(vel, d_v)]
            s = [x + h * d for x, d in zip(scalars, d_s)]
            f = tuple(x + h * d for x, d in zip(force, d_f))
            st = dfluid.wrap_state(ctx, grid, v, s)
            sim.step(st, force=f)
            return sum(np.vdot(a, b) for a, b in zip(v + s, w_v + w_s))

        h = 1e-6
        fd = (objective(h) - objective(-h)) / (2 * h)
        grad = dfluid.wrap_gradient(ctx, grid, [w.copy() for w in w_v], [w.copy() for w in w_s])
        gf = tuple(np.zeros(x.shape) for x in force)
        st = dfluid.wrap_state(ctx, grid, [x.copy() for x in vel], [x.copy() for x in scalars])
        report, gb = sim.step_adjoint(st, grad, force=force, grad_force=gf, buoyancy_gradient=True)
        adj = sum(np.vdot(a, b) for a, b in zip(list(grad.velocity) + list(grad.scalars) + list(gf),
                                                d_v + d_s + d_f))
        self.assertLess(abs(fd - adj), 1e-6 * abs(adj))
        self.assertGreater(report.pressure.iterations, 0)
        self.assertNotEqual(gb, 0.0)

    def test_rollout_gradient_and_checkpointing(self):
        grid, ctx, sim = smoke_setup((6, 6))
        rng = np.random.default_rng(5)
        vel, scalars = random_state(grid, rng)
        steps = 4
        forces = tuple(0.05 * rng.standard_normal((steps,) + s) for s in grid.velocity_shapes)
        target = rng.uniform(0, 1, grid.shape())
        rollout = dfluid.Rollout(sim)
        initial = dfluid.wrap_state(ctx, grid, vel, scalars)
        kw = dict(forces=forces, keyframes=[dfluid.Keyframe(steps, target)], force_effort=1e-2)
        res = rollout.run(initial, steps, **kw)
        # Directional derivative along a random force direction vs central differences.
        d = tuple(rng.standard_normal(f.shape) for f in forces)
        h = 1e-6
        lp = rollout.loss(initial, steps, **dict(kw, forces=tuple(f + h * x for f, x in zip(forces, d))))
        lm = rollout.loss(initial, steps, **dict(kw, forces=tuple(f - h * x for f, x in zip(forces, d))))
        fd = (lp - lm) / (2 * h)
        adj = sum(np.vdot(res.grad_force[k][a], d[a][k]) for k in range(steps) for a in range(2))
        self.assertLess(abs(fd - adj), 1e-6 * abs(adj))
        self.assertAlmostEqual(res.loss, rollout.loss(initial, steps, **kw), places=12)
        # Revolve with 2 slots: bitwise the same gradients, and the plan's advances performed.
        ck = rollout.run(initial, steps, checkpointing=dfluid.Checkpointing(slots=2,
                                                                            strategy="revolve"), **kw)
        self.assertEqual(ck.loss, res.loss)
        np.testing.assert_array_equal(ck.grad_initial.scalars[0], res.grad_initial.scalars[0])
        for k in range(steps):
            for a in range(2):
                np.testing.assert_array_equal(ck.grad_force[k][a], res.grad_force[k][a])
        self.assertIsNone(res.checkpointing)
        self.assertEqual(ck.checkpointing["advances"], ck.checkpointing["planned_advances"])
        self.assertGreater(ck.checkpointing["advances"], 0)
        plan = rollout.plan(initial, steps, dfluid.Checkpointing(slots=2, strategy="revolve"))
        self.assertIn("advances", plan["describe"])
        # Cold adjoint solves: the same loss, gradients within the solver's tolerance.
        cold = rollout.run(initial, steps, warm_adjoint_solves=False, **kw)
        self.assertEqual(cold.loss, res.loss)
        for k in range(steps):
            for a in range(2):
                np.testing.assert_allclose(cold.grad_force[k][a], res.grad_force[k][a],
                                           rtol=0, atol=1e-6 * np.abs(res.grad_force[k][a]).max())

    def test_user_loss_gradient_reaches_the_initial_state(self):
        grid, ctx, sim = smoke_setup((6, 5))
        rng = np.random.default_rng(6)
        vel, scalars = random_state(grid, rng)
        w = rng.standard_normal(grid.shape())

        def linear(step, state, grad):
            grad.scalars[0][...] = w  # d/d rho of <w, rho>
            return float(np.vdot(w, state.scalars[0]))

        rollout = dfluid.Rollout(sim)
        initial = dfluid.wrap_state(ctx, grid, vel, scalars)
        res = rollout.run(initial, 2, user_losses=[dfluid.UserLoss([2], linear, "probe")])
        d = rng.standard_normal(grid.shape())
        h = 1e-6

        def value(sign):
            st = dfluid.wrap_state(ctx, grid, [v.copy() for v in vel], [scalars[0] + sign * h * d])
            return rollout.loss(st, 2, user_losses=[dfluid.UserLoss([2], linear, "probe")])

        fd = (value(1) - value(-1)) / (2 * h)
        adj = np.vdot(res.grad_initial.scalars[0], d)
        self.assertLess(abs(fd - adj), 1e-6 * abs(adj))
        self.assertIn("probe", res.loss_terms)


class Optimizers(unittest.TestCase):
    def test_lbfgs_and_adam_minimize_in_the_callers_array(self):
        ctx = dfluid.Context("cpu")
        a = np.linspace(1.0, 4.0, 6)
        b = np.linspace(-1.0, 2.0, 6)

        def objective(x, grad):
            grad[...] = a * (x - b)
            return float(0.5 * np.sum(a * (x - b) ** 2))

        for kind, lr, iters in (("lbfgs", 1.0, 20), ("adam", 0.1, 300)):
            x = np.zeros(6)
            ptr = address(x)
            opt = dfluid.Optimizer(ctx, 6, kind=kind, learning_rate=lr, dtype="float64")
            for _ in range(iters):
                r = opt.step(x, objective)
                if r["converged"]:
                    break
            self.assertEqual(address(x), ptr)  # optimized in place
            np.testing.assert_allclose(x, b, atol=1e-3 if kind == "adam" else 1e-8)
        with self.assertRaises(dfluid.InvalidArgument) as e:
            opt.step(np.zeros(5), objective)
        self.assertIn("x: shape (5,)", str(e.exception))


class Hdf5(unittest.TestCase):
    def test_snapshot_round_trip_is_bitwise(self):
        grid, ctx, sim = smoke_setup((8, 6), dtype="float32")
        vel, scalars = random_state(grid, np.random.default_rng(7), np.float32)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run.h5")
            with dfluid.SnapshotWriter(path, grid, interval=2) as w:
                w.set_run_attribute("buoyancy", 0.4)
                self.assertTrue(w.write(ctx, 0, 0.0, 0.5, {"density": scalars[0],
                                                          "velocity": vel}))
                self.assertFalse(w.write(ctx, 1, 0.5, 0.5, {"density": scalars[0]}))
            self.assertTrue(os.path.exists(os.path.join(d, "run.xmf")))
            self.assertEqual(dfluid.read_grid(path), grid)
            snaps = dfluid.list_snapshots(path)
            self.assertEqual([s["step"] for s in snaps], [0])
            self.assertIn("velocity_x", snaps[0]["fields"])
            rho = dfluid.read_field(path, 0, "density", grid, dtype="float32")
            np.testing.assert_array_equal(rho, scalars[0])
            with self.assertRaises(dfluid.IoError):
                dfluid.read_field(path, 0, "density", grid, dtype="float64")
            self.assertEqual(float(dict(dfluid.read_run_attributes(path))["buoyancy"]), 0.4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
