// Every operator and its adjoint on the GPU at 64³, where GPU behaviour shows: many blocks
// per launch, grids larger than one block row, the fixed-point scatter over a large range,
// a multigrid hierarchy of several levels. Each case runs on the stream setup the apps use
// (Context::create(Device::Cuda): a non-blocking stream the context owns), in double,
// against the CPU path; and every case, the adjoints above all, runs twice on the GPU and
// must be bitwise identical run to run. The tests skip where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "adjoint_test_util.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/diffusion.hpp"
#include "dfluid/forces.hpp"
#include "dfluid/projection.hpp"
#include "dfluid/simulation.hpp"

using namespace dfluid;
using dfluid::testing::fill_random;

namespace {

constexpr int kN = 64;
constexpr double kDt = 0.7;  // with |u| < 1: departure points up to 0.7 cells (RK2: ~1 cell)

using Outputs = std::vector<std::pair<std::string, std::vector<double>>>;
/// Builds its inputs on ctx from fixed seeds, runs one operator, returns named outputs.
using Case = std::function<Outputs(const Context&)>;

Grid box() {
  return Grid::make_3d(kN, kN, kN, 1.0);
}

void add(Outputs& out, const std::string& name, const Context& ctx, const Field<double>& f) {
  out.emplace_back(name, f.to_vector(ctx));
}
void add(Outputs& out, const std::string& name, const Context& ctx, const MacVelocity<double>& u) {
  for (int a = 0; a < u.dim(); ++a)
    add(out, name + "[" + std::to_string(a) + "]", ctx, u[a]);
}

/// GPU (twice) against the CPU path: max |gpu - cpu| <= rel_tol * max |cpu| per output,
/// and the two GPU runs bitwise identical.
void expect_gpu_matches_cpu(const Case& run, double rel_tol) {
  const Context cpu = Context::cpu();
  const Context gpu = Context::create(Device::Cuda);
  const Outputs ref = run(cpu);
  const Outputs first = run(gpu);
  const Outputs second = run(gpu);
  ASSERT_EQ(first.size(), ref.size());
  for (std::size_t k = 0; k < ref.size(); ++k) {
    const auto& [name, r] = ref[k];
    const auto& a = first[k].second;
    const auto& b = second[k].second;
    ASSERT_EQ(a.size(), r.size()) << name;
    double scale = 0, err = 0;
    for (std::size_t i = 0; i < r.size(); ++i) {
      scale = std::max(scale, std::abs(r[i]));
      err = std::max(err, std::abs(a[i] - r[i]));
    }
    EXPECT_GT(scale, 0) << name << ": the case computes nothing";
    EXPECT_LE(err, rel_tol * scale) << name << ": GPU vs CPU, max error " << err << " of " << scale;
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double)))
        << name << ": two GPU runs differ";
  }
}

AdvectionOptions scheme(AdvectionScheme s, Backtrace b) {
  AdvectionOptions o;
  o.scheme = s;
  o.backtrace = b;
  return o;
}

}  // namespace

TEST(GpuOperators64, ScalarAdvectionAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (AdvectionScheme s : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    SCOPED_TRACE(to_string(s));
    const AdvectionOptions o = scheme(s, Backtrace::RK2);
    expect_gpu_matches_cpu(
        [&](const Context& ctx) {
          const Grid g = box();
          Field<double> q(ctx, g), y(ctx, g), out(ctx, g), gq(ctx, g);
          MacVelocity<double> u(ctx, g), gu(ctx, g);
          fill_random(ctx, q, 1);
          fill_random(ctx, u, 2);
          fill_random(ctx, y, 3);
          advect(ctx, q, u, kDt, out, o);
          advect_adjoint(ctx, q, u, kDt, y, gq, &gu, o);
          Outputs r;
          add(r, "advect", ctx, out);
          add(r, "grad_q", ctx, gq);
          add(r, "grad_u", ctx, gu);
          return r;
        },
        1e-10);
  }
}

TEST(GpuOperators64, VelocitySelfAdvectionAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (AdvectionScheme s : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    SCOPED_TRACE(to_string(s));
    const AdvectionOptions o = scheme(s, Backtrace::Euler);
    expect_gpu_matches_cpu(
        [&](const Context& ctx) {
          const Grid g = box();
          MacVelocity<double> u(ctx, g), y(ctx, g), out(ctx, g), gu(ctx, g);
          fill_random(ctx, u, 4);
          fill_random(ctx, y, 5);
          advect(ctx, u, u, kDt, out, o);
          advect_adjoint(ctx, u, kDt, y, gu, o);
          Outputs r;
          add(r, "advect", ctx, out);
          add(r, "grad_u", ctx, gu);
          return r;
        },
        1e-10);
  }
}

TEST(GpuOperators64, ExplicitDiffusionAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  expect_gpu_matches_cpu(
      [](const Context& ctx) {
        const Grid g = box();
        const double nu = 0.1, dt = 0.9 * max_stable_diffusion_dt(g, nu);
        Field<double> q(ctx, g), y(ctx, g), out(ctx, g), gq(ctx, g);
        MacVelocity<double> u(ctx, g), yu(ctx, g), outu(ctx, g), gu(ctx, g);
        fill_random(ctx, q, 6);
        fill_random(ctx, y, 7);
        fill_random(ctx, u, 8);
        fill_random(ctx, yu, 9);
        diffuse_explicit(ctx, q, nu, dt, out);
        diffuse_explicit_adjoint(ctx, y, nu, dt, gq);
        diffuse_explicit(ctx, u, nu, dt, outu);
        diffuse_explicit_adjoint(ctx, yu, nu, dt, gu);
        Outputs r;
        add(r, "scalar", ctx, out);
        add(r, "grad_q", ctx, gq);
        add(r, "velocity", ctx, outu);
        add(r, "grad_u", ctx, gu);
        return r;
      },
      1e-12);
}

