"""dfluid.torch: torch.autograd.gradcheck of a step and of a (checkpointed) rollout in double,
zero-copy exchange of tensors, and errors naming the argument. Skipped (exit 77) where torch
is not installed (.ci/python-env installs it into the cached virtual environment)."""

import sys
import unittest

try:
    import torch
except ImportError:
    print("torch is not installed: skipped")
    sys.exit(77)


import dfluid
import dfluid.torch
from common import address, channel, parabola, smoke_setup


def tensors(grid, seed, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    vel = tuple((0.3 * torch.randn(s, generator=g, dtype=torch.float64)).requires_grad_(requires_grad)
                for s in grid.velocity_shapes)
    rho = (0.2 + 0.8 * torch.rand(grid.shape(), generator=g, dtype=torch.float64)
           ).requires_grad_(requires_grad)
    return vel, rho


class TorchStep(unittest.TestCase):
    def test_gradcheck_step(self):
        grid, ctx, sim = smoke_setup((5, 4))
        fluid = dfluid.torch.Simulator(sim)
        vel, rho = tensors(grid, 0)
        g = torch.Generator().manual_seed(1)
        force = tuple((0.1 * torch.randn(s, generator=g, dtype=torch.float64)).requires_grad_()
                      for s in grid.velocity_shapes)
        source = (0.1 * torch.rand(grid.shape(), generator=g, dtype=torch.float64)).requires_grad_()
        buoyancy = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

        def f(u, v, rho, fx, fy, src, b):
            vo, so, _ = fluid.step((u, v), [rho], force=(fx, fy), sources=[src], buoyancy=b)
            return (*vo, *so)

        self.assertTrue(torch.autograd.gradcheck(f, (*vel, rho, *force, source, buoyancy),
                                                 eps=1e-6, atol=1e-7, rtol=1e-5))

    def test_step_gradient_of_a_loss_and_zero_copy(self):
        grid, ctx, sim = smoke_setup((6, 6))
        vel, rho = tensors(grid, 2, requires_grad=False)
        # dfluid wraps tensors without copying: the state's arrays are the tensors' memory.
        state = dfluid.wrap_state(ctx, grid, vel, [rho])
        self.assertEqual(address(state.velocity[0]), vel[0].data_ptr())
        self.assertEqual(address(state.scalars[0]), rho.data_ptr())
        ctx.reset_counters()
        sim.step(state)
        self.assertEqual(ctx.counters()["bytes_to_device"], 0)
        # Views of dfluid memory come into torch without a copy too.
        owned = dfluid.State(ctx, grid, dtype="float64")
        t = torch.from_dlpack(owned.scalars[0])
        self.assertEqual(t.data_ptr(), address(owned.scalars[0]))
        # A loss on the output: backward reaches every leaf.
        vel, rho = tensors(grid, 3)
        fluid = dfluid.torch.Simulator(sim)
        vo, so, p = fluid.step(vel, [rho])
        loss = (so[0] ** 2).sum() + (vo[1] ** 2).sum()
        loss.backward()
        self.assertTrue(all(v.grad is not None for v in vel) and rho.grad is not None)
        self.assertFalse(p.requires_grad)

    def test_errors_name_the_argument(self):
        grid, ctx, sim = smoke_setup((6, 6))
        fluid = dfluid.torch.Simulator(sim)
        vel, rho = tensors(grid, 4)
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel, [rho.float()])
        self.assertIn("scalars[0]", str(e.exception))
        self.assertIn("float32", str(e.exception))
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel[:1], [rho])
        self.assertIn("velocity", str(e.exception))
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel, [rho[:, :3]])
        self.assertIn("shape (6, 3)", str(e.exception))


class TorchRollout(unittest.TestCase):
    def test_gradcheck_rollout_forces_and_buoyancy(self):
        grid, ctx, sim = smoke_setup((5, 4))
        steps = 3
        fluid = dfluid.torch.Simulator(sim)
        vel, rho = tensors(grid, 5)
        g = torch.Generator().manual_seed(6)
        forces = tuple((0.1 * torch.randn((steps,) + s, generator=g, dtype=torch.float64)
                        ).requires_grad_() for s in grid.velocity_shapes)
        buoyancy = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

        def f(u, v, rho, fx, fy, b):
            vo, so = fluid.rollout((u, v), [rho], steps, forces=(fx, fy), buoyancy=b,
                                   save_steps=[1, steps])
            return (*vo, *so)

        self.assertTrue(torch.autograd.gradcheck(f, (*vel, rho, *forces, buoyancy),
                                                 eps=1e-6, atol=1e-7, rtol=1e-5))

    def test_gradcheck_viscosity_step_and_rollout(self):
        # The viscosity as a differentiable input, explicit and implicit diffusion (the state's
        # gradients are checked above; only the viscosity is perturbed here, to stay cheap).
        for mode, nu0 in (("explicit", 0.08), ("implicit", 0.6)):
            grid, ctx, sim = smoke_setup((5, 4))
            cfg = sim.config
            cfg.diffusion, cfg.viscosity, cfg.diffusion_tolerance = mode, nu0, 1e-14
            sim = dfluid.Simulation(ctx, grid, cfg, dtype="float64")
            fluid = dfluid.torch.Simulator(sim)
            vel, rho = tensors(grid, 8, requires_grad=False)
            nu = torch.tensor(nu0, dtype=torch.float64, requires_grad=True)

            def step(nu):
                vo, so, _ = fluid.step(vel, [rho], viscosity=nu)
                return (*vo, *so)

            def rollout(nu):
                vo, so = fluid.rollout(vel, [rho], 2, viscosity=nu, save_steps=[1, 2])
                return (*vo, *so)

            for f in (step, rollout):
                with self.subTest(mode=mode, function=f.__name__):
                    # fast_mode: one backward along a random output direction.
                    self.assertTrue(torch.autograd.gradcheck(f, (nu,), eps=1e-6, atol=1e-7,
                                                             rtol=1e-5, fast_mode=True))

    def test_checkpointed_rollout_gradients_equal_store_all(self):
        grid, ctx, sim = smoke_setup((8, 8))
        steps = 12
        target = torch.rand(grid.shape(), dtype=torch.float64)

        def grads(checkpointing):
            fluid = dfluid.torch.Simulator(sim, checkpointing=checkpointing)
            vel, rho = tensors(grid, 7)
            forces = tuple(torch.zeros((steps,) + s, dtype=torch.float64, requires_grad=True)
                           for s in grid.velocity_shapes)
            _, so = fluid.rollout(vel, [rho], steps, forces=forces)
            loss = 0.5 * ((so[0][-1] - target) ** 2).sum()
            loss.backward()
            return [rho.grad, *(v.grad for v in vel), *(f.grad for f in forces)], loss.item()

        store_all, l0 = grads(None)
        revolve, l1 = grads(dfluid.Checkpointing(slots=3, strategy="revolve"))
        self.assertEqual(l0, l1)
        for a, b in zip(store_all, revolve):
            self.assertTrue(torch.equal(a, b))
        self.assertGreater(float(store_all[-1].abs().max()), 0.0)


