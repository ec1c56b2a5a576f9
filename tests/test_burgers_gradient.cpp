// Published Burgers reconstruction with a differentiable-physics gradient.
//
// Source: Physics-Based Deep Learning book (Thuerey et al.), chapter "Burgers
// optimization with a differentiable physics gradient"; the setup and the
// reference state u(t = 0.5) are those of the book's example (simulated from
// u0 = -sin(pi x)); the state is data/burgers_reference_t0.5.txt (data/README.md).
//
// Setup: 1D, N = 128 cells on [-1, 1], periodic, dx = 2/N, dt = 1/32,
// nu = 0.01 / (N pi). One step = explicit diffusion, then semi-Lagrangian
// self-advection (linear interpolation, Euler backtrace). Loss =
// 1/2 sum_i (u16_i - ref_i)^2 * 2/N (the mean squared difference) after 16
// steps; u0 optimized from zeros by plain gradient descent, learning rate 5.
//
// The backward pass is written out here: store all 17 states, then per step
// (last to first) the self-advection adjoint (advect_adjoint, both paths) and
// the explicit-diffusion adjoint. With periodic sides the explicit diffusion
// q + nu dt L q has a symmetric L, so its adjoint is the same explicit
// diffusion applied to the cotangent (checked below with a dot product).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kN = 128;
constexpr int kSteps = 16;
constexpr double kDt = 1.0 / 32;
const double kNu = 0.01 / (kN * kPi);

/// The data folder: $DFLUID_DATA_DIR, else the repository's data/ (compiled in).
std::string data_dir() {
  if (const char* e = std::getenv("DFLUID_DATA_DIR"); e && *e) return e;
  return DFLUID_TEST_DATA_DIR;
}

/// The 128 reference values. On a missing or malformed file: empty, and `error` names the file
/// and what is wrong (the tests assert on it instead of crashing).
std::vector<double> read_reference(std::string& error) {
  const std::string path = data_dir() + "/burgers_reference_t0.5.txt";
  std::ifstream in(path);
  if (!in) {
    error = "cannot read the reference file '" + path + "' (set DFLUID_DATA_DIR)";
    return {};
  }
  std::vector<double> v;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.empty() || line[0] == '#') continue;
    char* end = nullptr;
    const double x = std::strtod(line.c_str(), &end);
    if (end == line.c_str() || !std::isfinite(x)) {
      error = "'" + path + "', line " + std::to_string(lineno) + ": not a number";
      return {};
    }
    v.push_back(x);
  }
  if (int(v.size()) != kN) {
    error = "'" + path + "' holds " + std::to_string(v.size()) + " values, expected " +
            std::to_string(kN);
    return {};
  }
  return v;
}

Grid burgers_grid() {
  Grid g = Grid::make_1d(kN, 2.0 / kN, -1.0);
  g.set_boundary(BoundaryKind::Periodic);
  return g;
}

AdvectionOptions burgers_advection() {
  AdvectionOptions o;
  o.scheme = AdvectionScheme::SemiLagrangian;
  o.backtrace = Backtrace::Euler;
  return o;
}

struct Burgers {
  Context ctx = Context::cpu();
  Grid g = burgers_grid();
  std::string ref_error;  // why ref is empty
  std::vector<double> ref = read_reference(ref_error);
  std::vector<CellVector<double>> u;  // states u_0 .. u_16
  std::vector<CellVector<double>> d;  // diffused states d_k = diffuse(u_k)

  Burgers() {
    for (int k = 0; k <= kSteps; ++k) {
      u.emplace_back(ctx, g);
      d.emplace_back(ctx, g);
    }
  }

  /// Runs the 16 steps from u[0] (stores every state) and returns the loss.
  double forward() {
    for (int k = 0; k < kSteps; ++k) {
      diffuse_explicit(ctx, u[k], kNu, kDt, d[k]);
      advect(ctx, d[k], d[k], kDt, u[k + 1], burgers_advection());
    }
    const auto v = u[kSteps][0].to_vector(ctx);
    double s = 0;
    for (int i = 0; i < kN; ++i)
      s += (v[i] - ref[i]) * (v[i] - ref[i]);
    return 0.5 * s * 2.0 / kN;
  }

