// Gradient-based optimizers on flat parameter vectors (see dfluid/optimizer.hpp).
// All vector math goes through field_ops and the kernels of cuda/optimizer/optimizer_ops.cpp;
// this file holds only the host logic: scalars, line search, bookkeeping.
#include "dfluid/optimizer.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <limits>
#include <sstream>

#include "dfluid/field_ops.hpp"

namespace dfluid {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

[[noreturn]] void bad_option(const std::string& name, const std::string& value,
                             const std::string& rule) {
  throw InvalidArgument("OptimizerOptions." + name + " = " + value + ": " + rule);
}

}  // namespace

const char* to_string(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::Lbfgs:
      return "lbfgs";
    case OptimizerKind::Adam:
      return "adam";
    case OptimizerKind::GradientDescent:
      return "gd";
  }
  return "unknown";
}

OptimizerKind parse_optimizer_kind(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  if (s == "lbfgs" || s == "l-bfgs") return OptimizerKind::Lbfgs;
  if (s == "adam") return OptimizerKind::Adam;
  if (s == "gd" || s == "gradient-descent" || s == "sgd") return OptimizerKind::GradientDescent;
  throw InvalidArgument("optimizer '" + name +
                        "' is unknown; valid names: lbfgs, adam, gd (also l-bfgs, "
                        "gradient-descent, sgd)");
}

void OptimizerOptions::validate() const {
  if (kind != OptimizerKind::Lbfgs && kind != OptimizerKind::Adam &&
      kind != OptimizerKind::GradientDescent)
    bad_option("kind", std::to_string(int(kind)), "not an OptimizerKind");
  if (!(std::isfinite(learning_rate) && learning_rate > 0))
    bad_option("learning_rate", num(learning_rate), "must be finite and > 0");
  if (lbfgs_history < 1) bad_option("lbfgs_history", std::to_string(lbfgs_history), "must be >= 1");
  if (!(std::isfinite(curvature_eps) && curvature_eps >= 0))
    bad_option("curvature_eps", num(curvature_eps), "must be finite and >= 0");
  if (!(std::isfinite(line_search_initial_step) && line_search_initial_step > 0))
    bad_option("line_search_initial_step", num(line_search_initial_step), "must be finite and > 0");
  if (!(backtrack_factor > 0 && backtrack_factor < 1))
    bad_option("backtrack_factor", num(backtrack_factor), "must be in (0, 1)");
  if (!(armijo_c1 >= 0 && armijo_c1 < 1))
    bad_option("armijo_c1", num(armijo_c1), "must be in [0, 1)");
  if (max_backtracks < 0)
    bad_option("max_backtracks", std::to_string(max_backtracks), "must be >= 0");
  if (!(adam_beta1 >= 0 && adam_beta1 < 1))
    bad_option("adam_beta1", num(adam_beta1), "must be in [0, 1)");
  if (!(adam_beta2 >= 0 && adam_beta2 < 1))
    bad_option("adam_beta2", num(adam_beta2), "must be in [0, 1)");
  if (!(std::isfinite(adam_eps) && adam_eps > 0))
    bad_option("adam_eps", num(adam_eps), "must be finite and > 0");
  if (!(std::isfinite(gradient_tolerance) && gradient_tolerance >= 0))
    bad_option("gradient_tolerance", num(gradient_tolerance), "must be finite and >= 0");
}

