// Gradient-based optimizers on device-resident flat parameter vectors:
// L-BFGS (default), Adam and plain gradient descent.
//
// The parameters are one Field<T> of P values (conventionally a Field on
// Grid::make_1d(P, 1.0) at Location::Cell; any contiguous field of P values in
// the context's memory space works). Apps make their control fields (a
// MacVelocity per step, ...) WRAP sub-ranges of that flat buffer, so there is no
// gathering copy. All vector math runs through field_ops on the context's path
// (GPU or CPU); the only host traffic is scalars (dot products, losses), except
// in save()/restore(), which copy the state to/from host vectors.
//
// The app owns the loop: step() performs ONE iteration, so the caller prints
// progress, stops between iterations (SIGINT), and saves/resumes.
//
// clang-format off
//   Context ctx = Context::create();
//   Field<float> x(ctx, Grid::make_1d(P, 1.0));     // parameters; the controls wrap x.data()
//   OptimizerOptions opt;                           // L-BFGS by default
//   opt.learning_rate = 0.1;                        // L-BFGS: length of the first trial step
//   Optimizer<float> optim(ctx, P, opt);            // optim.restore(state) to resume
//   Objective<float> objective = [&](const Field<float>& xs, Field<float>& grad) {
//     return loss_and_gradient(xs, grad);           // forward + adjoint; writes grad, returns loss
//   };
//   for (int it = 0; it < iters && !stop_requested; ++it) {
//     IterationReport r = optim.step(x, objective);
//     std::printf("%lld loss %g |g| %g\n", (long long)r.iteration, r.loss_after, r.gradient_norm);
//     if (r.converged || r.failed) break;
//   }
//   OptimizerState<float> state = optim.save();     // the app writes it (and x) to its file
// clang-format on
//
// The objective is always called with the caller's x itself (trial points are
// written into x in place), so fields that wrap x's memory see the trial point.
// It writes the gradient into `grad` (an optimizer-owned field on
// Grid::make_1d(P, 1.0), the same buffer on every call, zero-filled before each
// call so adjoints may accumulate into it) and returns the loss. A NaN/Inf loss or gradient,
// or a thrown NonFiniteValue, counts as an infinite loss: the line search backs
// off. Any other exception propagates after x is restored to the iterate it had
// when step() was called.
//
// The loss and gradient at the accepted point are cached for the next step()
// (so an L-BFGS iteration usually costs one evaluation). The cache is used only
// when x is still bitwise equal to that point (checked with one device
// reduction); a caller who changes x between steps simply pays one evaluation.
//
// Host waits per iteration (each a reduction returning a scalar): L-BFGS about
// 2 * history + 8 plus one per objective call; Adam and gradient descent 3 plus
// one per objective call. No allocation after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dfluid/field.hpp"

namespace dfluid {

enum class OptimizerKind { Lbfgs, Adam, GradientDescent };

/// "lbfgs", "adam" or "gd".
const char* to_string(OptimizerKind k);
/// Parses "lbfgs" ("l-bfgs"), "adam", "gd" ("gradient-descent", "sgd"), case-insensitive;
/// throws InvalidArgument listing the valid names otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::Lbfgs;
  /// GradientDescent: x -= learning_rate * g. Adam: the step size alpha.
  /// L-BFGS: length (2-norm, in parameter space) of the first trial step, taken
  /// along -g, and of a steepest-descent restart when no curvature is known yet.
  double learning_rate = 1e-3;

  // ---- L-BFGS ----
  int lbfgs_history = 8;  ///< number of (s, y) pairs kept (>= 1)
  /// A pair is skipped when s.y <= curvature_eps * |s| |y| (no positive curvature).
  double curvature_eps = 1e-10;

  // ---- backtracking line search (L-BFGS always; GD when gd_backtrack) ----
  double line_search_initial_step = 1.0;  ///< first trial step multiplier for L-BFGS directions
  double backtrack_factor = 0.5;          ///< step *= factor on each back-off, in (0, 1)
  double armijo_c1 = 1e-4;                ///< sufficient decrease: f(x+a d) <= f + c1 a g.d
  int max_backtracks = 20;                ///< back-offs before the search gives up (>= 0)
  /// GradientDescent (and Adam): also back off when the loss rises (plain
  /// decrease test, not Armijo). A non-finite loss or gradient at the new point
  /// always makes GD and Adam back off. Adam's moments advance only when a point
  /// is accepted.
  bool gd_backtrack = false;

  // ---- Adam ----
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;

  // ---- stopping ----
  /// Converged when the 2-norm of the gradient at the new iterate is <= this (0: never).
  double gradient_tolerance = 0.0;

  /// Throws InvalidArgument naming the bad option.
  void validate() const;
};

/// What one step() did.
struct IterationReport {
  std::int64_t iteration = 0;      ///< iterations completed, including this one
  double loss_before = 0;          ///< loss at the iterate step() started from
  double loss_after = 0;           ///< loss at the iterate it returned (== loss_before if failed)
  double gradient_norm = 0;        ///< 2-norm of the gradient at the starting iterate
  double gradient_norm_after = 0;  ///< 2-norm of the gradient at the returned iterate
  double step_size = 0;     ///< multiplier of the search direction taken (GD/Adam: the lr used)
  double step_length = 0;   ///< 2-norm of x_after - x_before
  int evaluations = 0;      ///< objective calls made by this step
  int backtracks = 0;       ///< back-offs of the line search
  bool backed_off = false;  ///< backtracks > 0
  bool restarted = false;   ///< L-BFGS history dropped (non-descent direction or failed search)
  bool failed = false;      ///< no acceptable point found; x is unchanged
  bool converged = false;   ///< gradient_norm_after <= gradient_tolerance (or g == 0)
};

