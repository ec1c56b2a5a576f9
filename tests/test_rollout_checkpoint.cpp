// Checkpointed rollouts (verification ladder rung 6): Rollout::run with a checkpoint
// plan gives BITWISE the same loss, loss terms, gradients (initial velocity and scalars,
// per-step forces and sources, buoyancy coefficient) and final state as the store-all
// path, for every kind of plan: store-all through the driver, Revolve on a few device
// slots, recompute-from-start, two levels (device + host, with and without the staging
// buffer and prefetches) and three levels (device + host + disk files). The driver
// performs exactly the advances, stores and restores the plan summary predicts. Budgets
// below the minimum and unusable disk directories give clear errors; the disk directory
// is removed after the run, also when the run throws.
//
// Setup: double precision on the CPU path, small 2D (16x16) and 3D (8x8x6) grids, 12-40
// steps, keyframes (masked and unmasked, at states 0, inside and N), velocity targets, a
// user loss, force and source controls on every step with effort terms, buoyancy on,
// MacCormack scalars with the clamp (a nonlinear kink: any replay difference would show).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/rollout.hpp"
#include "rollout_test_util.hpp"

using namespace dfluid;
namespace ck = dfluid::checkpoint;
namespace fs = std::filesystem;

namespace {

// A smooth field: low-frequency sines of the position (cell units), random phases.
Field<double> smooth_field(const Context& ctx, const Grid& g, Location loc, unsigned seed,
                           double amp, double offset = 0) {
  Field<double> f(ctx, g, loc);
  const auto e = f.extents();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  double r[8];
  for (double& x : r)
    x = u(rng);
  std::vector<double> v(std::size_t(f.size()));
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i) {
        const double x = i / double(g.n[0]), y = j / double(g.n[1]),
                     z = g.dim == 3 ? k / double(g.n[2]) : 0.0;
        const double s = std::sin(2 * M_PI * (x * (1 + r[0]) + r[1])) *
                             std::cos(2 * M_PI * (y * (1 + r[2]) + r[3])) +
                         0.5 * std::sin(2 * M_PI * (x * r[4] + y * (1 + r[5]) + z + r[6]));
        v[(std::size_t(k) * e[1] + j) * e[0] + i] = offset + amp * s;
      }
  f.assign(ctx, v);
  return f;
}

MacVelocity<double> smooth_mac(const Context& ctx, const Grid& g, unsigned seed, double amp) {
  MacVelocity<double> u(ctx, g);
  for (int a = 0; a < g.dim; ++a)
    u[a] = smooth_field(ctx, g, face_location(a), seed + 31 * a, amp);
  return u;
}

StepConfig config(int up_axis) {
  StepConfig cfg;
  cfg.dt = 1.0;
  cfg.scalar_advection.scheme = AdvectionScheme::MacCormack;
  cfg.scalar_advection.maccormack_clamp = true;
  cfg.buoyancy = 0.3;
  cfg.up_axis = up_axis;
  return cfg;
}

// Everything one rollout needs; controls and losses point into it.
struct Problem {
  Context ctx;
  Grid g;
  int steps;
  StepConfig cfg;
  SmokeState<double> init;
  std::vector<MacVelocity<double>> forces;
  std::vector<Field<double>> sources;
  Field<double> target, mid_target, mask, user_weight;
  MacVelocity<double> vel_target;

  Problem(const Context& c, const Grid& grid, int n)
      : ctx(c),
        g(grid),
        steps(n),
        cfg(config(grid.dim == 3 ? 2 : 1)),
        init(c, grid, {"density", "temperature"}) {
    init.velocity = smooth_mac(ctx, g, 1, 0.3);
    init.scalars[0] = smooth_field(ctx, g, Location::Cell, 2, 0.4, 0.5);
    init.scalars[1] = smooth_field(ctx, g, Location::Cell, 3, 0.2, 0.1);
    for (int k = 0; k < n; ++k) {
      forces.push_back(smooth_mac(ctx, g, 100 + 7 * k, 0.05));
      sources.push_back(smooth_field(ctx, g, Location::Cell, 200 + 7 * k, 0.05));
    }
    target = smooth_field(ctx, g, Location::Cell, 4, 0.3, 0.4);
    mid_target = smooth_field(ctx, g, Location::Cell, 5, 0.3, 0.4);
    mask = smooth_field(ctx, g, Location::Cell, 6, 0.5, 0.5);
    user_weight = smooth_field(ctx, g, Location::Cell, 7, 1.0);
    vel_target = smooth_mac(ctx, g, 8, 0.2);
  }

