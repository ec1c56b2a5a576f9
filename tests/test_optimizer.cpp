// Optimizers (L-BFGS, Adam, gradient descent) on the CPU path, float and double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include "dfluid/dfluid.hpp"

using namespace dfluid;

namespace {

// A host-side test problem: loss and gradient from the values of x, in double.
using HostFn = std::function<double(const std::vector<double>& x, std::vector<double>& g)>;

template <class T>
Objective<T> on_cpu(HostFn fn, int* calls = nullptr) {
  return [fn, calls](const Field<T>& x, Field<T>& grad) {
    if (calls) ++*calls;
    std::vector<double> xs(std::size_t(x.size())), gs(xs.size(), 0.0);
    for (std::size_t i = 0; i < xs.size(); ++i)
      xs[i] = double(x.data()[i]);
    const double f = fn(xs, gs);
    for (std::size_t i = 0; i < gs.size(); ++i)
      grad.data()[i] = T(gs[i]);
    return f;
  };
}

double rosenbrock(const std::vector<double>& x, std::vector<double>& g) {
  double f = 0;
  std::fill(g.begin(), g.end(), 0.0);
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    const double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
    f += 100 * a * a + b * b;
    g[i] += -400 * a * x[i] - 2 * b;
    g[i + 1] += 200 * a;
  }
  return f;
}

// f = 1/2 sum a_i (x_i - c_i)^2 with a_i log-spaced in [1, cond].
struct Quadratic {
  std::vector<double> a, c;
  Quadratic(int n, double cond) : a(n), c(n) {
    for (int i = 0; i < n; ++i) {
      a[i] = std::pow(cond, n > 1 ? double(i) / (n - 1) : 0.0);
      c[i] = 0.5 + 0.25 * std::sin(1.0 + i);
    }
  }
  double operator()(const std::vector<double>& x, std::vector<double>& g) const {
    double f = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double r = x[i] - c[i];
      f += 0.5 * a[i] * r * r;
      g[i] = a[i] * r;
    }
    return f;
  }
  double error(const std::vector<double>& x) const {
    double e = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      e = std::max(e, std::abs(x[i] - c[i]));
    return e;
  }
};

template <class T>
Field<T> make_x(const Context& ctx, const std::vector<double>& v) {
  Field<T> x(ctx, Grid::make_1d(int(v.size()), 1.0));
  for (std::size_t i = 0; i < v.size(); ++i)
    x.data()[i] = T(v[i]);
  return x;
}

template <class T>
std::vector<double> values(const Field<T>& x) {
  std::vector<double> v(std::size_t(x.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = double(x.data()[i]);
  return v;
}

std::vector<double> rosenbrock_start(int n) {
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i)
    x[i] = i % 2 == 0 ? -1.2 : 1.0;
  return x;
}

struct RunResult {
  int iterations = 0;
  bool converged = false, failed = false, backed_off = false;
  double loss = 0;
};

template <class T>
RunResult run(Optimizer<T>& opt, Field<T>& x, const Objective<T>& obj, int max_iter,
              const std::function<bool(const Field<T>&)>& done) {
  RunResult rr;
  for (int it = 0; it < max_iter; ++it) {
    IterationReport r = opt.step(x, obj);
    rr.iterations = it + 1;
    rr.loss = r.loss_after;
    rr.backed_off |= r.backed_off;
    EXPECT_LE(r.loss_after, r.loss_before) << "iteration " << r.iteration;
    if (r.converged || r.failed || done(x)) {
      rr.converged = r.converged;
      rr.failed = r.failed;
      break;
    }
  }
  return rr;
}

template <class T>
class OptimizerTyped : public ::testing::Test {
 protected:
  Context ctx = Context::cpu();
  // Accuracy reachable in T on these problems.
  static constexpr double tol = std::is_same_v<T, double> ? 1e-6 : 2e-3;
};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(OptimizerTyped, Precisions);

}  // namespace