  /// d loss / d u0 (after forward()).
  std::vector<double> gradient() {
    CellVector<double> gu(ctx, g), gd(ctx, g);
    const auto v = u[kSteps][0].to_vector(ctx);
    std::vector<double> g16(kN);
    for (int i = 0; i < kN; ++i)
      g16[i] = (v[i] - ref[i]) * 2.0 / kN;
    gu[0].assign(ctx, g16);
    for (int k = kSteps - 1; k >= 0; --k) {
      fill(ctx, gd[0], 0.0);
      advect_adjoint(ctx, d[k], kDt, gu, gd, burgers_advection());  // u_{k+1} = A(d_k)
      diffuse_explicit(ctx, gd, kNu, kDt, gu);                      // d_k = D u_k, D symmetric
    }
    return gu[0].to_vector(ctx);
  }
};

TEST(BurgersGradient, ExplicitDiffusionIsSymmetricOnPeriodicGrid) {
  const Context ctx = Context::cpu();
  const Grid g = burgers_grid();
  Field<double> x(ctx, g), y(ctx, g), dx(ctx, g), dy(ctx, g);
  std::vector<double> vx(kN), vy(kN);
  for (int i = 0; i < kN; ++i) {
    vx[i] = std::sin(0.37 * i * i + 1.0);
    vy[i] = std::cos(0.91 * i + 0.2 * i * i);
  }
  x.assign(ctx, vx);
  y.assign(ctx, vy);
  const double nu = 1.0;  // large enough that the Laplacian term matters: nu dt / dx^2 = 0.0625
  const double dt = 0.0625 * (2.0 / kN) * (2.0 / kN);
  diffuse_explicit(ctx, x, nu, dt, dx);
  diffuse_explicit(ctx, y, nu, dt, dy);
  const double a = dot(ctx, dx, y), b = dot(ctx, x, dy);
  EXPECT_NEAR(a, b, 1e-13 * std::abs(a));
}

TEST(BurgersGradient, GradientMatchesCentralDifferences) {
  Burgers b;
  ASSERT_EQ(int(b.ref.size()), kN) << b.ref_error;
  std::vector<double> u0(kN);
  for (int i = 0; i < kN; ++i)
    u0[i] = -0.7 * std::sin(kPi * (-1 + (i + 0.5) * 2.0 / kN) + 0.3);
  b.u[0][0].assign(b.ctx, u0);
  b.forward();
  const auto grad = b.gradient();
  std::vector<double> dir(kN);
  double ad = 0;
  for (int i = 0; i < kN; ++i) {
    dir[i] = std::sin(1.7 * i + 0.1 * i * i);
    ad += dir[i] * grad[i];
  }
  const double eps = 1e-6;
  auto loss_at = [&](double s) {
    std::vector<double> w(kN);
    for (int i = 0; i < kN; ++i)
      w[i] = u0[i] + s * dir[i];
    b.u[0][0].assign(b.ctx, w);
    return b.forward();
  };
  const double fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps);
  // Central differences: O(eps^2) truncation, round-off ~1e-16 / eps.
  EXPECT_NEAR(fd, ad, 1e-6 * std::abs(fd));
}

TEST(BurgersGradient, PublishedLossCurve) {
  Burgers b;
  ASSERT_EQ(int(b.ref.size()), kN) << b.ref_error;
  // Published losses by iteration (Physics-based Deep Learning, 2021), 6 decimals.
  const std::map<int, double> published = {{0, 0.382915},  {1, 0.326882},  {4, 0.210666},
                                           {10, 0.096224}, {20, 0.032819}, {30, 0.012852},
                                           {45, 0.003263}};
  std::vector<double> u0(kN, 0.0);
  for (int it = 0; it <= 45; ++it) {
    b.u[0][0].assign(b.ctx, u0);
    const double loss = b.forward();
    const auto p = published.find(it);
    if (p != published.end()) {
      std::printf("Burgers iteration %2d: loss %.8f (published %.6f)\n", it, loss, p->second);
      // Required: 4 significant digits; in fact it agrees to the 6 published decimals.
      const double sig4 = 0.5 * std::pow(10.0, std::floor(std::log10(p->second)) - 3);
      EXPECT_NEAR(loss, p->second, sig4) << "iteration " << it;
      EXPECT_NEAR(loss, p->second, 5e-7) << "iteration " << it << " (published decimals)";
    }
    const auto grad = b.gradient();
    for (int i = 0; i < kN; ++i)
      u0[i] -= 5.0 * grad[i];
  }
}

}  // namespace