class TorchObstacles(unittest.TestCase):
    """The inflow profile and a rotation rate (the obstacle wall velocity rate * R) as inputs,
    the force on the body and the mean drag/lift as outputs: gradcheck in double."""

    def setUp(self):
        self.grid, self.ctx, self.sim, _ = channel()
        self.base = torch.tensor(parabola(self.grid))
        self.center = (6.0 * self.grid.dx, 4.0 * self.grid.dx)

    def test_gradcheck_step_inflow_rotation_and_force(self):
        fluid = dfluid.torch.Simulator(self.sim)
        unit = fluid.rotation_velocity(self.center)
        g = torch.Generator().manual_seed(21)
        vel = tuple((torch.rand(s, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
                    for s in self.grid.velocity_shapes)
        profile = self.base.clone().requires_grad_()
        rate = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)

        def f(u, v, profile, rate):
            vo, _, _, force = fluid.step((u, v), [], inflow={"x-low": profile},
                                         wall_velocity=tuple(rate * w for w in unit),
                                         obstacle_force=True)
            return (*vo, force)

        self.assertTrue(torch.autograd.gradcheck(f, (*vel, profile, rate), eps=1e-6, atol=1e-7,
                                                 rtol=1e-5, fast_mode=True))

        def force_only(profile, rate):  # the full Jacobian of the force: 2 x 9
            return f(vel[0].detach(), vel[1].detach(), profile, rate)[-1]

        self.assertTrue(torch.autograd.gradcheck(force_only, (profile, rate), eps=1e-6,
                                                 atol=1e-7, rtol=1e-5))

    def test_gradcheck_checkpointed_rollout_mean_drag_and_lift(self):
        fluid = dfluid.torch.Simulator(self.sim, checkpointing=dfluid.Checkpointing(slots=2))
        unit = fluid.rotation_velocity(self.center)
        vel = tuple(torch.zeros(s, dtype=torch.float64) for s in self.grid.velocity_shapes)
        losses = [dfluid.ObstacleForceLoss(steps=[2, 3, 4]),
                  dfluid.ObstacleForceLoss(direction=(0.0, 1.0), name="lift")]
        profile = self.base.clone().requires_grad_()
        rate = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)

        def f(profile, rate, with_state=True):
            vo, _, forces = fluid.rollout(vel, [], 4, inflow={"x-low": profile},
                                          wall_velocity=tuple(rate * w for w in unit),
                                          obstacle_forces=losses)
            return (forces, *vo) if with_state else forces

        self.assertTrue(torch.autograd.gradcheck(lambda p, r: f(p, r, False), (profile, rate),
                                                 eps=1e-6, atol=1e-7, rtol=1e-5))
        self.assertTrue(torch.autograd.gradcheck(f, (profile, rate), eps=1e-6, atol=1e-7,
                                                 rtol=1e-5, fast_mode=True))
        # the values are the C++ rollout's loss terms (the drag over states 2..4, the lift 1..4)
        self.sim.set_velocity_boundary(inflow={"x-low": self.base.numpy()})
        self.sim.set_obstacle_wall("no-slip", tuple((0.6 * w).numpy() for w in unit))
        res = dfluid.Rollout(self.sim).run(dfluid.State(self.ctx, self.grid, [], dtype="float64"),
                                           4, obstacle_forces=losses)
        values = f(self.base, torch.tensor(0.6, dtype=torch.float64), False)
        self.assertAlmostEqual(float(values[0]), res.loss_terms["drag"], delta=1e-12)
        self.assertAlmostEqual(float(values[1]), res.loss_terms["lift"], delta=1e-12)

    def test_errors_name_the_argument(self):
        fluid = dfluid.torch.Simulator(self.sim)
        vel = tuple(torch.zeros(s, dtype=torch.float64) for s in self.grid.velocity_shapes)
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel, [], inflow=self.base)
        self.assertIn("inflow", str(e.exception))
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel, [], inflow={"x-low": self.base[:5]})
        self.assertIn("inflow['x-low']", str(e.exception))
        with self.assertRaises(dfluid.InvalidArgument) as e:
            fluid.step(vel, [], wall_velocity=vel[:1])
        self.assertIn("wall_velocity", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