TEST(GpuOperators64, ImplicitDiffusionAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  expect_gpu_matches_cpu(
      [](const Context& ctx) {
        const Grid g = box();
        const double nu = 0.5, dt = 1.0;
        SolverOptions so;
        so.rel_tol = 1e-11;
        Field<double> q(ctx, g), y(ctx, g), out(ctx, g), gq(ctx, g);
        MacVelocity<double> u(ctx, g), yu(ctx, g), outu(ctx, g), gu(ctx, g);
        fill_random(ctx, q, 10);
        fill_random(ctx, y, 11);
        fill_random(ctx, u, 12);
        fill_random(ctx, yu, 13);
        diffuse_implicit(ctx, q, nu, dt, out, {}, so);
        diffuse_implicit_adjoint(ctx, y, nu, dt, gq, {}, so);
        diffuse_implicit(ctx, u, nu, dt, outu, so);
        diffuse_implicit_adjoint(ctx, yu, nu, dt, gu, so);
        Outputs r;
        add(r, "scalar", ctx, out);
        add(r, "grad_q", ctx, gq);
        add(r, "velocity", ctx, outu);
        add(r, "grad_u", ctx, gu);
        return r;
      },
      1e-9);
}

TEST(GpuOperators64, ForcesAndAdjoints) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  expect_gpu_matches_cpu(
      [](const Context& ctx) {
        const Grid g = box();
        Field<double> rho(ctx, g), q(ctx, g), s(ctx, g), gq(ctx, g), grho(ctx, g), gs(ctx, g);
        MacVelocity<double> u(ctx, g), f(ctx, g), gu(ctx, g), gf(ctx, g);
        fill_random(ctx, rho, 14);
        fill_random(ctx, q, 15);
        fill_random(ctx, s, 16);
        fill_random(ctx, u, 17);
        fill_random(ctx, f, 18);
        fill_random(ctx, gu, 19);
        fill_random(ctx, gq, 20);
        add_buoyancy(ctx, u, rho, 0.3, kDt);
        add_force(ctx, u, f, kDt);
        add_source(ctx, q, s, kDt);
        add_buoyancy_adjoint(ctx, gu, 0.3, kDt, grho);
        add_force_adjoint(ctx, gu, kDt, gf);
        add_source_adjoint(ctx, gq, kDt, gs);
        Outputs r;
        add(r, "u", ctx, u);
        add(r, "q", ctx, q);
        add(r, "grad_rho", ctx, grho);
        add(r, "grad_f", ctx, gf);
        add(r, "grad_s", ctx, gs);
        r.emplace_back("grad_coef",
                       std::vector<double>{add_buoyancy_coef_gradient(ctx, gu, rho, kDt)});
        return r;
      },
      1e-12);
}

TEST(GpuOperators64, ProjectionAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (BoundaryKind side : {BoundaryKind::Wall, BoundaryKind::Open}) {
    SCOPED_TRACE(to_string(side));
    expect_gpu_matches_cpu(
        [&](const Context& ctx) {
          Grid g = box();
          g.boundary[1][1] = side;  // a closed box (floating region) or an open top
          SolverOptions so;
          so.rel_tol = 1e-11;
          PressureSolver<double> solver(ctx, g);
          MacVelocity<double> u(ctx, g), gu(ctx, g);
          Field<double> p(ctx, g);
          fill_random(ctx, u, 21);
          fill_random(ctx, gu, 22);
          solver.project(ctx, u, p, kDt, so);
          solver.project_adjoint(ctx, gu, so);
          Outputs r;
          add(r, "u", ctx, u);
          add(r, "grad_u", ctx, gu);
          return r;
        },
        1e-8);
  }
}

TEST(GpuOperators64, SimulationStepAndAdjoint) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  expect_gpu_matches_cpu(
      [](const Context& ctx) {
        const Grid g = box();
        StepConfig cfg;
        cfg.dt = kDt;
        cfg.buoyancy = 0.3;
        cfg.diffusion = DiffusionMode::Implicit;
        cfg.viscosity = 0.05;
        cfg.scalar_diffusivity = 0.02;
        cfg.pressure.rel_tol = 1e-11;
        cfg.diffusion_solver.rel_tol = 1e-11;
        Simulation<double> sim(ctx, g, cfg);
        SmokeState<double> in(ctx, g), s(ctx, g);
        fill_random(ctx, in.velocity, 23);
        fill_random(ctx, in.scalars[0], 24);
        MacVelocity<double> f(ctx, g), gf(ctx, g);
        fill_random(ctx, f, 25);
        StepControls<double> c;
        c.force = &f;
        copy(ctx, in.velocity, s.velocity);
        copy(ctx, in.scalars[0], s.scalars[0]);
        sim.step(s, c);
        SmokeGradient<double> grad(ctx, g, 1);
        fill_random(ctx, grad.velocity, 26);
        fill_random(ctx, grad.scalars[0], 27);
        StepControlGradient<double> cg;
        cg.force = &gf;
        double gb = 0;
        sim.step_adjoint(in, c, grad, &cg, &gb);
        Outputs r;
        add(r, "velocity", ctx, s.velocity);
        add(r, "density", ctx, s.scalars[0]);
        add(r, "grad_velocity", ctx, grad.velocity);
        add(r, "grad_density", ctx, grad.scalars[0]);
        add(r, "grad_force", ctx, gf);
        r.emplace_back("grad_buoyancy", std::vector<double>{gb});
        return r;
      },
      1e-7);
}