TYPED_TEST(OptimizerTyped, LbfgsMinimizesRosenbrock2To100D) {
  using T = TypeParam;
  // Iteration caps: measured 41/82/545 (double), 41/71/527 (float), plus a margin.
  for (auto [n, cap] : {std::pair{2, 60}, std::pair{10, 120}, std::pair{100, 700}}) {
    OptimizerOptions o;
    o.learning_rate = 1.0;
    o.gradient_tolerance = std::is_same_v<T, double> ? 1e-9 : 1e-4;
    Optimizer<T> opt(this->ctx, n, o);
    Field<T> x = make_x<T>(this->ctx, rosenbrock_start(n));
    RunResult rr = run<T>(opt, x, on_cpu<T>(rosenbrock), 3000, [&](const Field<T>& xs) {
      double e = 0;
      for (double v : values(xs))
        e = std::max(e, std::abs(v - 1.0));
      return e < this->tol / 10;
    });
    double err = 0;
    for (double v : values(x))
      err = std::max(err, std::abs(v - 1.0));
    EXPECT_LT(err, this->tol) << n << "D Rosenbrock after " << rr.iterations << " iterations";
    EXPECT_LE(rr.iterations, cap) << n << "D";
  }
}

TYPED_TEST(OptimizerTyped, LbfgsBeatsGradientDescentOnIllConditionedQuadratic) {
  using T = TypeParam;
  const int n = 100;
  Quadratic q(n, 1e4);
  const std::vector<double> x0(n, 0.0);
  std::vector<double> g0(n);
  const double f0 = q(x0, g0);

  OptimizerOptions o;
  o.learning_rate = 1.0;
  Optimizer<T> lbfgs(this->ctx, n, o);
  Field<T> x = make_x<T>(this->ctx, x0);
  RunResult rl = run<T>(lbfgs, x, on_cpu<T>(q), 3000,
                        [&](const Field<T>& xs) { return q.error(values(xs)) < this->tol; });
  EXPECT_LT(q.error(values(x)), this->tol);
  EXPECT_LE(rl.iterations, 1000);  // measured 782 (double, 1e-6), 386 (float, 2e-3)

  // Gradient descent with the best fixed step for this spectrum, 1/L, given 10x the iterations.
  OptimizerOptions og;
  og.kind = OptimizerKind::GradientDescent;
  og.learning_rate = 1e-4;
  Optimizer<T> gd(this->ctx, n, og);
  Field<T> xg = make_x<T>(this->ctx, x0);
  RunResult rg =
      run<T>(gd, xg, on_cpu<T>(q), 10 * rl.iterations, [](const Field<T>&) { return false; });
  std::vector<double> gl(n), gg(n);
  const double fl = q(values(x), gl), fg = q(values(xg), gg);
  EXPECT_LT(fl, 1e-6 * f0);
  EXPECT_GT(fg, 1e3 * fl) << "L-BFGS " << fl << " vs gradient descent " << fg;
  EXPECT_GT(q.error(values(xg)), 100 * q.error(values(x)));
  (void)rg;
}

TYPED_TEST(OptimizerTyped, LineSearchBacksOffFromNonFiniteRegion) {
  using T = TypeParam;
  const int n = 6;
  Quadratic q(n, 10.0);
  for (int variant = 0; variant < 3; ++variant) {
    // Outside |x|_inf < 2: NaN loss, NaN gradient, or a thrown NonFiniteValue.
    int bad_calls = 0;
    HostFn fn = [&](const std::vector<double>& x, std::vector<double>& g) {
      double m = 0;
      for (double v : x)
        m = std::max(m, std::abs(v));
      const double f = q(x, g);
      if (m <= 2.0) return f;
      ++bad_calls;
      if (variant == 0) return std::numeric_limits<double>::quiet_NaN();
      if (variant == 1) {
        g[0] = std::numeric_limits<double>::infinity();
        return f;
      }
      throw NonFiniteValue("test: outside the valid region");
    };
    OptimizerOptions o;
    o.learning_rate = 50.0;  // the first trial step lands far outside the region
    Optimizer<T> opt(this->ctx, n, o);
    Field<T> x = make_x<T>(this->ctx, std::vector<double>(n, -1.5));
    IterationReport first = opt.step(x, on_cpu<T>(fn));
    EXPECT_TRUE(first.backed_off) << "variant " << variant;
    EXPECT_FALSE(first.failed);
    EXPECT_GT(first.evaluations, 2);
    EXPECT_LT(first.loss_after, first.loss_before);
    EXPECT_GT(bad_calls, 0);
    RunResult rr = run<T>(opt, x, on_cpu<T>(fn), 100,
                          [&](const Field<T>& xs) { return q.error(values(xs)) < this->tol; });
    EXPECT_LT(q.error(values(x)), this->tol) << "variant " << variant;
  }
}