template <class T>
Optimizer<T>::Optimizer(const Context& ctx, Index P, const OptimizerOptions& options)
    : ctx_(ctx), P_(P), opt_(options) {
  opt_.validate();
  if (P < 2 || P > Index(INT_MAX))
    throw InvalidArgument("Optimizer: P = " + std::to_string(P) +
                          " parameters; need 2 <= P <= " + std::to_string(INT_MAX));
  grid_ = Grid::make_1d(int(P), 1.0);
  x0_ = Field<T>(ctx_, grid_);
  g_ = Field<T>(ctx_, grid_);
  gt_ = Field<T>(ctx_, grid_);
  if (opt_.kind == OptimizerKind::Lbfgs) {
    const int slots = opt_.lbfgs_history + 1;
    s_.reserve(slots);
    y_.reserve(slots);
    for (int i = 0; i < slots; ++i) {
      s_.emplace_back(ctx_, grid_);
      y_.emplace_back(ctx_, grid_);
    }
    sy_.assign(slots, 0.0);
    yy_.assign(slots, 0.0);
  } else if (opt_.kind == OptimizerKind::Adam) {
    m_ = Field<T>(ctx_, grid_);
    v_ = Field<T>(ctx_, grid_);
  }
}

template <class T>
Field<T> Optimizer<T>::flat(Field<T>& x) const {
  if (x.size() != P_)
    throw InvalidArgument("Optimizer::step: x has " + std::to_string(x.size()) +
                          " values but the optimizer was made for P = " + std::to_string(P_));
  if (!x.view().contiguous())
    throw InvalidArgument("Optimizer::step: x must be contiguous (no padded strides)");
  check::accessible(ctx_, x, "Optimizer::step: x");
  return Field<T>::wrap(grid_, Location::Cell, x.data(), x.space());
}

template <class T>
typename Optimizer<T>::Eval Optimizer<T>::evaluate(Field<T>& x_user,
                                                   const Objective<T>& objective) {
  ++evaluations_;
  fill(ctx_, gt_, T(0));
  double f;
  try {
    f = objective(x_user, gt_);
  } catch (const NonFiniteValue&) {
    return {kInf, kInf, false};
  }
  const double gn2 = dot(ctx_, gt_, gt_);
  const bool ok = std::isfinite(f) && std::isfinite(gn2);
  return {ok ? f : kInf, gn2, ok};
}

template <class T>
void Optimizer<T>::accept(Field<T>& xf, const Eval& e) {
  copy(ctx_, xf, x0_);
  copy(ctx_, gt_, g_);
  loss_ = e.loss;
  gnorm2_ = e.gnorm2;
  cached_ = true;
}

template <class T>
void Optimizer<T>::ensure_cached(Field<T>& x_user, Field<T>& xf, const Objective<T>& objective) {
  if (cached_ && detail::count_different(ctx_, xf, x0_) == 0) return;
  cached_ = false;
  const Eval e = evaluate(x_user, objective);
  if (!e.ok)
    throw NonFiniteValue(
        "Optimizer::step: the loss or gradient at the current x is not finite; the optimizer "
        "cannot start from this point");
  accept(xf, e);
}

// d = -g * c, c = gamma of the newest curvature pair seen, or learning_rate / |g|
// (a first step of length learning_rate). Returns g.d.
template <class T>
double Optimizer<T>::steepest_direction() {
  Field<T>& d = s_[spare_];
  const double c = gamma_ > 0 ? gamma_ : opt_.learning_rate / std::sqrt(gnorm2_);
  copy(ctx_, g_, d);
  scale(ctx_, d, T(-c));
  return dot(ctx_, g_, d);
}

// Two-loop recursion: d = -H g with H0 = (s.y / y.y) I of the newest pair. Returns g.d.
template <class T>
double Optimizer<T>::lbfgs_direction() {
  Field<T>& d = s_[spare_];
  const int n = int(hist_.size());
  std::vector<double> a(n);
  copy(ctx_, g_, d);
  for (int i = n - 1; i >= 0; --i) {
    const int k = hist_[i];
    a[i] = dot(ctx_, s_[k], d) / sy_[k];
    axpy(ctx_, T(-a[i]), y_[k], d);
  }
  const int newest = hist_.back();
  scale(ctx_, d, T(sy_[newest] / yy_[newest]));
  for (int i = 0; i < n; ++i) {
    const int k = hist_[i];
    const double b = dot(ctx_, y_[k], d) / sy_[k];
    axpy(ctx_, T(a[i] - b), s_[k], d);
  }
  scale(ctx_, d, T(-1));
  return dot(ctx_, g_, d);
}