  std::vector<StepControls<double>> controls() const {
    std::vector<StepControls<double>> c(static_cast<std::size_t>(steps));
    for (int k = 0; k < steps; ++k) {
      c[k].force = &forces[k];
      c[k].sources = {&sources[k], k % 2 ? &sources[k] : nullptr};
    }
    return c;
  }

  RolloutLosses<double> losses() const {
    RolloutLosses<double> L;
    ScalarKeyframe<double> kf;
    kf.name = "final density";
    kf.step = steps;
    kf.target = &target;
    kf.weight = 2.0;
    L.keyframes.push_back(kf);
    kf.name = "masked mid density";
    kf.step = steps / 2;
    kf.target = &mid_target;
    kf.mask = &mask;
    kf.weight = 1.5;
    L.keyframes.push_back(kf);
    kf.name = "initial temperature";
    kf.step = 0;
    kf.scalar = 1;
    kf.target = &target;
    kf.mask = nullptr;
    kf.weight = 0.7;
    L.keyframes.push_back(kf);
    kf.name = "late temperature";
    kf.step = std::max(0, steps - 1);
    L.keyframes.push_back(kf);
    VelocityTarget<double> vt;
    vt.name = "final velocity";
    vt.step = steps;
    vt.target = &vel_target;
    vt.weight = 3.0;
    L.velocity_targets.push_back(vt);
    vt.name = "early velocity";
    vt.step = std::min(3, steps);
    L.velocity_targets.push_back(vt);
    L.force_effort = 0.1;
    L.source_effort = 0.05;
    // A cubic of the density at two states: value sum w q^3 / 3, gradient w q^2.
    L.user.push_back(
        dfluid::testing::cubic_user_loss(ctx, user_weight, {1, std::max(0, steps - 2)}));
    return L;
  }

  RolloutResult<double> run(const RolloutOptions& opt = {}) const {
    Simulation<double> sim(ctx, g, cfg);
    Rollout<double> r(sim);
    return r.run(init, steps, controls(), losses(), opt);
  }
  RolloutPlan plan(const RolloutOptions& opt) const {
    Simulation<double> sim(ctx, g, cfg);
    Rollout<double> r(sim);
    return r.plan(init, steps, opt);
  }
};

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

// memcmp of the values of two fields; the first differing entry in the message.
::testing::AssertionResult bitwise(const Context& ctx, const Field<double>& a,
                                   const Field<double>& b) {
  const std::vector<double> va = a.to_vector(ctx), vb = b.to_vector(ctx);
  if (va.size() != vb.size()) return ::testing::AssertionFailure() << "sizes differ";
  if (va.empty()) return ::testing::AssertionFailure() << "empty field";
  if (std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)) == 0)
    return ::testing::AssertionSuccess();
  for (std::size_t i = 0; i < va.size(); ++i)
    if (!same_bits(va[i], vb[i]))
      return ::testing::AssertionFailure() << "entry " << i << ": " << va[i] << " vs " << vb[i]
                                           << " (diff " << va[i] - vb[i] << ")";
  return ::testing::AssertionFailure();
}