TYPED_TEST(OptimizerTyped, LbfgsRestartsWhenTheSearchFails) {
  using T = TypeParam;
  // Finite only on a thin shell around the start: every trial point is non-finite.
  HostFn fn = [](const std::vector<double>& x, std::vector<double>& g) {
    g[0] = 2 * (x[0] - 3);
    g[1] = 2 * x[1];
    if (x[0] != 1.0) return std::numeric_limits<double>::quiet_NaN();
    return (x[0] - 3) * (x[0] - 3) + x[1] * x[1];
  };
  OptimizerOptions o;
  o.max_backtracks = 3;
  Optimizer<T> opt(this->ctx, 2, o);
  Field<T> x = make_x<T>(this->ctx, {1.0, 0.0});
  IterationReport r = opt.step(x, on_cpu<T>(fn));
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.evaluations, 1 + 4);  // start + initial trial + 3 back-offs
  EXPECT_EQ(r.backtracks, 3);
  EXPECT_EQ(values(x), (std::vector<double>{1.0, 0.0}));  // x unchanged
  EXPECT_EQ(r.loss_after, r.loss_before);
}

TYPED_TEST(OptimizerTyped, AdamConvergesOnQuadratic) {
  using T = TypeParam;
  const int n = 20;
  Quadratic q(n, 10.0);
  OptimizerOptions o;
  o.kind = OptimizerKind::Adam;
  o.learning_rate = 0.02;
  Optimizer<T> opt(this->ctx, n, o);
  Field<T> x = make_x<T>(this->ctx, std::vector<double>(n, -1.0));
  std::vector<double> g(n);
  const double f0 = q(values(x), g);
  for (int it = 0; it < 1500; ++it)
    opt.step(x, on_cpu<T>(q));
  EXPECT_LT(q.error(values(x)), 1e-3);
  EXPECT_LT(q(values(x), g), 1e-6 * f0);
}

TYPED_TEST(OptimizerTyped, AdamBacksOffFromNonFinitePointsAndKeepsItsMomentsOnFailure) {
  using T = TypeParam;
  Quadratic q(4, 10.0);
  HostFn nan_outside = [&](const std::vector<double>& x, std::vector<double>& g) {
    const double f = q(x, g);
    return std::abs(x[0]) <= 1.0 ? f : std::numeric_limits<double>::quiet_NaN();
  };
  OptimizerOptions o;
  o.kind = OptimizerKind::Adam;
  o.learning_rate = 2.5;  // every value moves by about 2.5: x[0] to 1.75, outside [-1, 1]
  Optimizer<T> opt(this->ctx, 4, o);
  Field<T> x = make_x<T>(this->ctx, {-0.75, 0.0, 0.0, 0.0});
  IterationReport r = opt.step(x, on_cpu<T>(nan_outside));
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(r.backtracks, 1);  // then 1.25: x[0] to 0.5
  EXPECT_EQ(r.step_size, 1.25);
  EXPECT_NEAR(values(x)[0], 0.5, 1e-6);
  EXPECT_EQ(opt.save().adam_steps, 1);

  Optimizer<T> stuck(this->ctx, 4, o);
  Field<T> y = make_x<T>(this->ctx, {1.0, 0.0, 0.0, 0.0});  // on the edge: any move leaves
  HostFn only_here = [&](const std::vector<double>& x, std::vector<double>& g) {
    const double f = q(x, g);
    return x[0] == 1.0 ? f : std::numeric_limits<double>::quiet_NaN();
  };
  r = stuck.step(y, on_cpu<T>(only_here));
  EXPECT_TRUE(r.failed);
  EXPECT_EQ(r.evaluations, 1 + 1 + o.max_backtracks);
  EXPECT_EQ(values(y), (std::vector<double>{1.0, 0.0, 0.0, 0.0}));
  const OptimizerState<T> st = stuck.save();
  EXPECT_EQ(st.adam_steps, 0);
  EXPECT_EQ(st.adam_m, std::vector<T>(4, T(0)));
  EXPECT_EQ(st.adam_v, std::vector<T>(4, T(0)));
}