template <class T>
IterationReport Optimizer<T>::step_lbfgs(Field<T>& x_user, Field<T>& xf,
                                         const Objective<T>& objective) {
  IterationReport r;
  r.loss_before = loss_;
  r.gradient_norm = std::sqrt(gnorm2_);

  bool from_history = !hist_.empty();
  double gd = from_history ? lbfgs_direction() : steepest_direction();
  if (from_history && !(std::isfinite(gd) && gd < 0)) {
    hist_.clear();
    r.restarted = true;
    from_history = false;
    gd = steepest_direction();
  }

  Field<T>& d = s_[spare_];
  double alpha = 0;
  Eval e{kInf, kInf, false};
  bool found = false;
  for (int attempt = 0; attempt < 2 && !found; ++attempt) {
    if (attempt == 1) {
      if (!from_history) break;  // the steepest-descent search failed too
      hist_.clear();
      r.restarted = true;
      from_history = false;
      gd = steepest_direction();
    }
    if (!(std::isfinite(gd) && gd < 0)) continue;
    alpha = from_history ? opt_.line_search_initial_step : 1.0;
    for (int b = 0;; ++b) {
      copy(ctx_, x0_, xf);
      axpy(ctx_, T(alpha), d, xf);
      e = evaluate(x_user, objective);
      if (e.ok && e.loss <= loss_ + opt_.armijo_c1 * alpha * gd) {
        found = true;
        break;
      }
      if (b == opt_.max_backtracks) break;
      alpha *= opt_.backtrack_factor;
      ++r.backtracks;
    }
  }

  if (!found) {
    copy(ctx_, x0_, xf);
    hist_.clear();
    r.restarted = true;
    r.failed = true;
    r.loss_after = loss_;
    r.gradient_norm_after = r.gradient_norm;
    return r;
  }

  // Candidate pair in the spare slot: s = x_new - x_old, y = g_new - g_old.
  Field<T>& s = s_[spare_];
  Field<T>& y = y_[spare_];
  copy(ctx_, xf, s);
  axpy(ctx_, T(-1), x0_, s);
  copy(ctx_, gt_, y);
  axpy(ctx_, T(-1), g_, y);
  const double sy = dot(ctx_, s, y), ss = dot(ctx_, s, s), yy = dot(ctx_, y, y);
  if (std::isfinite(sy) && std::isfinite(yy) && sy > 0 &&
      sy > opt_.curvature_eps * std::sqrt(ss) * std::sqrt(yy)) {
    sy_[spare_] = sy;
    yy_[spare_] = yy;
    gamma_ = sy / yy;
    hist_.push_back(spare_);
    if (int(hist_.size()) > opt_.lbfgs_history) {
      spare_ = hist_.front();
      hist_.erase(hist_.begin());
    } else {
      int free_slot = 0;
      while (std::find(hist_.begin(), hist_.end(), free_slot) != hist_.end())
        ++free_slot;
      spare_ = free_slot;
    }
  }
  accept(xf, e);
  r.step_size = alpha;
  r.step_length = std::sqrt(ss);
  r.loss_after = loss_;
  r.gradient_norm_after = std::sqrt(gnorm2_);
  return r;
}