void expect_identical(const Problem& p, const RolloutResult<double>& ref,
                      const RolloutResult<double>& r, const std::string& what) {
  SCOPED_TRACE(what);
  const Context& ctx = p.ctx;
  const int D = p.g.dim;
  EXPECT_TRUE(same_bits(ref.loss, r.loss)) << ref.loss << " vs " << r.loss;
  EXPECT_TRUE(same_bits(ref.grad_buoyancy, r.grad_buoyancy))
      << ref.grad_buoyancy << " vs " << r.grad_buoyancy;
  EXPECT_NE(r.grad_buoyancy, 0.0);
  ASSERT_EQ(ref.loss_terms.size(), r.loss_terms.size());
  for (const auto& [name, v] : ref.loss_terms) {
    ASSERT_EQ(r.loss_terms.count(name), 1u) << name;
    EXPECT_TRUE(same_bits(v, r.loss_terms.at(name))) << name;
  }
  for (int a = 0; a < D; ++a) {
    EXPECT_TRUE(bitwise(ctx, ref.grad_initial.velocity[a], r.grad_initial.velocity[a]))
        << "grad_initial velocity " << a;
    EXPECT_TRUE(bitwise(ctx, ref.final_state.velocity[a], r.final_state.velocity[a]))
        << "final velocity " << a;
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(bitwise(ctx, ref.grad_initial.scalars[i], r.grad_initial.scalars[i]))
        << "grad_initial scalar " << i;
    EXPECT_TRUE(bitwise(ctx, ref.final_state.scalars[i], r.final_state.scalars[i]))
        << "final scalar " << i;
  }
  EXPECT_TRUE(bitwise(ctx, ref.final_state.pressure, r.final_state.pressure)) << "final pressure";
  ASSERT_EQ(r.grad_force.size(), std::size_t(p.steps));
  ASSERT_EQ(r.grad_source.size(), std::size_t(p.steps));
  ASSERT_EQ(r.forward_reports.size(), std::size_t(p.steps));
  for (int k = 0; k < p.steps; ++k) {
    for (int a = 0; a < D; ++a)
      EXPECT_TRUE(bitwise(ctx, ref.grad_force[k][a], r.grad_force[k][a]))
          << "grad_force step " << k << " component " << a;
    for (int i = 0; i < 2; ++i)
      EXPECT_TRUE(bitwise(ctx, ref.grad_source[k][i], r.grad_source[k][i]))
          << "grad_source step " << k << " scalar " << i;
    EXPECT_EQ(ref.forward_reports[k].pressure.iterations, r.forward_reports[k].pressure.iterations)
        << "forward step " << k;
    EXPECT_EQ(ref.adjoint_reports[k].pressure.iterations, r.adjoint_reports[k].pressure.iterations)
        << "adjoint step " << k;
  }
}

// What the driver did equals what the plan summary predicts.
void expect_counts_match(const RolloutResult<double>& r, int steps) {
  ASSERT_TRUE(r.checkpointing.has_value());
  const ck::PlanSummary& s = r.checkpointing->summary;
  const CheckpointRunStats& d = r.checkpointing->performed;
  EXPECT_EQ(d.advances, s.advances);
  EXPECT_EQ(d.reverses, s.reverses);
  EXPECT_EQ(d.reverses, steps);
  for (int l = 0; l < ck::kLevelCount; ++l) {
    EXPECT_EQ(d.stores[l], s.stores[l]) << "level " << l;
    EXPECT_EQ(d.restores[l], s.restores[l]) << "level " << l;
  }
}

RolloutOptions with_slots(ck::Strategy strategy, std::int64_t device, std::int64_t host = 0,
                          std::int64_t disk = 0, const std::string& dir = {}) {
  RolloutOptions o;
  o.checkpointing.enabled = true;
  o.checkpointing.strategy = strategy;
  o.checkpointing.slots.device = device;
  o.checkpointing.slots.host = host;
  o.checkpointing.slots.disk = disk;
  o.checkpointing.disk_directory = dir;
  return o;
}

// A fresh directory for disk slots, removed with the fixture.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("dfluid-test-ckpt-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  bool empty() const { return fs::is_empty(path_); }

 private:
  fs::path path_;
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