TYPED_TEST(OptimizerTyped, AdamFirstStepIsBiasCorrected) {
  using T = TypeParam;
  // After one update m_hat = g and v_hat = g^2: every value moves by lr * g / (|g| + eps).
  Quadratic q(4, 100.0);
  OptimizerOptions o;
  o.kind = OptimizerKind::Adam;
  o.learning_rate = 0.125;
  o.adam_eps = 1e-3;
  Optimizer<T> opt(this->ctx, 4, o);
  Field<T> x = make_x<T>(this->ctx, {0.0, 1.0, -1.0, 2.0});
  const std::vector<double> x0 = values(x);
  std::vector<double> g(4);
  q(x0, g);
  opt.step(x, on_cpu<T>(q));
  for (int i = 0; i < 4; ++i) {
    const double gi = double(T(g[i]));
    const double expect = x0[i] - 0.125 * gi / (std::abs(gi) + 1e-3);
    const double tol = std::is_same_v<T, double> ? 1e-14 : 1e-6;
    EXPECT_NEAR(values(x)[i], expect, tol) << i;
  }
}

TYPED_TEST(OptimizerTyped, GradientDescentMatchesHandComputedIterates) {
  using T = TypeParam;
  // f = 1/2 sum a_i x_i^2, g = a x; every number below is exact in binary.
  const std::vector<double> a{1, 2, 4};
  HostFn fn = [&](const std::vector<double>& x, std::vector<double>& g) {
    double f = 0;
    for (int i = 0; i < 3; ++i) {
      g[i] = a[i] * x[i];
      f += 0.5 * a[i] * x[i] * x[i];
    }
    return f;
  };
  OptimizerOptions o;
  o.kind = OptimizerKind::GradientDescent;
  o.learning_rate = 0.125;
  Optimizer<T> opt(this->ctx, 3, o);
  Field<T> x = make_x<T>(this->ctx, {1.0, -2.0, 3.0});
  int calls = 0;
  IterationReport r1 = opt.step(x, on_cpu<T>(fn, &calls));
  // x1 = x0 - lr a x0 = (0.875, -1.5, 1.5)
  EXPECT_EQ(values(x), (std::vector<double>{0.875, -1.5, 1.5}));
  EXPECT_EQ(r1.loss_before, 0.5 * (1 + 2 * 4 + 4 * 9));
  EXPECT_EQ(r1.loss_after, 0.5 * (0.875 * 0.875 + 2 * 2.25 + 4 * 2.25));
  EXPECT_EQ(r1.step_size, 0.125);
  EXPECT_EQ(r1.evaluations, 2);
  IterationReport r2 = opt.step(x, on_cpu<T>(fn, &calls));
  // x2 = x1 - lr a x1 = (0.765625, -1.125, 0.75)
  EXPECT_EQ(values(x), (std::vector<double>{0.765625, -1.125, 0.75}));
  EXPECT_EQ(r2.evaluations, 1);  // the gradient at x1 was cached
  EXPECT_EQ(r2.iteration, 2);
  EXPECT_EQ(calls, 3);
}