template <class T>
IterationReport Optimizer<T>::step_first_order(Field<T>& x_user, Field<T>& xf,
                                               const Objective<T>& objective) {
  IterationReport r;
  r.loss_before = loss_;
  r.gradient_norm = std::sqrt(gnorm2_);
  const bool adam = opt_.kind == OptimizerKind::Adam;
  detail::AdamStep ap{};
  if (adam) {
    const double t = double(adam_steps_ + 1);
    ap = {0.0,
          opt_.adam_beta1,
          opt_.adam_beta2,
          1.0 - std::pow(opt_.adam_beta1, t),
          1.0 - std::pow(opt_.adam_beta2, t),
          opt_.adam_eps};
  }
  double alpha = opt_.learning_rate;
  Eval e{kInf, kInf, false};
  bool found = false;
  for (int b = 0;; ++b) {
    if (adam) {
      ap.alpha = alpha;
      detail::adam_apply(ctx_, x0_, g_, m_, v_, ap, xf);
    } else {
      copy(ctx_, x0_, xf);
      axpy(ctx_, T(-alpha), g_, xf);
    }
    e = evaluate(x_user, objective);
    if (e.ok && (!opt_.gd_backtrack || e.loss <= loss_)) {
      found = true;
      break;
    }
    if (b == opt_.max_backtracks) break;
    alpha *= opt_.backtrack_factor;
    ++r.backtracks;
  }
  if (!found) {
    copy(ctx_, x0_, xf);
    r.failed = true;
    r.loss_after = loss_;
    r.gradient_norm_after = r.gradient_norm;
    return r;
  }
  if (adam) {  // the moments advance with the accepted point (g_ is still the old gradient)
    detail::adam_moments(ctx_, g_, m_, v_, opt_.adam_beta1, opt_.adam_beta2);
    ++adam_steps_;
  }
  r.step_length = std::sqrt(detail::squared_distance(ctx_, xf, x0_));
  accept(xf, e);
  r.step_size = alpha;
  r.loss_after = loss_;
  r.gradient_norm_after = std::sqrt(gnorm2_);
  return r;
}

template <class T>
IterationReport Optimizer<T>::step(Field<T>& x, const Objective<T>& objective) {
  if (!objective) throw InvalidArgument("Optimizer::step: objective is empty");
  Field<T> xf = flat(x);
  const std::int64_t evals_before = evaluations_;
  ensure_cached(x, xf, objective);

  IterationReport r;
  const double gnorm = std::sqrt(gnorm2_);
  if (gnorm == 0 || gnorm <= opt_.gradient_tolerance) {
    r.loss_before = r.loss_after = loss_;
    r.gradient_norm = r.gradient_norm_after = gnorm;
  } else {
    try {
      r = opt_.kind == OptimizerKind::Lbfgs ? step_lbfgs(x, xf, objective)
                                            : step_first_order(x, xf, objective);
    } catch (...) {
      copy(ctx_, x0_, xf);  // x0_ holds the iterate step() started from
      throw;
    }
  }
  ++iteration_;
  r.iteration = iteration_;
  r.evaluations = int(evaluations_ - evals_before);
  r.backed_off = r.backtracks > 0;
  r.converged =
      !r.failed && (r.gradient_norm_after == 0 || r.gradient_norm_after <= opt_.gradient_tolerance);
  return r;
}

template <class T>
OptimizerState<T> Optimizer<T>::save() const {
  OptimizerState<T> st;
  st.kind = opt_.kind;
  st.size = P_;
  st.iteration = iteration_;
  st.evaluations = evaluations_;
  if (cached_) {
    st.loss = loss_;
    st.point = x0_.to_vector(ctx_);
    st.gradient = g_.to_vector(ctx_);
  }
  for (int k : hist_) {
    st.lbfgs_s.push_back(s_[k].to_vector(ctx_));
    st.lbfgs_y.push_back(y_[k].to_vector(ctx_));
  }
  st.lbfgs_gamma = gamma_;
  if (opt_.kind == OptimizerKind::Adam) {
    st.adam_m = m_.to_vector(ctx_);
    st.adam_v = v_.to_vector(ctx_);
    st.adam_steps = adam_steps_;
  }
  return st;
}

