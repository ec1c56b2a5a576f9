// The force on one body among several (ObstacleForceLoss::body, Simulation::obstacle_force_on):
// the forces on bodies that partition the solid cells sum to the total (their coefficients
// exactly), and a per-body drag loss has an exact rollout gradient (central differences,
// checkpoint plans bitwise equal to store-all).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

#include "adjoint_test_util.hpp"

using namespace dfluid;

namespace {

using dfluid::testing::dotv;
using dfluid::testing::fill_random;
using dfluid::testing::with_boundary;

constexpr auto NS = BoundaryKind::NoSlip;
constexpr auto IN = BoundaryKind::Inflow;
constexpr auto OF = BoundaryKind::Outflow;

/// A channel 20 x 10 (inflow left, outflow right, no-slip walls) with two blocks: A at
/// i 4..5, j 3..4 and B at i 11..12, j 5..7 (or, touching, B at i 6..7, j 3..5).
struct Bodies {
  Grid g = with_boundary(Grid::make_2d(20, 10, 0.1), {{IN, OF}, {NS, NS}});
  ObstacleMask all, a, b;
  Bodies(const Context& ctx, bool touching) {
    std::vector<std::uint8_t> ma(std::size_t(g.cells()), 0), mb = ma, m = ma;
    auto put = [&](std::vector<std::uint8_t>& v, int i0, int i1, int j0, int j1) {
      for (int j = j0; j <= j1; ++j)
        for (int i = i0; i <= i1; ++i)
          v[std::size_t(i + g.n[0] * j)] = 1;
    };
    put(ma, 4, 5, 3, 4);
    if (touching)
      put(mb, 6, 7, 3, 5);
    else
      put(mb, 11, 12, 5, 7);
    for (std::size_t i = 0; i < m.size(); ++i)
      m[i] = std::uint8_t(ma[i] | mb[i]);
    all = ObstacleMask(ctx, g, Location::Cell);
    a = ObstacleMask(ctx, g, Location::Cell);
    b = ObstacleMask(ctx, g, Location::Cell);
    all.assign(ctx, m);
    a.assign(ctx, ma);
    b.assign(ctx, mb);
  }
};

StepConfig channel_config() {
  StepConfig cfg;
  cfg.dt = 0.05;
  cfg.diffusion = DiffusionMode::Implicit;
  cfg.viscosity = 0.02;
  cfg.pressure = dfluid::testing::tight_solver();
  cfg.pressure.warm_start = false;
  cfg.diffusion_solver = dfluid::testing::tight_solver();
  return cfg;
}

VelocityBoundary channel_inflow(const Grid& g) {
  VelocityBoundary vb;
  vb.inflow[0][0].resize(std::size_t(g.n[1]));
  for (int j = 0; j < g.n[1]; ++j)
    vb.inflow[0][0][std::size_t(j)] = 0.8 + 0.3 * std::sin(1.3 * j);
  return vb;
}

template <class T>
std::vector<T> sum_vectors(const std::vector<T>& x, const std::vector<T>& y) {
  std::vector<T> s(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    s[i] = x[i] + y[i];
  return s;
}

}  // namespace

// Two bodies, separated or touching, each spinning (a wall velocity, so every coefficient
// field counts): the per-body coefficients add up to the total's exactly (small integers),
// and so the forces to 1e-12 of the total.
TEST(ObstacleBodies, ForcesOnTheBodiesSumToTheTotal) {
  const Context ctx = Context::cpu();
  for (bool touching : {false, true}) {
    SCOPED_TRACE(touching ? "touching" : "separated");
    Bodies B(ctx, touching);
    Simulation<double> sim(ctx, B.g, channel_config(), &B.all);
    sim.set_velocity_boundary(channel_inflow(B.g));
    const MacVelocity<double> wall = rigid_rotation_velocity<double>(ctx, B.g, {0.5, 0.4, 0}, 1.5);
    sim.set_obstacle_wall({ObstacleWallKind::NoSlip, &wall});
    SmokeState<double> s(ctx, B.g, {});
    for (int k = 0; k < 3; ++k)
      sim.step(s);
    const ObstacleForceCoefficients<double>&ct = sim.obstacle_force_coefficients(),
          &ca = sim.body_force_coefficients(&B.a), &cb = sim.body_force_coefficients(&B.b);
    for (int a = 0; a < 2; ++a) {
      EXPECT_EQ(sum_vectors(ca.pressure[a].to_vector(ctx), cb.pressure[a].to_vector(ctx)),
                ct.pressure[a].to_vector(ctx));
      EXPECT_EQ(sum_vectors(ca.shear[a].to_vector(ctx), cb.shear[a].to_vector(ctx)),
                ct.shear[a].to_vector(ctx));
      EXPECT_EQ(sum_vectors(ca.shear_wall[a].to_vector(ctx), cb.shear_wall[a].to_vector(ctx)),
                ct.shear_wall[a].to_vector(ctx));
    }
    const std::array<double, 3> ft = sim.obstacle_force(s), fa = sim.obstacle_force_on(s, &B.a),
                                fb = sim.obstacle_force_on(s, &B.b),
                                fall = sim.obstacle_force_on(s, nullptr);
    for (int a = 0; a < 2; ++a) {
      EXPECT_NEAR(fa[a] + fb[a], ft[a], 1e-12 * (std::abs(fa[a]) + std::abs(fb[a])))
          << "axis " << a;
      EXPECT_EQ(fall[a], ft[a]);
      // Both bodies feel a force of their own.
      EXPECT_GT(std::abs(fa[a]), 1e-3 * std::abs(ft[0])) << "axis " << a;
      EXPECT_GT(std::abs(fb[a]), 1e-3 * std::abs(ft[0])) << "axis " << a;
    }
    EXPECT_GT(std::abs(ft[0]), 1e-2);
  }
}

namespace {

struct BodyProblem {
  double rate = 0.7;  ///< rotation rate of both bodies' wall velocity
  std::vector<double> inflow_delta = std::vector<double>(10, 0.0);
  const MacVelocity<double>* du = nullptr;
  double eps = 0;
};

/// 4 steps from a random start; loss: drag on body B over every state + 0.7 lift on body A
/// over states 2 and 4.
RolloutResult<double> body_rollout(const BodyProblem& p, const RolloutOptions& opt,
                                   std::array<double, 2>* manual = nullptr) {
  const Context ctx = Context::cpu();
  Bodies B(ctx, false);
  Simulation<double> sim(ctx, B.g, channel_config(), &B.all);
  VelocityBoundary vb = channel_inflow(B.g);
  for (std::size_t j = 0; j < vb.inflow[0][0].size(); ++j)
    vb.inflow[0][0][j] += p.inflow_delta[j];
  sim.set_velocity_boundary(vb);
  const MacVelocity<double> wall = rigid_rotation_velocity<double>(ctx, B.g, {1.0, 0.5, 0}, p.rate);
  sim.set_obstacle_wall({ObstacleWallKind::NoSlip, &wall});
  SmokeState<double> s0(ctx, B.g, {});
  fill_random(ctx, s0.velocity, 41);
  for (int a = 0; a < 2; ++a) {
    scale(ctx, s0.velocity[a], 0.3);
    if (p.eps != 0) axpy(ctx, p.eps, (*p.du)[a], s0.velocity[a]);
  }
  RolloutLosses<double> losses;
  ObstacleForceLoss<double> drag;
  drag.name = "drag_b";
  drag.body = &B.b;
  ObstacleForceLoss<double> lift;
  lift.name = "lift_a";
  lift.steps = {2, 4};
  lift.direction = {0, 1, 0};
  lift.weight = 0.7;
  lift.body = &B.a;
  losses.obstacle_forces = {drag, lift};
  Rollout<double> ro(sim);
  RolloutResult<double> r = ro.run(s0, 4, {}, losses, opt);
  if (manual) {  // the same loss terms from obstacle_force_on, one state at a time
    *manual = {0, 0};
    for (int k = 1; k <= 4; ++k) {
      sim.step(s0);
      (*manual)[0] += sim.obstacle_force_on(s0, &B.b)[0] / 4;
      if (k == 2 || k == 4) (*manual)[1] += 0.7 * sim.obstacle_force_on(s0, &B.a)[1] / 2;
    }
  }
  return r;
}

double loss_of(const BodyProblem& p) {
  return body_rollout(p, {}).loss;
}

}  // namespace

// A per-body drag and lift: the loss terms are the per-body forces, and the gradient with
// respect to the initial velocity, an inflow face and the bodies' rotation rate matches
// central differences to 1e-6; a Revolve plan gives it bit for bit.
TEST(ObstacleBodies, PerBodyDragGradientMatchesFiniteDifferences) {
  const Context ctx = Context::cpu();
  const BodyProblem p;
  RolloutOptions opt;
  opt.boundary_gradient = true;
  opt.obstacle_wall_velocity_gradient = true;
  std::array<double, 2> manual{};
  const RolloutResult<double> ref = body_rollout(p, opt, &manual);
  EXPECT_NEAR(ref.loss_terms.at("drag_b"), manual[0], 1e-12 * std::abs(manual[0]));
  EXPECT_NEAR(ref.loss_terms.at("lift_a"), manual[1], 1e-12 * std::abs(manual[1]));
  EXPECT_GT(std::abs(manual[0]), 1e-2);
  EXPECT_GT(std::abs(manual[1]), 1e-4);
  const double h = 1e-5;
  const Grid& g = ref.grad_initial.velocity.grid();
  MacVelocity<double> du(ctx, g);
  fill_random(ctx, du, 77);
  BodyProblem pp = p, pm = p;
  pp.du = pm.du = &du;
  pp.eps = h;
  pm.eps = -h;
  double fd = (loss_of(pp) - loss_of(pm)) / (2 * h);
  EXPECT_NEAR(dotv(ctx, ref.grad_initial.velocity, du), fd, 1e-6 * std::abs(fd))
      << "initial velocity";
  EXPECT_GT(std::abs(fd), 1e-2);
  for (int j : {2, 6}) {
    BodyProblem ip = p, im = p;
    ip.inflow_delta[std::size_t(j)] = h;
    im.inflow_delta[std::size_t(j)] = -h;
    fd = (loss_of(ip) - loss_of(im)) / (2 * h);
    EXPECT_NEAR(ref.grad_boundary.inflow[0][0][std::size_t(j)], fd,
                1e-6 * std::max(1e-2, std::abs(fd)))
        << "inflow face " << j;
  }
  // d loss / d rate = <grad wall velocity, the rotation at rate 1>.
  const MacVelocity<double> unit = rigid_rotation_velocity<double>(ctx, g, {1.0, 0.5, 0}, 1.0);
  BodyProblem rp = p, rm = p;
  rp.rate += h;
  rm.rate -= h;
  fd = (loss_of(rp) - loss_of(rm)) / (2 * h);
  EXPECT_NEAR(dotv(ctx, ref.grad_obstacle_wall_velocity, unit), fd,
              1e-6 * std::max(1e-2, std::abs(fd)))
      << "rotation rate";
  EXPECT_GT(std::abs(fd), 1e-4);
  RolloutOptions o = opt;
  o.checkpointing.enabled = true;
  o.checkpointing.strategy = checkpoint::Strategy::Revolve;
  o.checkpointing.slots.device = 2;
  const RolloutResult<double> r = body_rollout(p, o);
  EXPECT_EQ(r.loss, ref.loss);
  for (int a = 0; a < 2; ++a)
    EXPECT_EQ(r.grad_initial.velocity[a].to_vector(ctx),
              ref.grad_initial.velocity[a].to_vector(ctx));
}

// A body mask on another grid is refused, naming the loss.
TEST(ObstacleBodies, BodyOnAnotherGridIsRefused) {
  const Context ctx = Context::cpu();
  Bodies B(ctx, false);
  Simulation<double> sim(ctx, B.g, channel_config(), &B.all);
  const ObstacleMask other(ctx, Grid::make_2d(8, 8, 0.1), Location::Cell);
  SmokeState<double> s(ctx, B.g, {});
  RolloutLosses<double> losses;
  ObstacleForceLoss<double> drag;
  drag.body = &other;
  losses.obstacle_forces.push_back(drag);
  Rollout<double> ro(sim);
  try {
    ro.run(s, 2, {}, losses);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("obstacle force loss 'drag': body"), std::string::npos)
        << e.what();
  }
}