/// Everything needed to continue an optimization bitwise identically
/// (together with x, which the app saves itself). Host vectors, x fastest.
template <class T>
struct OptimizerState {
  OptimizerKind kind = OptimizerKind::Lbfgs;
  std::int64_t size = 0;         ///< P
  std::int64_t iteration = 0;    ///< iterations completed
  std::int64_t evaluations = 0;  ///< objective calls in total
  /// Cached evaluation: loss and gradient at `point` (all empty when none).
  double loss = 0;
  std::vector<T> point;
  std::vector<T> gradient;
  /// L-BFGS pairs s_k = x_{k+1} - x_k, y_k = g_{k+1} - g_k, oldest first.
  std::vector<std::vector<T>> lbfgs_s, lbfgs_y;
  /// Scale (s.y / y.y) of the newest pair seen, kept across restarts (0: none yet).
  double lbfgs_gamma = 0;
  /// Adam first and second moments and number of Adam updates (bias correction).
  std::vector<T> adam_m, adam_v;
  std::int64_t adam_steps = 0;
};

/// Returns the loss at x and writes dloss/dx into grad. May throw NonFiniteValue or return NaN.
template <class T>
using Objective = std::function<double(const Field<T>& x, Field<T>& grad)>;

template <class T>
class Optimizer {
 public:
  /// P parameters (2 <= P < 2^31). Device buffers are allocated here:
  /// L-BFGS (2 * history + 5) P values, Adam 5 P, gradient descent 3 P.
  /// Throws InvalidArgument naming a bad option or P.
  Optimizer(const Context& ctx, Index P, const OptimizerOptions& options);

  /// One iteration from x (updated in place). Throws InvalidArgument if x does not
  /// hold P contiguous values in ctx's memory space, NonFiniteValue if the loss or
  /// gradient at x itself is not finite.
  IterationReport step(Field<T>& x, const Objective<T>& objective);

  /// Host wait: copies the state to host memory.
  OptimizerState<T> save() const;
  /// Replaces the state. Throws InvalidArgument if kind, size or a vector length disagree.
  void restore(const OptimizerState<T>& state);
  /// Drops the L-BFGS history, Adam moments and cached evaluation (keeps the iteration count).
  void reset();

  const OptimizerOptions& options() const { return opt_; }
  Index size() const { return P_; }
  std::int64_t iteration() const { return iteration_; }
  std::int64_t evaluations() const { return evaluations_; }
  /// Number of L-BFGS pairs currently held.
  int history_size() const { return int(hist_.size()); }
  /// The grid of the internal P-value vectors: Grid::make_1d(P, 1.0).
  const Grid& parameter_grid() const { return grid_; }

 private:
  struct Eval {
    double loss;
    double gnorm2;
    bool ok;
  };
  Field<T> flat(Field<T>& x) const;
  Eval evaluate(Field<T>& x_user, const Objective<T>& objective);
  void ensure_cached(Field<T>& x_user, Field<T>& xf, const Objective<T>& objective);
  void accept(Field<T>& xf, const Eval& e);
  double lbfgs_direction();
  double steepest_direction();
  IterationReport step_lbfgs(Field<T>& x_user, Field<T>& xf, const Objective<T>& objective);
  IterationReport step_first_order(Field<T>& x_user, Field<T>& xf, const Objective<T>& objective);

  Context ctx_;
  Index P_ = 0;
  OptimizerOptions opt_;
  Grid grid_;
  std::int64_t iteration_ = 0, evaluations_ = 0;

  // Cached evaluation at x0_.
  bool cached_ = false;
  double loss_ = 0, gnorm2_ = 0;
  Field<T> x0_, g_, gt_;  ///< accepted point, its gradient, trial gradient (objective's grad)

  // L-BFGS: history + 1 slots of (s, y); hist_ lists the used slots oldest first,
  // spare_ is a free slot that holds the search direction, then the candidate pair.
  std::vector<Field<T>> s_, y_;
  std::vector<double> sy_, yy_;  ///< s.y and y.y of each slot
  std::vector<int> hist_;
  int spare_ = 0;
  double gamma_ = 0;

  // Adam
  Field<T> m_, v_;
  std::int64_t adam_steps_ = 0;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

namespace detail {
// Elementwise kernels of the optimizers (cuda/optimizer/optimizer_ops.cpp, either path).
/// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2.
template <class T>
void adam_moments(const Context& ctx, const Field<T>& g, Field<T>& m, Field<T>& v, double beta1,
                  double beta2);
/// Scalars of one Adam update: step alpha, bias corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t.
struct AdamStep {
  double alpha, beta1, beta2, c1, c2, eps;
};
/// x = x0 - alpha * (m' / c1) / (sqrt(v' / c2) + eps) with m', v' the moments that
/// adam_moments(g, m, v) produces (same arithmetic); m and v themselves are not changed.
template <class T>
void adam_apply(const Context& ctx, const Field<T>& x0, const Field<T>& g, const Field<T>& m,
                const Field<T>& v, const AdamStep& p, Field<T>& x);
/// Host wait. Sum over all values of (a - b)^2, in double.
template <class T>
double squared_distance(const Context& ctx, const Field<T>& a, const Field<T>& b);
/// Host wait. Number of positions where a and b differ (a NaN differs from everything).
template <class T>
Index count_different(const Context& ctx, const Field<T>& a, const Field<T>& b);
}  // namespace detail

}  // namespace dfluid