void check_all_plans(const Problem& p, const RolloutResult<double>& ref) {
  const int n = p.steps;
  TempDir dir;
  struct Case {
    std::string name;
    RolloutOptions opt;
    ck::PlanKind kind;
  };
  std::vector<Case> cases;
  cases.push_back(
      {"store-all plan", with_slots(ck::Strategy::StoreAll, n - 1), ck::PlanKind::StoreAll});
  cases.push_back(
      {"revolve, 3 device slots", with_slots(ck::Strategy::Revolve, 3), ck::PlanKind::Revolve});
  cases.push_back(
      {"revolve, 2 device slots", with_slots(ck::Strategy::Auto, 2), ck::PlanKind::Revolve});
  cases.push_back({"recompute from start", with_slots(ck::Strategy::RecomputeFromStart, 4),
                   ck::PlanKind::RecomputeFromStart});
  // Two levels without staging (one device slot: nothing to give up for it).
  cases.push_back({"device + host, synchronous", with_slots(ck::Strategy::MultiLevel, 1, 4),
                   ck::PlanKind::MultiLevel});
  // Two levels with staging: slow host copies make overlapping them worth a device slot.
  Case staged{"device + host, staging", with_slots(ck::Strategy::MultiLevel, 3, 3),
              ck::PlanKind::MultiLevel};
  staged.opt.checkpointing.costs.host_bandwidth = 1e6;
  cases.push_back(staged);
  // Three levels: disk slots for the oldest segment starts.
  cases.push_back({"device + host + disk, synchronous",
                   with_slots(ck::Strategy::MultiLevel, 1, 1, 6, dir.str()),
                   ck::PlanKind::MultiLevel});
  Case disk_staged{"device + host + disk, staging",
                   with_slots(ck::Strategy::MultiLevel, 3, 1, 6, dir.str()),
                   ck::PlanKind::MultiLevel};
  disk_staged.opt.checkpointing.costs.host_bandwidth = 1e6;
  disk_staged.opt.checkpointing.costs.disk_bandwidth = 1e6;
  cases.push_back(disk_staged);

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const RolloutPlan plan = p.plan(c.opt);
    EXPECT_EQ(plan.plan.kind, c.kind);
    const bool want_staging = c.name.find("staging") != std::string::npos;
    EXPECT_EQ(plan.plan.staging, want_staging);
    if (c.kind == ck::PlanKind::MultiLevel) EXPECT_GT(plan.summary.stores[1], 0);
    if (c.name.find("disk") != std::string::npos) EXPECT_GT(plan.summary.stores[2], 0);
    if (c.kind != ck::PlanKind::StoreAll) EXPECT_GT(plan.summary.advances, 0);
    const RolloutResult<double> r = p.run(c.opt);
    expect_identical(p, ref, r, c.name);
    expect_counts_match(r, n);
    EXPECT_EQ(r.checkpointing->summary.advances, plan.summary.advances);
    if (want_staging) EXPECT_GT(r.checkpointing->performed.prefetch_hits, 0);
    EXPECT_TRUE(dir.empty()) << "the disk slot directory was not removed";
  }
}

}  // namespace

TEST(RolloutCheckpoint, AllPlansBitwiseIdenticalToStoreAll2D) {
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 24);
  const RolloutResult<double> ref = p.run();
  EXPECT_FALSE(ref.checkpointing.has_value());
  check_all_plans(p, ref);
}

TEST(RolloutCheckpoint, AllPlansBitwiseIdenticalToStoreAll3D) {
  Grid g = Grid::make_3d(8, 8, 6, 1.0);
  g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  const Problem p(Context::cpu(), g, 12);
  check_all_plans(p, p.run());
}

TEST(RolloutCheckpoint, DriverAdvancesEqualThePlanSummary) {
  // Step counts around the binomial thresholds, 1..3 device slots, and n = 1, 2.
  for (int n : {1, 2, 13, 40}) {
    const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), n);
    const RolloutResult<double> ref = p.run();
    for (std::int64_t slots : {1, 2, 3}) {
      const RolloutOptions opt = with_slots(ck::Strategy::Revolve, slots);
      const RolloutResult<double> r = p.run(opt);
      SCOPED_TRACE("n = " + std::to_string(n) + ", slots = " + std::to_string(slots));
      expect_counts_match(r, n);
      EXPECT_EQ(r.checkpointing->performed.advances, ck::numforw(n, slots));
      if (n == 40) expect_identical(p, ref, r, "n = 40");
    }
  }
}