TYPED_TEST(OptimizerTyped, GradientDescentBacktracksOnRiseWhenAsked) {
  using T = TypeParam;
  HostFn fn = [](const std::vector<double>& x, std::vector<double>& g) {
    g[0] = 2 * x[0];
    g[1] = 2 * x[1];
    return x[0] * x[0] + x[1] * x[1];
  };
  OptimizerOptions o;
  o.kind = OptimizerKind::GradientDescent;
  o.learning_rate = 3.0;  // x -> -5x: the loss rises 25x without back-off
  {
    Optimizer<T> opt(this->ctx, 2, o);
    Field<T> x = make_x<T>(this->ctx, {1.0, 1.0});
    IterationReport r = opt.step(x, on_cpu<T>(fn));
    EXPECT_FALSE(r.backed_off);
    EXPECT_EQ(values(x), (std::vector<double>{-5.0, -5.0}));
  }
  o.gd_backtrack = true;
  Optimizer<T> opt(this->ctx, 2, o);
  Field<T> x = make_x<T>(this->ctx, {1.0, 1.0});
  IterationReport r = opt.step(x, on_cpu<T>(fn));
  EXPECT_TRUE(r.backed_off);
  EXPECT_EQ(r.backtracks, 2);  // lr 3 (x -> -5x), 1.5 (x -> -2x), 0.75 (x -> -x/2)
  EXPECT_EQ(r.step_size, 0.75);
  EXPECT_EQ(values(x), (std::vector<double>{-0.5, -0.5}));
  EXPECT_EQ(r.loss_after, 0.5);
}

TYPED_TEST(OptimizerTyped, SaveRestoreContinuesBitwiseIdentically) {
  using T = TypeParam;
  const int n = 10;
  for (OptimizerKind kind :
       {OptimizerKind::Lbfgs, OptimizerKind::Adam, OptimizerKind::GradientDescent}) {
    OptimizerOptions o;
    o.kind = kind;
    o.learning_rate = kind == OptimizerKind::Lbfgs ? 1.0 : 1e-3;
    o.lbfgs_history = 3;  // so that the ring wraps within 10 iterations
    const Objective<T> obj = on_cpu<T>(rosenbrock);

    Optimizer<T> a(this->ctx, n, o);
    Field<T> xa = make_x<T>(this->ctx, rosenbrock_start(n));
    std::vector<double> losses_a;
    for (int i = 0; i < 10; ++i)
      losses_a.push_back(a.step(xa, obj).loss_after);

    OptimizerState<T> st;
    Field<T> xb = make_x<T>(this->ctx, rosenbrock_start(n));
    std::vector<double> losses_b;
    {
      Optimizer<T> b(this->ctx, n, o);
      for (int i = 0; i < 5; ++i)
        losses_b.push_back(b.step(xb, obj).loss_after);
      st = b.save();
    }
    EXPECT_EQ(st.iteration, 5);
    EXPECT_EQ(st.kind, kind);
    if (kind == OptimizerKind::Lbfgs) EXPECT_EQ(int(st.lbfgs_s.size()), 3);
    // Round trip x through a host vector, as an app does through its file.
    std::vector<T> saved_x = xb.to_vector(this->ctx);
    Field<T> xc(this->ctx, Grid::make_1d(n, 1.0));
    xc.assign(this->ctx, saved_x);
    Optimizer<T> c(this->ctx, n, o);
    c.restore(st);
    for (int i = 0; i < 5; ++i) {
      losses_b.push_back(c.step(xc, obj).loss_after);
    }
    EXPECT_EQ(c.iteration(), 10);
    // The restored state carries the cached evaluation: no extra objective call.
    EXPECT_EQ(c.evaluations(), a.evaluations()) << to_string(kind);
    ASSERT_EQ(losses_a.size(), losses_b.size());
    for (std::size_t i = 0; i < losses_a.size(); ++i)
      EXPECT_EQ(losses_a[i], losses_b[i]) << to_string(kind) << " iteration " << i + 1;
    EXPECT_EQ(std::memcmp(xa.data(), xc.data(), sizeof(T) * n), 0) << to_string(kind);
  }
}