template <class T>
void Optimizer<T>::restore(const OptimizerState<T>& st) {
  const auto bad = [](const std::string& what) {
    throw InvalidArgument("Optimizer::restore: " + what);
  };
  const std::size_t P = std::size_t(P_);
  if (st.kind != opt_.kind)
    bad(std::string("state.kind = ") + to_string(st.kind) + " but the optimizer is " +
        to_string(opt_.kind));
  if (st.size != P_)
    bad("state.size = " + std::to_string(st.size) +
        " but the optimizer has P = " + std::to_string(P_));
  if (st.iteration < 0 || st.evaluations < 0 || st.adam_steps < 0)
    bad("negative iteration, evaluation or adam_steps count");
  if (st.point.size() != st.gradient.size() || (!st.point.empty() && st.point.size() != P))
    bad("state.point and state.gradient must both be empty or both hold P values");
  if (!st.point.empty() && !std::isfinite(st.loss)) bad("state.loss is not finite");
  if (st.lbfgs_s.size() != st.lbfgs_y.size()) bad("state.lbfgs_s and lbfgs_y differ in length");
  if (opt_.kind != OptimizerKind::Lbfgs && !st.lbfgs_s.empty())
    bad("L-BFGS history given to a " + std::string(to_string(opt_.kind)) + " optimizer");
  for (std::size_t i = 0; i < st.lbfgs_s.size(); ++i)
    if (st.lbfgs_s[i].size() != P || st.lbfgs_y[i].size() != P)
      bad("L-BFGS pair " + std::to_string(i) + " does not hold P values");
  if (!(std::isfinite(st.lbfgs_gamma) && st.lbfgs_gamma >= 0))
    bad("state.lbfgs_gamma must be finite and >= 0");
  if (opt_.kind == OptimizerKind::Adam) {
    if (st.adam_m.size() != P || st.adam_v.size() != P)
      bad("state.adam_m and adam_v must hold P values");
  } else if (!st.adam_m.empty() || !st.adam_v.empty()) {
    bad("Adam moments given to a " + std::string(to_string(opt_.kind)) + " optimizer");
  }

  reset();
  iteration_ = st.iteration;
  evaluations_ = st.evaluations;
  if (!st.point.empty()) {
    x0_.assign(ctx_, st.point);
    g_.assign(ctx_, st.gradient);
    loss_ = st.loss;
    gnorm2_ = dot(ctx_, g_, g_);
    if (!std::isfinite(gnorm2_)) bad("state.gradient is not finite");
    cached_ = true;
  }
  // Keep the newest pairs if the state holds more than this optimizer's history.
  const std::size_t n = st.lbfgs_s.size();
  const std::size_t first = n > std::size_t(opt_.lbfgs_history) ? n - opt_.lbfgs_history : 0;
  for (std::size_t i = first; i < n; ++i) {
    const int k = int(i - first);
    s_[k].assign(ctx_, st.lbfgs_s[i]);
    y_[k].assign(ctx_, st.lbfgs_y[i]);
    sy_[k] = dot(ctx_, s_[k], y_[k]);
    yy_[k] = dot(ctx_, y_[k], y_[k]);
    if (!(std::isfinite(sy_[k]) && sy_[k] > 0 && std::isfinite(yy_[k])))
      bad("L-BFGS pair " + std::to_string(i) + " has no positive finite curvature s.y");
    hist_.push_back(k);
  }
  spare_ = int(hist_.size());
  gamma_ = st.lbfgs_gamma;
  if (opt_.kind == OptimizerKind::Adam) {
    m_.assign(ctx_, st.adam_m);
    v_.assign(ctx_, st.adam_v);
    adam_steps_ = st.adam_steps;
  }
}

template <class T>
void Optimizer<T>::reset() {
  cached_ = false;
  hist_.clear();
  spare_ = 0;
  gamma_ = 0;
  if (opt_.kind == OptimizerKind::Adam) {
    fill(ctx_, m_, T(0));
    fill(ctx_, v_, T(0));
  }
  adam_steps_ = 0;
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace dfluid
