// The pressure Poisson operator and its multigrid hierarchy (internal).
//
// Discretization (see also dfluid/projection.hpp). Every face carries a weight:
//  level 0: 1 on free faces (between two fluid cells, periodic wrap included, or an
//           Open box side next to a fluid cell), 0 on fixed faces (Wall sides,
//           faces touching a solid cell); with face fractions (dfluid/face_fractions.hpp)
//           the box's rule times the face's open fraction in [0, 1] (no mask).
//  coarse:  1/2 * sum of the fine weights crossing the coarse face.
// The operator, in "scaled" units (dx^2 times the physical D F D^T), is
//   (A x)_c = sum_faces w_f * (x_c - x_nbr)   with x_nbr = 0 across an Open side,
// i.e. diag = sum of the cell's face weights, off-diagonal = -w between fluid
// neighbours. It is symmetric positive semi-definite; its null space is the
// constants on each connected fluid region that touches no Open face.
// Cells with zero diagonal (solid, or fluid boxed in by solids) are inert: x = 0.
//
// Include only from cuda/*.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "dfluid/field.hpp"
#include "dfluid/linear_solver.hpp"
#include "core/exec.hpp"

namespace dfluid::detail {

/// What a kernel needs of one level: extents, periodicity, face weights.
template <class T>
struct PoissonLevelView {
  int dim = 2;
  int n[3] = {1, 1, 1};
  bool per[3] = {false, false, false};
  View<const T> w[3];
};

/// True when the face at index (i, j, k) of the faces normal to `axis` is free.
/// `open_lo/open_hi`: the box sides of that axis are Open. mask.data may be null.
DFLUID_HD inline bool face_is_free(View<const std::uint8_t> mask, const int n[3], bool periodic,
                                   bool open_lo, bool open_hi, int axis, int i, int j, int k) {
  int c[3] = {i, j, k};
  const int f = c[axis];
  int lo[3] = {i, j, k}, hi[3] = {i, j, k};
  bool has_lo = true, has_hi = true;
  if (periodic) {
    lo[axis] = f == 0 ? n[axis] - 1 : f - 1;
  } else {
    lo[axis] = f - 1;
    has_lo = f > 0;
    has_hi = f < n[axis];
  }
  const bool fl = has_lo && (mask.data == nullptr || mask(lo[0], lo[1], lo[2]) == 0);
  const bool fh = has_hi && (mask.data == nullptr || mask(hi[0], hi[1], hi[2]) == 0);
  if (has_lo && has_hi) return fl && fh;
  if (has_hi) return open_lo && fh;  // low box side
  return open_hi && fl;              // high box side
}

/// Diagonal of the operator at cell (i, j, k): the sum of the cell's face weights. D = L.dim
/// as a compile-time constant, so the axis loop unrolls (see poisson_stencil).
template <int D, class T>
DFLUID_HD DFLUID_FORCEINLINE T poisson_diag(const PoissonLevelView<T>& L, int i, int j, int k) {
  const int c[3] = {i, j, k};
  T d = T(0);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    const View<const T>& w = L.w[a];
    const Index wo = w.offset(i, j, k), ws = a == 0 ? Index(1) : a == 1 ? w.sy : w.sz;
    d += w.data[wo];
    d += w.data[c[a] + 1 == L.n[a] && L.per[a] ? wo - Index(c[a]) * ws : wo + ws];
  }
  return d;
}
/// The same with the dimension known only at run time (kernels that are not per-D).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T poisson_diag(const PoissonLevelView<T>& L, int i, int j, int k) {
  return L.dim == 1   ? poisson_diag<1>(L, i, j, k)
         : L.dim == 2 ? poisson_diag<2>(L, i, j, k)
                      : poisson_diag<3>(L, i, j, k);
}

/// Coarsening ratio (1 or 2) per axis between a level and the next finer one.
struct CoarsenRatio {
  int r[3] = {1, 1, 1};
};

