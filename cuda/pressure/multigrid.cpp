// The Poisson hierarchy: building the levels, the symmetric V-cycle used as a
// CG preconditioner, and the null space (constants on floating fluid regions).
//
// Why this multigrid: coarse cells aggregate up to 2 fine cells per axis, the
// coarse operator is the rediscretization (face weights = sum of the crossing
// fine weights / ratio), prolongation is piecewise constant and restriction its
// transpose. That keeps every level symmetric positive semi-definite for any mix
// of walls, open sides, periodic axes and obstacles, with no special cases.
// The smoother is red-black Gauss-Seidel (red, black before the coarse
// correction; black, red after), or damped Jacobi on levels where a periodic
// axis has an odd count (colours would touch across the wrap). Axes that are
// down to 2 cells stop coarsening while the others go on (semi-coarsening). Pre- and
// post-smoothers are adjoint to each other, so the V-cycle is a symmetric operator.
#include <algorithm>
#include <cstring>

#include "dfluid/field_ops.hpp"
#include "pressure/floating_regions.hpp"
#include "pressure/poisson.hpp"

namespace dfluid::detail {

namespace {

/// Ratio for coarsening g (1 on axes that cannot halve), all 1 when nothing coarsens.
CoarsenRatio coarsen_ratio(const Grid& g) {
  CoarsenRatio r;
  for (int a = 0; a < g.dim; ++a) {
    // Ceil division: with an odd count the last coarse cell holds one fine cell.
    // That works across a periodic wrap too (fine cell n-1 is in coarse cell n_c-1).
    r.r[a] = g.n[a] >= 3 ? 2 : 1;
  }
  return r;
}

bool red_black_valid(const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    if (g.periodic(a) && g.n[a] % 2 != 0) return false;
  return true;
}

template <class T>
void smooth(const Exec& ex, const PoissonLevel<T>& lv, const Field<T>& b, Field<T>& x, Field<T>& t,
            bool pre, int sweeps) {
  const PoissonLevelView<T> L = lv.view();
  if (lv.red_black_ok) {
    for (int s = 0; s < sweeps; ++s) {
      poisson_rb_sweep(ex, L, b, x, pre ? 0 : 1);
      poisson_rb_sweep(ex, L, b, x, pre ? 1 : 0);
    }
    return;
  }
  // Damped Jacobi is symmetric by itself; two steps per sweep end back in x.
  const T omega = lv.grid.dim == 1 ? T(2.0 / 3) : lv.grid.dim == 2 ? T(0.8) : T(6.0 / 7);
  for (int s = 0; s < sweeps; ++s) {
    poisson_jacobi_sweep(ex, L, b, x, t, omega);
    poisson_jacobi_sweep(ex, L, b, t, x, omega);
  }
}

/// v -= sums[label] / counts[label] on labelled cells (both arrays in the
/// context's memory space: the sums come from region_sum_into, no host wait).
template <class T>
void subtract_region_means(const Exec& ex, View<const std::int32_t> lab, const double* sums,
                           const double* counts, Field<T>& v) {
  View<T> vv = v.view();
  for_each_cell(
      ex, v.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const std::int32_t r = lab(i, j, k);
        if (r >= 0) vv(i, j, k) -= T(sums[r] / counts[r]);
      });
}

/// *dst = the sum of v over the cells labelled `region` (no host wait).
template <class T>
void region_sum_into(const Exec& ex, View<const std::int32_t> lab, std::int32_t region,
                     const Field<T>& v, double* dst) {
  View<const T> vv = v.view();
  sum_cells_into(
      ex, v.extents(),
      DFLUID_LAMBDA(int i, int j, int k) {
        return lab(i, j, k) == region ? double(vv(i, j, k)) : 0.0;
      },
      dst);
}

}  // namespace

template <class T>
PoissonLevelView<T> PoissonLevel<T>::view() const {
  PoissonLevelView<T> L;
  L.dim = grid.dim;
  for (int a = 0; a < 3; ++a) {
    L.n[a] = grid.n[a];
    L.per[a] = a < grid.dim && grid.periodic(a);
    if (a < grid.dim) L.w[a] = w[a].view();
  }
  return L;
}