TYPED_TEST(OptimizerTyped, ChangedXIsReevaluatedAndOtherExceptionsRestoreX) {
  using T = TypeParam;
  Quadratic q(4, 10.0);
  int calls = 0;
  OptimizerOptions o;
  o.learning_rate = 0.5;
  Optimizer<T> opt(this->ctx, 4, o);
  Field<T> x = make_x<T>(this->ctx, {0, 0, 0, 0});
  opt.step(x, on_cpu<T>(q, &calls));
  EXPECT_EQ(opt.step(x, on_cpu<T>(q, &calls)).evaluations, 1);
  x.data()[2] += T(0.25);  // the caller moves x: the cached gradient no longer applies
  const std::vector<double> moved = values(x);
  IterationReport r = opt.step(x, on_cpu<T>(q, &calls));
  EXPECT_EQ(r.evaluations, 2);
  std::vector<double> g(4);
  EXPECT_EQ(r.loss_before, q(moved, g));

  const std::vector<double> before = values(x);
  Objective<T> throws = [](const Field<T>&, Field<T>&) -> double {
    throw std::runtime_error("solver blew up");
  };
  EXPECT_THROW(opt.step(x, throws), std::runtime_error);
  EXPECT_EQ(values(x), before);
  // The starting point itself non-finite: nothing to optimize from.
  Objective<T> nan = [](const Field<T>&, Field<T>&) {
    return std::numeric_limits<double>::quiet_NaN();
  };
  Field<T> y = make_x<T>(this->ctx, {5, 5, 5, 5});
  EXPECT_THROW(opt.step(y, nan), NonFiniteValue);
}

TEST(Optimizer, AcceptsAnyContiguousFieldOfPValues) {
  Context ctx = Context::cpu();
  Quadratic q(16, 4.0);
  OptimizerOptions o;
  o.learning_rate = 1.0;
  Optimizer<double> opt(ctx, 16, o);
  Field<double> x(ctx, Grid::make_2d(4, 4, 0.1));  // a 2D field used directly as parameters
  for (int it = 0; it < 60 && q.error(values(x)) > 1e-9; ++it)
    opt.step(x, on_cpu<double>(q));
  EXPECT_LT(q.error(values(x)), 1e-9);
}

TEST(Optimizer, KindNamesRoundTrip) {
  for (OptimizerKind k :
       {OptimizerKind::Lbfgs, OptimizerKind::Adam, OptimizerKind::GradientDescent})
    EXPECT_EQ(parse_optimizer_kind(to_string(k)), k);
  EXPECT_EQ(parse_optimizer_kind("L-BFGS"), OptimizerKind::Lbfgs);
  EXPECT_EQ(parse_optimizer_kind("gradient-descent"), OptimizerKind::GradientDescent);
  try {
    parse_optimizer_kind("newton");
    FAIL() << "unknown optimizer accepted";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("newton"), std::string::npos);
    EXPECT_NE(m.find("lbfgs"), std::string::npos);
    EXPECT_NE(m.find("adam"), std::string::npos);
    EXPECT_NE(m.find("gd"), std::string::npos);
  }
}