/// The diagonal and off-diagonal sum (sum_f w_f * x_nbr) of the Poisson stencil at (i, j, k);
/// the neighbour values come from nb(offset, ni, nj, nk): `offset` is the neighbour's
/// element offset in the view `x` (whose strides the stencil steps with), (ni, nj, nk) its
/// cell (periodic wraps applied). FieldValues reads x there; the fused prolongation-smoother
/// adds the coarse correction of (ni, nj, nk) on the fly.
/// Why this shape (the hot loop of the pressure solve): D = L.dim at compile time, so the
/// axis loop unrolls and c[a], the strides, the wrap tests are per-axis constants; the
/// neighbours are addressed as the cell's own offset plus or minus a stride (one
/// multiply-add per view per cell, none per neighbour). The sums run in the same order as
/// always (axes in order, low before high), so results are bitwise those of the plain form.
template <int D, class T, class Nb>
DFLUID_HD DFLUID_FORCEINLINE void poisson_stencil_f(const PoissonLevelView<T>& L,
                                                    const View<const T>& x, const Nb& nb, int i,
                                                    int j, int k, T& diag, T& off) {
  const int c[3] = {i, j, k};
  const Index xo = x.offset(i, j, k);
  diag = T(0);
  off = T(0);
  DFLUID_UNROLL
  for (int a = 0; a < D; ++a) {
    const View<const T>& w = L.w[a];
    const Index wo = w.offset(i, j, k);
    const Index ws = a == 0 ? Index(1) : a == 1 ? w.sy : w.sz;
    const Index xs = a == 0 ? Index(1) : a == 1 ? x.sy : x.sz;
    const int ca = c[a], na = L.n[a];
    const bool per = L.per[a], last = ca + 1 == na;
    const T wl = w.data[wo];
    // High face ca + 1, wrapped to 0 on a periodic axis. The wrapped offsets below (a
    // multiply) are taken only at the box sides, so the common path adds a stride.
    const T wh = w.data[last && per ? wo - Index(ca) * ws : wo + ws];
    diag += wl + wh;
    // Low neighbour ca - 1 (n - 1 across a periodic wrap); none across an Open side (x = 0
    // outside; a Wall side has wl = 0). The same for the high neighbour.
    if (wl != T(0)) {
      if (ca > 0) {
        const int n = ca - 1;
        off += wl * nb(xo - xs, a == 0 ? n : i, a == 1 ? n : j, a == 2 ? n : k);
      } else if (per) {
        const int n = na - 1;
        off += wl * nb(xo + Index(n) * xs, a == 0 ? n : i, a == 1 ? n : j, a == 2 ? n : k);
      }
    }
    if (wh != T(0)) {
      if (!last) {
        const int n = ca + 1;
        off += wh * nb(xo + xs, a == 0 ? n : i, a == 1 ? n : j, a == 2 ? n : k);
      } else if (per) {
        off += wh * nb(xo - Index(ca) * xs, a == 0 ? 0 : i, a == 1 ? 0 : j, a == 2 ? 0 : k);
      }
    }
  }
}

/// nb of poisson_stencil_f reading the field itself.
template <class T>
struct FieldValues {
  const T* x;
  DFLUID_HD DFLUID_FORCEINLINE T operator()(Index o, int, int, int) const { return x[o]; }
};

/// Diagonal and off-diagonal sum (sum_f w_f * x_nbr) of the operator at cell (i, j, k).
template <int D, class T>
DFLUID_HD DFLUID_FORCEINLINE void poisson_stencil(const PoissonLevelView<T>& L,
                                                  const View<const T>& x, int i, int j, int k,
                                                  T& diag, T& off) {
  poisson_stencil_f<D>(L, x, FieldValues<T>{x.data}, i, j, k, diag, off);
}

// ---- red-black Gauss-Seidel, one cell at a time ----
// A colour's update x_c = (b_c + sum w x_nbr) / d_c reads only the other colour and never
// the cell's own old value: the first red sweep from x = 0 reads no x at all, so a level
// needs no fill before it (the black sweep that follows writes every black cell).

/// i of the `h`-th cell of colour `color` in row (j, k); >= n[0] past the row's end.
DFLUID_HD inline int rb_cell_i(int h, int j, int k, int color) {
  return 2 * h + ((color + j + k) & 1);
}
/// Cells per row a half-sweep launches over.
inline int rb_half_extent(int nx) {
  return (nx + 1) / 2;
}

/// Gauss-Seidel update of cell (i, j, k) from its neighbours' values nb (poisson_stencil_f).
template <int D, class T, class Nb>
DFLUID_HD DFLUID_FORCEINLINE void rb_update_f(const PoissonLevelView<T>& L, const View<const T>& b,
                                              const View<T>& x, const Nb& nb, int i, int j, int k) {
  T d, o;
  poisson_stencil_f<D>(L, View<const T>(x), nb, i, j, k, d, o);
  x(i, j, k) = d != T(0) ? (b(i, j, k) + o) / d : T(0);
}

