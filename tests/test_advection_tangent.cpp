// The advection tangent (advect_tangent) beyond the joint transpose tests of
// test_advection_adjoint.cpp: argument checks, determinism and linearity in
// the direction, and the float tangent/adjoint transpose on the CPU path (and
// on a GPU where one is present).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "advection_test_util.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;
using namespace dfluid::testing::advection;

namespace {

/// Runs f and returns the message of the dfluid::Error it throws ("" if none).
template <class Fn>
std::string error_of(Fn f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AdvectionTangent, RejectsBadArguments) {
  const Context ctx = Context::cpu();
  const Grid g = make_grid(2, BoundaryKind::Wall);
  F q(ctx, g), dq(ctx, g), dout(ctx, g);
  MacVelocity<double> u(ctx, g), du(ctx, g);
  const auto has = [](const std::string& msg, const char* what) {
    return msg.find(what) != std::string::npos;
  };
  // dout aliasing an input: named, and the fix said.
  std::string m = error_of([&] { advect_tangent(ctx, q, u, kDt, dq, &du, dq, {}); });
  EXPECT_TRUE(has(m, "advect_tangent: dout") && has(m, "dq") && has(m, "separate output")) << m;
  m = error_of([&] { advect_tangent(ctx, u, kDt, du, du, {}); });
  EXPECT_TRUE(has(m, "dout[x]") && has(m, "du[x]")) << m;
  m = error_of([&] { advect_tangent(ctx, u, u, kDt, du, &du, u, {}); });
  EXPECT_TRUE(has(m, "dout[x]") && has(m, "q[x]")) << m;
  // A direction on the wrong location or grid.
  F wrong(ctx, g, Location::FaceX);
  m = error_of([&] { advect_tangent(ctx, q, u, kDt, wrong, &du, dout, {}); });
  EXPECT_TRUE(has(m, "advect_tangent: dq")) << m;
  const Grid other = make_grid(2, BoundaryKind::Periodic);
  MacVelocity<double> du_other(ctx, other);
  m = error_of([&] { advect_tangent(ctx, q, u, kDt, dq, &du_other, dout, {}); });
  EXPECT_TRUE(has(m, "advect_tangent: du[x]")) << m;
  m = error_of([&] { advect_tangent(ctx, q, u, kDt, dq, &du, wrong, {}); });
  EXPECT_TRUE(has(m, "advect_tangent: dout")) << m;
  m = error_of([&] { advect_tangent(ctx, q, u, 0.0, dq, &du, dout, {}); });
  EXPECT_TRUE(has(m, "advect_tangent: dt")) << m;
  F empty;
  m = error_of([&] { advect_tangent(ctx, empty, u, kDt, dq, &du, dout, {}); });
  EXPECT_TRUE(has(m, "q is empty")) << m;
  EXPECT_NO_THROW(
      advect_tangent(ctx, q, u, kDt, dq, static_cast<MacVelocity<double>*>(nullptr), dout, {}));
}

TEST(AdvectionTangent, IsDeterministicAndLinearInTheDirection) {
  const Context ctx = Context::cpu();
  const Grid g = make_grid(3, BoundaryKind::Wall);
  AdvectionOptions o;
  o.scheme = AdvectionScheme::MacCormack;
  o.backtrace = Backtrace::RK2;
  MacVelocity<double> u(ctx, g), v(ctx, g), v2(ctx, g), out(ctx, g), out2(ctx, g);
  randomize(ctx, u, 21, -1, 1);
  randomize(ctx, v, 22, -1, 1);
  advect_tangent(ctx, u, kDt, v, out, o);
  advect_tangent(ctx, u, kDt, v, out2, o);
  const auto a = flat(ctx, out), b = flat(ctx, out2);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double)));
  for (int c = 0; c < 3; ++c) {  // J (-3 v) = -3 J v up to rounding
    copy(ctx, v[c], v2[c]);
    scale(ctx, v2[c], -3.0);
  }
  advect_tangent(ctx, u, kDt, v2, out2, o);
  const auto c3 = flat(ctx, out2);
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(c3[i], -3 * a[i], 1e-14 * (1 + std::abs(a[i]))) << i;
}

// Float: the tangent and the adjoint in single precision are transposes up to
// float rounding: |<J v, y> - <v, J^T y>| <= 1e-5 sum_i |(J v)_i y_i| (the
// sum of magnitudes, since velocity directions have both signs). Run on the
// CPU path always and on the GPU where there is one.
template <class T, class V>
std::vector<T> host_random(const V& f, unsigned seed) {
  std::vector<T> h(std::size_t(f.size()));
  unsigned s = seed * 2654435761u + 777u;
  for (auto& x : h) {
    s = s * 1664525u + 1013904223u;
    x = T(-1 + 2 * double(s >> 8) / double(1u << 24));
  }
  return h;
}

void check_float_transpose(const Context& ctx) {
  const Grid g = make_grid(3, BoundaryKind::Wall);
  for (AdvectionScheme sch : {AdvectionScheme::SemiLagrangian, AdvectionScheme::MacCormack}) {
    SCOPED_TRACE(to_string(sch));
    AdvectionOptions o;
    o.scheme = sch;
    o.backtrace = Backtrace::RK2;
    MacVelocity<float> u(ctx, g), v(ctx, g), y(ctx, g), gu(ctx, g), jv(ctx, g);
    for (int a = 0; a < 3; ++a) {
      u[a].assign(ctx, host_random<float>(u[a], 40 + a));
      v[a].assign(ctx, host_random<float>(v[a], 50 + a));
      y[a].assign(ctx, host_random<float>(y[a], 60 + a));
    }
    advect_adjoint(ctx, u, kDt, y, gu, o);
    advect_tangent(ctx, u, kDt, v, jv, o);
    double lhs = 0, rhs = 0, mag = 0;
    for (int a = 0; a < 3; ++a) {
      const auto J = jv[a].to_vector(ctx), Y = y[a].to_vector(ctx), Vv = v[a].to_vector(ctx),
                 G = gu[a].to_vector(ctx);
      for (std::size_t i = 0; i < J.size(); ++i) {
        lhs += double(J[i]) * Y[i];
        mag += std::abs(double(J[i]) * Y[i]);
        rhs += double(Vv[i]) * G[i];
      }
    }
    ASSERT_GT(mag, 0.0);
    EXPECT_NEAR(lhs, rhs, 1e-5 * mag) << "<J v, y> = " << lhs << ", <v, J^T y> = " << rhs;
  }
}

TEST(AdvectionTangent, FloatTransposeCpu) {
  check_float_transpose(Context::cpu());
}

TEST(GpuAdvectionTangent, FloatTranspose) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_float_transpose(Context::create(Device::Cuda));
}

}  // namespace