template <class T>
PoissonHierarchy<T>::PoissonHierarchy(const Context& ctx, const Grid& g,
                                      const Field<std::uint8_t>* mask) {
  const Exec ex = exec_of(ctx);
  levels_.emplace_back();
  {
    PoissonLevel<T>& l0 = levels_.back();
    l0.grid = g;
    for (int a = 0; a < g.dim; ++a) {
      l0.w[a] = Field<T>(ctx, g, face_location(a));
      poisson_fine_weights(ex, g, mask, a, l0.w[a]);
    }
    l0.t = Field<T>(ctx, g);
    l0.red_black_ok = red_black_valid(g);
  }
  constexpr int kMaxLevels = 24;
  while (int(levels_.size()) < kMaxLevels) {
    const Grid& gf = levels_.back().grid;
    const CoarsenRatio r = coarsen_ratio(gf);
    if (r.r[0] * r.r[1] * r.r[2] == 1 || gf.cells() <= 8) break;
    Grid gc = gf;
    for (int a = 0; a < g.dim; ++a)
      gc.n[a] = (gf.n[a] + r.r[a] - 1) / r.r[a];
    gc.dx = gf.dx * 2;  // nominal; only the weights matter to the solver
    PoissonLevel<T> lc;
    lc.grid = gc;
    lc.ratio = r;
    lc.red_black_ok = red_black_valid(gc);
    const PoissonLevelView<T> Lf = levels_.back().view();
    for (int a = 0; a < g.dim; ++a) {
      lc.w[a] = Field<T>(ctx, gc, face_location(a));
      poisson_coarse_weights(ex, Lf, a, r, lc.w[a]);
    }
    lc.x = Field<T>(ctx, gc);
    lc.b = Field<T>(ctx, gc);
    lc.t = Field<T>(ctx, gc);
    levels_.push_back(std::move(lc));
  }

  // Null space: label floating regions on the host once (host wait).
  std::array<std::vector<double>, 3> wh;
  for (int a = 0; a < g.dim; ++a) {
    std::vector<T> v = levels_[0].w[a].to_vector(ctx);
    wh[a].assign(v.begin(), v.end());
  }
  std::vector<std::int32_t> labels = label_floating_regions(g, wh, region_count_);
  if (!region_count_.empty()) {
    region_ = Buffer<std::int32_t>(ctx, g.cells(), ctx.memory_space());
    copy_bytes(ctx, region_.data(), region_.space(), labels.data(), MemorySpace::Host,
               labels.size() * sizeof(std::int32_t));
    region_count_dev_ = Buffer<double>(ctx, Index(region_count_.size()), ctx.memory_space());
    copy_bytes(ctx, region_count_dev_.data(), region_count_dev_.space(), region_count_.data(),
               MemorySpace::Host, region_count_.size() * sizeof(double));
    region_sum_ = Buffer<double>(ctx, Index(region_count_.size()), ctx.memory_space());
    ctx.synchronize();  // `labels` dies at the end of this scope
  }
}

template <class T>
void PoissonHierarchy<T>::apply(const Context& ctx, const Field<T>& x, Field<T>& out) const {
  poisson_apply(exec_of(ctx), levels_[0].view(), x, out);
}

template <class T>
void PoissonHierarchy<T>::precondition(const Context& ctx, Preconditioner p, const Field<T>& r,
                                       Field<T>& z) {
  switch (p) {
    case Preconditioner::Multigrid:
      vcycle(ctx, r, z);
      return;
    case Preconditioner::Jacobi:
      poisson_jacobi_precondition(exec_of(ctx), levels_[0].view(), r, z);
      return;
    case Preconditioner::None:
      copy(ctx, r, z);
      return;
  }
}

template <class T>
void PoissonHierarchy<T>::vcycle(const Context& ctx, const Field<T>& r, Field<T>& z) {
  const Exec ex = exec_of(ctx);
  const int nl = int(levels_.size());
  auto B = [&](int l) -> const Field<T>& { return l == 0 ? r : levels_[l].b; };
  auto X = [&](int l) -> Field<T>& { return l == 0 ? z : levels_[l].x; };
  for (int l = 0; l + 1 < nl; ++l) {
    fill(ctx, X(l), T(0));
    smooth(ex, levels_[l], B(l), X(l), levels_[l].t, true, kPreSweeps);
    poisson_restrict_residual(ex, levels_[l].view(), B(l), X(l), levels_[l + 1].ratio,
                              levels_[l + 1].b);
  }
  // Coarsest level: symmetric sweeps from zero (tiny unless an axis could not coarsen).
  PoissonLevel<T>& lc = levels_[nl - 1];
  fill(ctx, X(nl - 1), T(0));
  const int nmax = std::max({lc.grid.n[0], lc.grid.n[1], lc.grid.n[2]});
  const int sweeps = std::min(32, std::max(4, nmax));
  smooth(ex, lc, B(nl - 1), X(nl - 1), lc.t, true, sweeps);
  smooth(ex, lc, B(nl - 1), X(nl - 1), lc.t, false, sweeps);
  for (int l = nl - 2; l >= 0; --l) {
    poisson_prolong_add(ex, X(l + 1), levels_[l + 1].ratio, X(l));
    smooth(ex, levels_[l], B(l), X(l), levels_[l].t, false, kPreSweeps);
  }
}

template <class T>
void PoissonHierarchy<T>::project_null(const Context& ctx, Field<T>& v) const {
  if (region_count_.empty()) return;
  const Exec ex = exec_of(ctx);
  const Grid& g = levels_[0].grid;
  View<const std::int32_t> lab{region_.data(), g.n[0], g.n[1],
                               g.n[2],         g.n[0], Index(g.n[0]) * g.n[1]};
  for (std::size_t r = 0; r < region_count_.size(); ++r)
    region_sum_into(ex, lab, std::int32_t(r), v, region_sum_.data() + r);
  subtract_region_means(ex, lab, region_sum_.data(), region_count_dev_.data(), v);
}

template struct PoissonLevel<float>;
template struct PoissonLevel<double>;
template class PoissonHierarchy<float>;
template class PoissonHierarchy<double>;

}  // namespace dfluid::detail