/// Gauss-Seidel update of cell (i, j, k) from its neighbours in x.
template <int D, class T>
DFLUID_HD DFLUID_FORCEINLINE void rb_update(const PoissonLevelView<T>& L, const View<const T>& b,
                                            const View<T>& x, int i, int j, int k) {
  rb_update_f<D>(L, b, x, FieldValues<T>{x.data}, i, j, k);
}

/// Neighbour values x + P xc (the piecewise-constant prolongation of the coarse correction,
/// xc at the cell's coarse parent; ratios 1 or 2 as shifts 0 or 1), for the first
/// post-smoothing sweep, which so needs no prolongation pass: it updates the black cells
/// from their red neighbours' corrected values, and the red sweep after it overwrites every
/// red cell without reading its old value. Each corrected value is the same float sum the
/// prolongation pass would have stored, so the V-cycle's result is bitwise unchanged.
template <class T>
struct ProlongedValues {
  const T* x;
  View<const T> xc;
  int s0, s1, s2;  ///< log2 of the coarsening ratio per axis
  DFLUID_HD DFLUID_FORCEINLINE T operator()(Index o, int i, int j, int k) const {
    return x[o] + xc(i >> s0, j >> s1, k >> s2);
  }
};

/// The first red half-sweep from x = 0 at red cell (i, j, k): b / d, reading no x (so the
/// level needs no fill: the black sweep that follows writes every black cell).
template <int D, class T>
DFLUID_HD DFLUID_FORCEINLINE void rb_first_red_update(const PoissonLevelView<T>& L,
                                                      const View<const T>& b, const View<T>& x,
                                                      int i, int j, int k) {
  const T d = poisson_diag<D>(L, i, j, k);
  x(i, j, k) = d != T(0) ? b(i, j, k) / d : T(0);
}

/// One past the last fine child of coarse index c (ratio r, nf fine cells).
DFLUID_HD inline int child_end(int c, int r, int nf) {
  return r * c + r < nf ? r * c + r : nf;
}

/// Coarse cell (I, J, K) of bc = R (bf - A xf): the sum of its children's residuals.
template <int D, class T>
DFLUID_HD DFLUID_FORCEINLINE void restrict_residual_cell(const PoissonLevelView<T>& Lf,
                                                         const View<const T>& bv,
                                                         const View<const T>& xv, int r0, int r1,
                                                         int r2, const View<T>& cv, int I, int J,
                                                         int K) {
  T s = T(0);
  for (int k = r2 * K; k < child_end(K, r2, Lf.n[2]); ++k)
    for (int j = r1 * J; j < child_end(J, r1, Lf.n[1]); ++j)
      for (int i = r0 * I; i < child_end(I, r0, Lf.n[0]); ++i) {
        T d, o;
        poisson_stencil<D>(Lf, xv, i, j, k, d, o);
        // Inert cells (d = 0) are outside the operator: smoothers pin them to 0,
        // so their rhs must not leak into the coarse level either (R = P^T).
        if (d != T(0)) s += bv(i, j, k) - (d * xv(i, j, k) - o);
      }
  cv(I, J, K) = s;
}

// ---- level kernels (cuda/pressure/poisson.cpp) ----
/// out = A x
template <class T>
void poisson_apply(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& x, Field<T>& out);
/// z = r / diag (0 where diag = 0)
template <class T>
void poisson_jacobi_precondition(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& r,
                                 Field<T>& z);
/// One Gauss-Seidel half sweep over the cells of one colour ((i+j+k)%2 == color), in place;
/// one launch over that colour's cells only.
template <class T>
void poisson_rb_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b, Field<T>& x,
                      int color);
/// The first post-smoothing (black) half sweep fused with the prolongation x += P xc: the
/// black cells are updated from their neighbours' corrected values (ProlongedValues); the
/// red cells keep their old values, which the red sweep that must follow overwrites unread.
template <class T>
void poisson_rb_prolong_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                              const Field<T>& xc, CoarsenRatio ratio, Field<T>& x);
/// The first red half sweep from x = 0 (rb_first_red_update), over the red cells: no fill.
template <class T>
void poisson_rb_first_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                            Field<T>& x);
/// One damped Jacobi sweep: out = x + omega * (b - A x) / diag.
template <class T>
void poisson_jacobi_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                          const Field<T>& x, Field<T>& out, T omega);
/// bc = R (bf - A xf): sums the fine residual over each coarse cell's children.
template <class T>
void poisson_restrict_residual(const Exec& ex, const PoissonLevelView<T>& Lf, const Field<T>& bf,
                               const Field<T>& xf, CoarsenRatio ratio, Field<T>& bc);