TEST(RolloutCheckpoint, BudgetInBytesGivesSlotsAndReport) {
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 20);
  RolloutOptions opt;
  opt.checkpointing.enabled = true;
  // State size: velocity (17x16 + 16x17) + 2 scalars + pressure (16x16 each), in double.
  const RolloutPlan probe = p.plan(with_slots(ck::Strategy::Auto, 1));
  EXPECT_EQ(probe.size.state_bytes, (17 * 16 * 2 + 3 * 16 * 16) * sizeof(double));
  // Gradient outputs: 20 force fields and 20 x 2 source fields.
  EXPECT_EQ(probe.output_bytes, 20 * (17 * 16 * 2 + 2 * 16 * 16) * sizeof(double));
  EXPECT_GT(probe.size.working_bytes, probe.output_bytes + 4 * probe.size.state_bytes);
  opt.checkpointing.budget.device_bytes = probe.size.working_bytes + 4 * probe.size.state_bytes;
  opt.checkpointing.budget.host_bytes = 3 * probe.size.state_bytes + 5;
  const RolloutPlan plan = p.plan(opt);
  EXPECT_EQ(plan.plan.slots.device, 4);
  EXPECT_EQ(plan.plan.slots.host, 3);
  EXPECT_EQ(plan.plan.slots.disk, 0);
  EXPECT_LE(plan.summary.peak_device_bytes, opt.checkpointing.budget.device_bytes);
  const std::string report = plan.describe();
  EXPECT_NE(report.find("\nadvances: " + std::to_string(plan.summary.advances) + "\n"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("state size: " + std::to_string(plan.size.state_bytes)), std::string::npos)
      << report;
  const RolloutResult<double> r = p.run(opt);
  expect_identical(p, p.run(), r, "budget of 4 device + 3 host states");
  expect_counts_match(r, 20);
  // Leaving the gradient outputs out shrinks the working memory by exactly their size.
  RolloutOptions lean = opt;
  lean.force_gradients = lean.source_gradients = false;
  const RolloutPlan lp = p.plan(lean);
  EXPECT_EQ(lp.output_bytes, 0u);
  EXPECT_EQ(lp.size.working_bytes, plan.size.working_bytes - plan.output_bytes);
}

TEST(RolloutCheckpoint, BudgetBelowMinimumNamesTheMinimum) {
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 12);
  const RolloutPlan probe = p.plan(with_slots(ck::Strategy::Auto, 1));
  const std::size_t minimum = ck::minimum_device_bytes(probe.size);
  RolloutOptions opt;
  opt.checkpointing.enabled = true;
  opt.checkpointing.budget.device_bytes = minimum - 1;
  opt.checkpointing.budget.host_bytes = 100 * probe.size.state_bytes;
  Simulation<double> sim(p.ctx, p.g, p.cfg);
  Rollout<double> r(sim);
  for (int via_run = 0; via_run < 2; ++via_run) {
    try {
      if (via_run)
        r.run(p.init, p.steps, p.controls(), p.losses(), opt);
      else
        r.plan(p.init, p.steps, opt);
      ADD_FAILURE() << "no throw";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("minimum of " + std::to_string(minimum) + " bytes"),
                std::string::npos)
          << e.what();
    }
  }
  // Exactly the minimum: one device slot, recompute from the start (host slots unused
  // unless the model prefers them; either way the plan runs).
  opt.checkpointing.budget.device_bytes = minimum;
  const RolloutPlan plan = r.plan(p.init, p.steps, opt);
  EXPECT_EQ(plan.plan.slots.device, 1);
  // The default budget (0 bytes) with checkpointing on is refused the same way.
  RolloutOptions none;
  none.checkpointing.enabled = true;
  EXPECT_THROW(r.run(p.init, p.steps, p.controls(), p.losses(), none), InvalidArgument);
  // A store-all plan needs n-1 device slots.
  EXPECT_THROW(r.plan(p.init, p.steps, with_slots(ck::Strategy::StoreAll, 3)), InvalidArgument);
}