TEST(Optimizer, BadOptionsNameTheOption) {
  Context ctx = Context::cpu();
  const auto expect_named = [&](const std::function<void(OptimizerOptions&)>& edit,
                                const std::string& name) {
    OptimizerOptions o;
    edit(o);
    try {
      Optimizer<double> opt(ctx, 8, o);
      ADD_FAILURE() << name << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_named([](OptimizerOptions& o) { o.learning_rate = 0; }, "learning_rate");
  expect_named([](OptimizerOptions& o) { o.learning_rate = -1; }, "learning_rate");
  expect_named([](OptimizerOptions& o) { o.learning_rate = std::nan(""); }, "learning_rate");
  expect_named([](OptimizerOptions& o) { o.lbfgs_history = 0; }, "lbfgs_history");
  expect_named([](OptimizerOptions& o) { o.backtrack_factor = 1; }, "backtrack_factor");
  expect_named([](OptimizerOptions& o) { o.armijo_c1 = 1; }, "armijo_c1");
  expect_named([](OptimizerOptions& o) { o.max_backtracks = -1; }, "max_backtracks");
  expect_named([](OptimizerOptions& o) { o.adam_beta1 = 1; }, "adam_beta1");
  expect_named([](OptimizerOptions& o) { o.adam_beta2 = -0.1; }, "adam_beta2");
  expect_named([](OptimizerOptions& o) { o.adam_eps = 0; }, "adam_eps");
  expect_named([](OptimizerOptions& o) { o.gradient_tolerance = -1; }, "gradient_tolerance");
  expect_named([](OptimizerOptions& o) { o.line_search_initial_step = 0; },
               "line_search_initial_step");

  EXPECT_THROW(Optimizer<double>(ctx, 1, OptimizerOptions{}), InvalidArgument);
  Optimizer<double> opt(ctx, 8, OptimizerOptions{});
  Field<double> wrong(ctx, Grid::make_1d(9, 1.0));
  Objective<double> obj = [](const Field<double>&, Field<double>&) { return 0.0; };
  try {
    opt.step(wrong, obj);
    FAIL() << "P mismatch accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("P = 8"), std::string::npos) << e.what();
  }

  OptimizerOptions adam;
  adam.kind = OptimizerKind::Adam;
  OptimizerState<double> st = Optimizer<double>(ctx, 8, adam).save();
  try {
    opt.restore(st);
    FAIL() << "Adam state restored into L-BFGS";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("kind"), std::string::npos) << e.what();
  }
  Optimizer<double> adam9(ctx, 9, adam);
  EXPECT_THROW(adam9.restore(st), InvalidArgument);
}

namespace {

// A quadratic with two curvatures whose objective runs entirely through
// field_ops on fields that WRAP the two halves of the flat parameter vector
// (as the apps' controls do), so it runs on either path.
template <class T>
std::vector<T> run_wrapped_quadratic(const Context& ctx, OptimizerKind kind, int iterations) {
  const int n = 64;
  const Grid half = Grid::make_1d(n, 1.0);
  Field<T> c_lo(ctx, half), c_hi(ctx, half);
  fill(ctx, c_lo, T(0.75));
  fill(ctx, c_hi, T(-0.5));
  const double a_lo = 1.0, a_hi = 100.0;
  Objective<T> obj = [&](const Field<T>& x, Field<T>& grad) {
    double f = 0;
    for (int h = 0; h < 2; ++h) {
      Field<T> xh = Field<T>::wrap(half, Location::Cell, x.data() + h * n, x.space());
      Field<T> gh = Field<T>::wrap(half, Location::Cell, grad.data() + h * n, grad.space());
      copy(ctx, xh, gh);
      axpy(ctx, T(-1), h == 0 ? c_lo : c_hi, gh);
      const double a = h == 0 ? a_lo : a_hi;
      f += 0.5 * a * dot(ctx, gh, gh);
      scale(ctx, gh, T(a));
    }
    return f;
  };
  OptimizerOptions o;
  o.kind = kind;
  o.learning_rate = kind == OptimizerKind::Lbfgs ? 1.0 : kind == OptimizerKind::Adam ? 0.05 : 0.009;
  Optimizer<T> opt(ctx, 2 * n, o);
  Field<T> x(ctx, Grid::make_1d(2 * n, 1.0));
  for (int it = 0; it < iterations; ++it)
    opt.step(x, obj);
  return x.to_vector(ctx);
}

}  // namespace

TEST(Optimizer, ObjectiveOnWrappedSubRangesConverges) {
  const Context ctx = Context::cpu();
  const std::vector<double> x = run_wrapped_quadratic<double>(ctx, OptimizerKind::Lbfgs, 30);
  for (int i = 0; i < 128; ++i)
    EXPECT_NEAR(x[i], i < 64 ? 0.75 : -0.5, 1e-9) << i;
}

TEST(GpuOptimizer, MatchesCpuPath) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Context cpu = Context::cpu(), gpu = Context::create(Device::Cuda);
  for (OptimizerKind kind :
       {OptimizerKind::Lbfgs, OptimizerKind::Adam, OptimizerKind::GradientDescent}) {
    const auto a = run_wrapped_quadratic<double>(cpu, kind, 12);
    const auto b = run_wrapped_quadratic<double>(gpu, kind, 12);
    const auto c = run_wrapped_quadratic<double>(gpu, kind, 12);
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 1e-9) << to_string(kind);
    EXPECT_EQ(b, c) << to_string(kind) << ": GPU runs differ";
    const auto af = run_wrapped_quadratic<float>(cpu, kind, 12);
    const auto bf = run_wrapped_quadratic<float>(gpu, kind, 12);
    for (std::size_t i = 0; i < af.size(); ++i)
      EXPECT_NEAR(af[i], bf[i], 1e-4) << to_string(kind) << " float";
  }
}