/// xf += P xc (piecewise constant): R = P^T, so the V-cycle stays symmetric.
template <class T>
void poisson_prolong_add(const Exec& ex, const Field<T>& xc, CoarsenRatio ratio, Field<T>& xf);
/// Level-0 weights of the faces normal to `axis` (0/1) from the grid and mask.
template <class T>
void poisson_fine_weights(const Exec& ex, const Grid& g, const Field<std::uint8_t>* mask, int axis,
                          Field<T>& w);
/// w *= fraction, face by face: the open fractions of a face-fraction obstacle
/// (dfluid/face_fractions.hpp) on top of the box's 0/1 rule.
template <class T>
void poisson_scale_weights(const Exec& ex, const Field<T>& fraction, Field<T>& w);
/// Coarse weights of axis `axis`: (1/ratio[axis]) * sum of the fine weights crossing
/// each coarse face. That is the rediscretization on the coarse cells (the plain
/// Galerkin sum of piecewise-constant aggregation is ratio times too stiff).
template <class T>
void poisson_coarse_weights(const Exec& ex, const PoissonLevelView<T>& Lf, int axis,
                            CoarsenRatio ratio, Field<T>& wc);

/// One multigrid level: its grid (dx doubles per level), weights and scratch.
template <class T>
struct PoissonLevel {
  Grid grid;
  std::array<Field<T>, 3> w;
  Field<T> x, b, t;          // correction, rhs, temporary (x, b unused on level 0)
  bool red_black_ok = true;  // false when a periodic axis has odd n (colours touch)
  CoarsenRatio ratio;        // relative to the next finer level (level 0: all 1)
  PoissonLevelView<T> view() const;
};

/// Number of V-cycle smoothing sweeps before and after the coarse correction.
constexpr int kPreSweeps = 2;

/// The V-cycle's launch sequence captured as a CUDA graph (GPU path; multigrid.cpp).
struct VcycleGraph;
struct VcycleGraphDeleter {
  void operator()(VcycleGraph* g) const;
};

/// The Poisson operator on a grid with obstacles, its multigrid hierarchy and
/// its null space. Built once; applying it allocates nothing.
template <class T>
class PoissonHierarchy {
 public:
  PoissonHierarchy() = default;
  /// `fractions` (optional, on g's faces): level-0 weights are the box's 0/1 rule times them
  /// (mask is then unused: the fractions describe the solid).
  PoissonHierarchy(const Context& ctx, const Grid& g, const Field<std::uint8_t>* mask,
                   const MacVelocity<T>* fractions = nullptr);

  const Grid& grid() const { return levels_[0].grid; }
  int num_levels() const { return int(levels_.size()); }
  const PoissonLevel<T>& level(int l) const { return levels_[l]; }
  /// out = A x on level 0 (scaled units).
  void apply(const Context& ctx, const Field<T>& x, Field<T>& out) const;
  /// z = M^-1 r for the chosen preconditioner (symmetric positive (semi-)definite).
  void precondition(const Context& ctx, Preconditioner p, const Field<T>& r, Field<T>& z);
  /// Symmetric V-cycle with zero initial guess. On the GPU path its launches are captured
  /// into a CUDA graph on the first call for a given (r, z) and replayed after that.
  void vcycle(const Context& ctx, const Field<T>& r, Field<T>& z);
  /// First level handled by the single-launch tail of the V-cycle (num_levels() if none).
  int tail_level() const { return tail_; }
  int floating_regions() const { return int(region_count_.size()); }
  /// Floating-region label per level-0 cell (-1 elsewhere) and cells per region, both in
  /// the context's memory space (empty when there is no floating region).
  View<const std::int32_t> region_labels() const;
  const double* region_counts() const { return region_count_dev_.data(); }

 private:
  std::vector<PoissonLevel<T>> levels_;
  Buffer<std::int32_t> region_;       // floating-region label per cell, -1 elsewhere
  std::vector<double> region_count_;  // cells per floating region
  Buffer<double> region_count_dev_;   // the same counts, in the context's memory space
  int tail_ = 0;                      // levels tail_.. run in one launch (vcycle_tail)
  std::unique_ptr<VcycleGraph, VcycleGraphDeleter> graph_;

  void vcycle_launches(const Exec& ex, const Field<T>& r, Field<T>& z);
};

}  // namespace dfluid::detail