TEST(RolloutCheckpoint, UnusableDiskDirectoryIsAClearError) {
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 12);
  TempDir dir;
  const std::string file = dir.str() + "/not-a-directory";
  std::ofstream(file) << "x";
  const std::string missing = dir.str() + "/missing/deeper";
  for (const std::string& bad : {file, missing, file + "/sub"}) {
    const RolloutOptions opt = with_slots(ck::Strategy::MultiLevel, 1, 0, 8, bad);
    const std::string msg = message_of([&] { p.run(opt); });
    EXPECT_NE(msg.find("checkpoint"), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    EXPECT_NE(msg.find("disk_directory"), std::string::npos) << msg;
    EXPECT_THROW(p.run(opt), Error);
  }
  // A plan without disk slots never touches the directory.
  const RolloutOptions host_only = with_slots(ck::Strategy::MultiLevel, 1, 8, 0, missing);
  EXPECT_NO_THROW(p.run(host_only));
}

TEST(RolloutCheckpoint, ErrorsPropagateAndTheDiskDirectoryIsRemoved) {
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 16);
  TempDir dir;
  RolloutLosses<double> L = p.losses();
  UserLoss<double> bad;
  bad.name = "nan";
  bad.steps = {6};
  const Context ctx = p.ctx;
  bad.fn = [ctx](int, const SmokeState<double>&, SmokeGradient<double>& gr) {
    std::vector<double> v = gr.scalars[0].to_vector(ctx);
    v[40] = std::nan("");
    gr.scalars[0].assign(ctx, v);
    return 0.0;
  };
  L.user.push_back(bad);
  Simulation<double> sim(p.ctx, p.g, p.cfg);
  Rollout<double> r(sim);
  const RolloutOptions opt = with_slots(ck::Strategy::MultiLevel, 2, 1, 4, dir.str());
  ASSERT_GT(r.plan(p.init, p.steps, opt).summary.stores[2], 0);
  try {
    r.run(p.init, p.steps, p.controls(), L, opt);
    FAIL() << "no throw";
  } catch (const NonFiniteValue& e) {
    EXPECT_NE(std::string(e.what()).find("step 5"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.empty());
  // The same Rollout runs again afterwards, with the same result as store-all.
  const RolloutResult<double> again = r.run(p.init, p.steps, p.controls(), p.losses(), opt);
  expect_identical(p, r.run(p.init, p.steps, p.controls(), p.losses()), again, "after an error");
}

TEST(RolloutCheckpoint, MemoryStaysWithinThePlannedPeak) {
  // Every allocation goes through the allocator hook, whose statistics count the bytes
  // (on the CPU path "device" memory is host memory). The run's peak above what the
  // problem already holds stays within the plan's peak_device_bytes (working memory
  // estimate + slots) and well below store-all's.
  const Problem p(Context::cpu(), Grid::make_2d(16, 16, 1.0), 40);
  auto peak_of = [&](const RolloutOptions& opt) {
    const std::size_t before = memory_stats().host_bytes;
    reset_memory_peaks();
    { const RolloutResult<double> r = p.run(opt); }
    return memory_stats().host_peak - before;
  };
  const std::size_t store_all = peak_of(RolloutOptions{});
  for (std::int64_t slots : {1, 3}) {
    const RolloutOptions opt = with_slots(ck::Strategy::Revolve, slots);
    const RolloutPlan plan = p.plan(opt);
    const std::size_t peak = peak_of(opt);
    std::printf("  revolve %lld slots: peak %zu bytes, planned %zu, store-all %zu\n",
                static_cast<long long>(slots), peak, plan.summary.peak_device_bytes, store_all);
    EXPECT_LE(peak, plan.summary.peak_device_bytes);
    EXPECT_LE(peak + (40 - 1 - slots) * plan.size.state_bytes, store_all);
  }
}

TEST(RolloutCheckpoint, GpuPlansBitwiseIdenticalToStoreAll) {
  // The CUDA path of the slots: device buffers, pinned host slots behind the staging
  // buffer and the copy stream, disk files through the pinned bounce buffer; on a
  // context with its own stream. Store-all on the same device is the reference.
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Problem p(Context::create(Device::Cuda), Grid::make_2d(16, 16, 1.0), 24);
  check_all_plans(p, p.run());
}
