// PressureSolver: divergence -> MGPCG Poisson solve -> gradient subtraction
// (conventions in dfluid/projection.hpp).
//
// Internally the solve runs in "scaled" units: A_s = dx^2 A (face weights 0/1,
// cell diagonal = number of free faces) and b_s = dx^2 D F u = dx * (sum of
// outward free-face fluxes). Then x is the same in both systems, and residuals
// are reported divided by dx^2 (back in divergence units).
#include "dfluid/projection.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "core/finite_flags.hpp"
#include "dfluid/field_ops.hpp"
#include "pressure/krylov.hpp"
#include "pressure/poisson.hpp"
#include "pressure/projection_detail.hpp"

namespace dfluid {
namespace detail {
namespace {

/// The Inflow (and ConvectiveOutflow) sides of a grid: their normal faces are fixed (weight
/// 0, like a wall's) but hold the velocity the Simulation wrote (the inflow profile, the
/// convective update) instead of 0 (see dfluid/projection.hpp).
struct InflowSides {
  bool side[3][2] = {{false, false}, {false, false}, {false, false}};
  bool any = false;
};

inline InflowSides inflow_sides(const Grid& g) {
  InflowSides s;
  for (int a = 0; a < g.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      s.side[a][side] = boundary_holds_flux(g.boundary[a][side]);
      s.any = s.any || s.side[a][side];
    }
  return s;
}

/// A warm start x0 for A x = b, scaled by alpha = (b . x0) / (x0 . A x0): the multiple of x0
/// closest to the solution in A's energy norm, so the scaled start is never further from it
/// than a cold start (alpha = 0 when x0 is 0 or b says nothing in its direction). Without it a
/// start from the previous step's adjoint pressure could sit far above a right-hand side that
/// happens to be tiny (a cotangent that is nearly divergence-free), and a tolerance relative to
/// |b| would then be out of reach. `ax` holds A x0 (pcg forms A of the scaled start itself);
/// `alpha` is one double in the context's memory space. One reduction, finished on the device
/// (no host wait), and one pass.
template <class T>
void scale_warm_start(const Exec& ex, const Field<T>& b, Field<T>& x, const Field<T>& ax,
                      double* alpha) {
  View<const T> bv = b.view(), xv = static_cast<const Field<T>&>(x).view(), av = ax.view();
  multi_reduce_into<2>(
      ex, x.extents(),
      DFLUID_LAMBDA(int i, int j, int k, double* v) {
        const double xi = xv(i, j, k);
        v[0] = double(bv(i, j, k)) * xi;
        v[1] = xi * double(av(i, j, k));
      },
      DFLUID_LAMBDA(const double* out) { alpha[0] = out[1] > 0 ? out[0] / out[1] : 0.0; });
  View<T> xw = x.view();
  const double* a = alpha;
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) { xw(i, j, k) *= T(a[0]); });
}

/// rhs = dx * sum_faces (+-) w u  (= dx^2 D F u); with `inflow`, the faces of the Inflow
/// sides count too (= dx^2 D (F + E) u): the prescribed inflow is part of the divergence.
/// With `indicator`, each face counts with 1 where its weight is non-zero instead of the
/// weight (= dx^2 D F u): the adjoint's right-hand side under face fractions (the same for
/// 0/1 weights).
template <class T>
void projection_rhs(const Exec& ex, const PoissonLevelView<T>& L, const MacViews<T>& m, T dx,
                    Field<T>& rhs, InflowSides inflow = {}, bool indicator = false) {
  View<T> rv = rhs.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        T s = T(0);
        const int idx[3] = {i, j, k};
        for (int a = 0; a < 3; ++a) {
          if (a >= L.dim) break;
          int c[3] = {i, j, k};
          // A box-side face of an Inflow side has weight 0 in L.w; it enters with weight 1.
          T wl = (inflow.side[a][0] && idx[a] == 0) ? T(1) : L.w[a](i, j, k);
          if (indicator && wl != T(0)) wl = T(1);
          s -= wl * m.c[a](i, j, k);
          c[a] = (c[a] + 1 == L.n[a] && L.per[a]) ? 0 : c[a] + 1;
          T wh = (inflow.side[a][1] && idx[a] + 1 == L.n[a]) ? T(1) : L.w[a](c[0], c[1], c[2]);
          if (indicator && wh != T(0)) wh = T(1);
          s += wh * m.c[a](c[0], c[1], c[2]);
        }
        rv(i, j, k) = dx * s;
      });
}

/// x(right cell) - x(left cell) across the face (i, j, k) normal to `axis` (n cells along it):
/// x = 0 beyond an Open side, periodic wrap. The gradient of the projection's update.
template <class T>
DFLUID_HD inline T face_difference(View<const T> xv, int n, bool per, int axis, int i, int j,
                                   int k) {
  int c[3] = {i, j, k};
  const int f = c[axis];
  const T xr = f < n ? xv(i, j, k) : T(0);
  int l = f - 1;
  if (l < 0) l = per ? n - 1 : -1;
  T xl = T(0);
  if (l >= 0) {
    c[axis] = l;
    xl = xv(c[0], c[1], c[2]);
  }
  return xr - xl;
}

/// u <- F (u + grad x) on the faces normal to `axis`; x = 0 beyond an Open side. Faces of
/// an Inflow side: kept as they are (`inflow_gradient` false: the forward, which holds the
/// prescribed inflow), or given u + grad x like a free face (true: the adjoint, whose
/// cotangent of the inflow values is (u - D^T x) there, see project_adjoint). With
/// `weighted` (the adjoint under face fractions) a free face gets u + w grad x (w = 1 on
/// the staircase: the same).
template <class T>
void projection_subtract_gradient(const Exec& ex, const PoissonLevelView<T>& L, int axis,
                                  const Field<T>& x, T inv_dx, Field<T>& u, InflowSides inflow = {},
                                  bool inflow_gradient = false, bool weighted = false) {
  View<const T> xv = x.view();
  View<const T> wv = L.w[axis];
  View<T> uv = u.view();
  const int n = L.n[axis];
  const bool per = L.per[axis];
  const bool in_lo = inflow.side[axis][0], in_hi = inflow.side[axis][1];
  for_each_cell(
      ex, u.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        int c[3] = {i, j, k};
        const int f = c[axis];
        if (wv(i, j, k) == T(0)) {
          const bool on_inflow = (in_lo && f == 0) || (in_hi && f == n);
          if (!on_inflow) {
            uv(i, j, k) = T(0);
            return;
          }
          if (!inflow_gradient) return;
        } else if (weighted) {
          uv(i, j, k) += wv(i, j, k) * face_difference(xv, n, per, axis, i, j, k) * inv_dx;
          return;
        }
        uv(i, j, k) += face_difference(xv, n, per, axis, i, j, k) * inv_dx;
      });
}

/// The closed fraction 1 - w of face (i, j, k) normal to an axis with n cells (f: its index
/// along it): the solid's part of a face between two cells (periodic wrap included); 0 on a
/// box side (the box's own wall or opening, not the body).
template <class T>
DFLUID_HD inline T closed_fraction(View<const T> wv, int n, bool per, int f, int i, int j, int k) {
  if (!per && (f == 0 || f == n)) return T(0);
  return T(1) - wv(i, j, k);
}

/// rhs += dx * sum_faces (+-) (1 - w) U (= dx^2 D (1 - W) U): the flux a moving solid's
/// closed face parts push into each cell (face fractions). Cells with no open face (inside
/// the body) have no fluid to constrain: nothing is added there (their x stays 0).
template <class T>
void add_solid_flux(const Exec& ex, const PoissonLevelView<T>& L, const MacViews<T>& m, T dx,
                    Field<T>& rhs) {
  View<T> rv = rhs.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        if (poisson_diag(L, i, j, k) == T(0)) return;
        T s = T(0);
        const int idx[3] = {i, j, k};
        for (int a = 0; a < 3; ++a) {
          if (a >= L.dim) break;
          int c[3] = {i, j, k};
          s -= closed_fraction(L.w[a], L.n[a], L.per[a], idx[a], i, j, k) * m.c[a](i, j, k);
          const int fh = idx[a] + 1 == L.n[a] && L.per[a] ? 0 : idx[a] + 1;
          c[a] = fh;
          s += closed_fraction(L.w[a], L.n[a], L.per[a], fh, c[0], c[1], c[2]) *
               m.c[a](c[0], c[1], c[2]);
        }
        rv(i, j, k) += dx * s;
      });
}

/// grad_U += (1 - w) grad x on the faces normal to `axis`: the transpose of add_solid_flux
/// followed by the solve and the gradient step, -(1 - W) D^T y with y = x.
template <class T>
void add_solid_gradient(const Exec& ex, const PoissonLevelView<T>& L, int axis, const Field<T>& x,
                        T inv_dx, Field<T>& grad_solid) {
  View<const T> xv = x.view();
  View<const T> wv = L.w[axis];
  View<T> gv = grad_solid.view();
  const int n = L.n[axis];
  const bool per = L.per[axis];
  for_each_cell(
      ex, grad_solid.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const int c[3] = {i, j, k};
        const T closed = closed_fraction(wv, n, per, c[axis], i, j, k);
        if (closed != T(0))
          gv(i, j, k) += closed * face_difference(xv, n, per, axis, i, j, k) * inv_dx;
      });
}

/// u += scale_over_dx * (p_r - p_l) on the free faces normal to `axis` (p = 0 beyond an Open
/// side, periodic wrap); held faces keep their values. The pressure-gradient step of the
/// incremental pressure correction.
template <class T>
void add_gradient_on_free_faces(const Exec& ex, const PoissonLevelView<T>& L, int axis,
                                const Field<T>& p, T scale_over_dx, Field<T>& u) {
  View<const T> pv = p.view();
  View<const T> wv = L.w[axis];
  View<T> uv = u.view();
  const int n = L.n[axis];
  const bool per = L.per[axis];
  for_each_cell(
      ex, u.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (wv(i, j, k) == T(0)) return;
        uv(i, j, k) += scale_over_dx * face_difference(pv, n, per, axis, i, j, k);
      });
}

/// Its transpose, gathered per cell (no scatter, deterministic): grad_p(c) +=
/// scale_over_dx * sum over the axes of (g on c's low face - g on c's high face), free
/// faces only. In cells next to an Open side the face beyond p = 0 still contributes to the
/// cell inside.
template <class T>
void add_gradient_on_free_faces_adjoint(const Exec& ex, const PoissonLevelView<T>& L,
                                        const MacViews<T>& g, T scale_over_dx, Field<T>& grad_p) {
  View<T> gp = grad_p.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        T s = T(0);
        for (int a = 0; a < 3; ++a) {
          if (a >= L.dim) break;
          // low face: index i along a (its right cell is this one: +1)
          if (L.w[a](i, j, k) != T(0)) s += g.c[a](i, j, k);
          // high face: index i + 1 (periodic: 0); its left cell is this one: -1
          int c[3] = {i, j, k};
          c[a] = (c[a] + 1 == L.n[a] && L.per[a]) ? 0 : c[a] + 1;
          if (L.w[a](c[0], c[1], c[2]) != T(0)) s -= g.c[a](c[0], c[1], c[2]);
        }
        gp(i, j, k) += scale_over_dx * s;
      });
}

/// dst = s * src on cells with free faces, 0 on inert cells (src may alias dst).
template <class T>
void masked_scale(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& src, T s,
                  Field<T>& dst) {
  View<const T> sv = src.view();
  View<T> dv = dst.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        dv(i, j, k) = poisson_diag(L, i, j, k) != T(0) ? s * sv(i, j, k) : T(0);
      });
}

/// Runs a solve and reports the pending finiteness checks (flag_nonfinite) after it: the
/// solve ends with a host wait (its convergence and residual reads) that follows them, so
/// reading their bytes costs nothing. On the solve's own NonFiniteValue or
/// SolverNotConverged (thrown after such a read) a flagged input is reported instead: it is
/// the cause.
template <class F>
SolveReport run_and_report_checks(const Context& ctx, F&& run) {
  SolveReport rep;
  try {
    rep = run();
  } catch (const NonFiniteValue&) {
    raise_flagged(ctx);
    throw;
  } catch (const SolverNotConverged&) {
    raise_flagged(ctx);
    throw;
  }
  raise_flagged(ctx);
  return rep;
}

/// Sum of the face velocities (sign 0) or of their magnitudes (sign 1) on side (axis, side)
/// of u[axis]: a host wait.
template <class T>
double side_face_sum(const Context& ctx, const Field<T>& f, int axis, int side, bool magnitude) {
  std::array<int, 3> e = f.extents();
  const int face = side ? e[axis] - 1 : 0;
  e[axis] = 1;
  View<const T> uv = f.view();
  const int ax = axis;
  return sum_cells(
      exec_of(ctx), e, DFLUID_LAMBDA(int i, int j, int k)->double {
        int c[3] = {i, j, k};
        c[ax] = face;
        const double v = double(uv(c[0], c[1], c[2]));
        return magnitude ? (v < 0 ? -v : v) : v;
      });
}

/// A closed box (no Open/Outflow side) holding a net inflow through its Inflow (and
/// ConvectiveOutflow) sides has no
/// divergence-free projection: the Poisson problem is incompatible and the solve would remove
/// the mean divergence silently. Throws InvalidArgument naming the sides, their fluxes and
/// the fix (as VelocityBoundary::validate does for a Simulation). Two host waits per Inflow
/// side; nothing on other grids.
template <class T>
void check_inflow_balance(const Context& ctx, const MacVelocity<T>& u, const Grid& g) {
  if (!g.pressure_has_null_space()) return;
  double net = 0, scale = 0;
  std::string sides;
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s) {
      // Inflow and ConvectiveOutflow sides hold their normal faces and count in the balance.
      if (!boundary_holds_flux(g.boundary[a][s])) continue;
      // +axis velocity enters through a low side and leaves through a high side.
      const double flux = (s == 0 ? 1 : -1) * side_face_sum(ctx, u[a], a, s, false);
      net += flux;
      scale += side_face_sum(ctx, u[a], a, s, true);
      sides += (sides.empty() ? "" : ", ") + side_name(a, s) + " (" + std::to_string(flux) + ")";
    }
  // The tolerance of VelocityBoundary::validate, or a few float roundings of the sum.
  const double tol = std::max(1e-9, 64.0 * double(std::numeric_limits<T>::epsilon()));
  if (std::abs(net) > tol * scale)
    throw InvalidArgument(
        "PressureSolver::project: net inflow " + std::to_string(net) +
        " (sum of the held faces' velocities into the box) through a closed box (no open or "
        "outflow side), inflow and convective-outflow sides " +
        sides +
        ": an incompressible flow cannot enter a closed box; balance the Inflow faces of u or "
        "make a side BoundaryKind::Outflow or Open");
}

}  // namespace
}  // namespace detail

template <class T>
struct PressureSolver<T>::Impl {
  detail::PoissonHierarchy<T> hier;
  detail::KrylovWorkspace<T> ws;
  Field<T> rhs, x;         // scaled right-hand side; solution in project()
  bool fractions = false;  // built with open fractions (dfluid/face_fractions.hpp)

  Impl(const Context& ctx, const Grid& g, const ObstacleMask* m,
       const MacVelocity<T>* open = nullptr)
      : hier(ctx, g, m, open),
        ws(ctx, g, Location::Cell, hier.floating_regions()),
        rhs(ctx, g),
        x(ctx, g),
        fractions(open != nullptr) {}

  /// PCG on A_s x = rhs (already scaled); report residuals divided by dx^2.
  SolveReport run(const Context& ctx, Field<T>& sol, const SolverOptions& opt, const char* what) {
    const double dx2 = hier.grid().dx * hier.grid().dx;
    SolverOptions o = opt;
    o.abs_tol = opt.abs_tol * dx2;
    const Preconditioner pc = opt.preconditioner;
    auto A = [&](const Field<T>& in, Field<T>& out) { hier.apply(ctx, in, out); };
    auto M = [&](const Field<T>& r, Field<T>& z) { hier.precondition(ctx, pc, r, z); };
    detail::NullSpace ns;
    ns.regions = hier.floating_regions();
    ns.label = hier.region_labels();
    ns.counts = hier.region_counts();
    // Residuals are reported in physical units (divided by dx^2).
    return detail::pcg(ctx, A, M, rhs, sol, o, ws, what, ns, 1 / dx2);
  }
};

template <class T>
PressureSolver<T>::PressureSolver(const Context& ctx, const Grid& grid,
                                  const ObstacleMask* obstacles) {
  grid.validate();
  detail::check_obstacles(ctx, obstacles, grid, "PressureSolver");
  impl_ = std::make_unique<Impl>(ctx, grid, obstacles);
}

template <class T>
PressureSolver<T>::PressureSolver(const Context& ctx, const Grid& grid,
                                  const MacVelocity<T>& open_fractions) {
  grid.validate();
  detail::check_velocity(ctx, open_fractions, grid, "PressureSolver: open_fractions");
  // Weights outside [0, 1] would break the operator's definiteness (negative) or its meaning.
  static const char* axis[3] = {"x", "y", "z"};
  for (int a = 0; a < grid.dim; ++a)
    for (T v : open_fractions[a].to_vector(ctx))
      if (!(v >= T(0) && v <= T(1)))
        throw InvalidArgument(std::string("PressureSolver: open_fractions[") + axis[a] +
                              "] holds " + std::to_string(double(v)) +
                              ": open fractions must lie in [0, 1] (face_open_fractions)");
  impl_ = std::make_unique<Impl>(ctx, grid, nullptr, &open_fractions);
}

template <class T>
bool PressureSolver<T>::face_fractions() const {
  return impl_->fractions;
}

template <class T>
void PressureSolver<T>::divergence_weighted(const Context& ctx, const MacVelocity<T>& u,
                                            Field<T>& div) const {
  const Grid& g = grid();
  detail::check_velocity(ctx, u, g, "divergence_weighted");
  check::on_grid(div, "divergence_weighted: div", g, Location::Cell);
  check::accessible(ctx, div, "divergence_weighted: div");
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  detail::projection_rhs(ex, L, detail::mac_views(u), T(g.dx), div, detail::inflow_sides(g));
  scale(ctx, div, T(1 / (g.dx * g.dx)));  // rhs is dx^2 D W u
}

template <class T>
void PressureSolver<T>::add_divergence_transpose(const Context& ctx, const Field<T>& y, T scale,
                                                 MacVelocity<T>& grad_u) const {
  const Grid& g = grid();
  detail::check_velocity(ctx, grad_u, g, "add_divergence_transpose");
  check::on_grid(y, "add_divergence_transpose: y", g, Location::Cell);
  check::accessible(ctx, y, "add_divergence_transpose: y");
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  const detail::InflowSides inflow = detail::inflow_sides(g);
  View<const T> yv = y.view();
  const T s = scale / T(g.dx);
  for (int a = 0; a < g.dim; ++a) {
    View<const T> wv = L.w[a];
    View<T> gv = grad_u[a].view();
    const int n = g.n[a];
    const bool per = L.per[a];
    const bool in_lo = inflow.side[a][0], in_hi = inflow.side[a][1];
    // The face's weight in divergence_weighted (projection_rhs): w, or 1 on an Inflow side;
    // (D^T y) on a face is y_below - y_above = -face_difference.
    detail::for_each_cell(
        ex, grad_u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const int c[3] = {i, j, k};
          const int f = c[a];
          T w = wv(i, j, k);
          if ((in_lo && f == 0) || (in_hi && f == n)) w = T(1);
          if (w == T(0)) return;
          gv(i, j, k) -= s * w * detail::face_difference(yv, n, per, a, i, j, k);
        });
  }
}

template <class T>
PressureSolver<T>::~PressureSolver() = default;
template <class T>
PressureSolver<T>::PressureSolver(PressureSolver&&) noexcept = default;
template <class T>
PressureSolver<T>& PressureSolver<T>::operator=(PressureSolver&&) noexcept = default;

template <class T>
const Grid& PressureSolver<T>::grid() const {
  return impl_->hier.grid();
}
template <class T>
int PressureSolver<T>::multigrid_levels() const {
  return impl_->hier.num_levels();
}
template <class T>
int PressureSolver<T>::floating_regions() const {
  return impl_->hier.floating_regions();
}

template <class T>
SolveReport PressureSolver<T>::project_impl(const Context& ctx, MacVelocity<T>& u,
                                            Field<T>& pressure, T dt, const SolverOptions& options,
                                            bool check_inflow, const MacVelocity<T>* solid) {
  const char* what = "PressureSolver::project";
  const Grid& g = grid();
  check::positive_dt(double(dt), "project: dt");
  validate(options, what);
  detail::check_velocity(ctx, u, g, "project");
  check::on_grid(pressure, "project: pressure", g, Location::Cell);
  check::accessible(ctx, pressure, "project: pressure");
  static const char* names[3] = {"project: u[x]", "project: u[y]", "project: u[z]"};
  // Checked on the device, reported after the solve's convergence read (no host wait).
  for (int a = 0; a < g.dim; ++a)
    detail::flag_nonfinite(ctx, u[a], names[a], detail::kFlagProjectVelocity);
  if (options.warm_start)
    detail::flag_nonfinite(ctx, pressure, "project: pressure (warm start)", detail::kFlagPlain);

  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  const detail::InflowSides inflow = detail::inflow_sides(g);
  if (inflow.any && check_inflow) detail::check_inflow_balance(ctx, u, g);
  detail::projection_rhs(ex, L, detail::mac_views(u), T(g.dx), impl_->rhs, inflow);
  if (solid) detail::add_solid_flux(ex, L, detail::mac_views(*solid), T(g.dx), impl_->rhs);
  if (options.warm_start) detail::masked_scale(ex, L, pressure, -dt, impl_->x);  // x = -dt p
  const SolveReport rep =
      detail::run_and_report_checks(ctx, [&] { return impl_->run(ctx, impl_->x, options, what); });
  for (int a = 0; a < g.dim; ++a)
    detail::projection_subtract_gradient(ex, L, a, impl_->x, T(1 / g.dx), u[a], inflow);
  detail::masked_scale(ex, L, impl_->x, T(-1) / dt, pressure);  // p = -x / dt
  return rep;
}

// The projection is u_new = P u with P = F - F D^T A^+ D F: symmetric, so its
// adjoint is the same map applied to the cotangent. With Inflow sides (faces E, which
// the forward keeps and counts in the divergence) it is P = F + E - F D^T A^+ D (F + E),
// whose transpose F + E - (F + E) D^T A^+ D F is the same solve with E treated as free
// faces in the gradient step only: the cotangent of the inflow values is (g - D^T x) on E. The
// solve starts from zero (never warm), so the gradient does not depend on which pressure happened
// to be in the state; float right-hand sides far from 1 are rescaled inside pcg, so tiny cotangents
// do not underflow. The pressure output is a by-product (and the forward's warm start changes u_new
// only within the solver tolerance), so it carries no cotangent.
template <class T>
SolveReport PressureSolver<T>::project_adjoint(const Context& ctx, MacVelocity<T>& grad_u,
                                               const SolverOptions& options) {
  return project_adjoint_impl(ctx, grad_u, options, nullptr);
}

template <class T>
SolveReport PressureSolver<T>::project_adjoint(const Context& ctx, MacVelocity<T>& grad_u,
                                               Field<T>& adjoint_pressure,
                                               const SolverOptions& options) {
  check::on_grid(adjoint_pressure, "project_adjoint: adjoint_pressure", grid(), Location::Cell);
  check::accessible(ctx, adjoint_pressure, "project_adjoint: adjoint_pressure");
  return project_adjoint_impl(ctx, grad_u, options, nullptr, &adjoint_pressure);
}

template <class T>
void PressureSolver<T>::add_solid_divergence_transpose(const Context& ctx, const Field<T>& y,
                                                       T scale, MacVelocity<T>& grad_solid) const {
  check_moving_solid(ctx, grad_solid, "add_solid_divergence_transpose: grad_solid");
  check::on_grid(y, "add_solid_divergence_transpose: y", grid(), Location::Cell);
  check::accessible(ctx, y, "add_solid_divergence_transpose: y");
  // add_solid_gradient adds (1 - w) (y_above - y_below) * its factor: -scale / dx.
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  for (int a = 0; a < grid().dim; ++a)
    detail::add_solid_gradient(detail::exec_of(ctx), L, a, y, T(-scale / grid().dx), grad_solid[a]);
}

template <class T>
SolveReport PressureSolver<T>::project_moving_solid(const Context& ctx, MacVelocity<T>& u,
                                                    const MacVelocity<T>& solid_velocity,
                                                    Field<T>& pressure, T dt,
                                                    const SolverOptions& options) {
  check_moving_solid(ctx, solid_velocity, "project_moving_solid: solid_velocity");
  return project_impl(ctx, u, pressure, dt, options, true, &solid_velocity);
}

template <class T>
SolveReport PressureSolver<T>::project_moving_solid_adjoint(const Context& ctx,
                                                            MacVelocity<T>& grad_u,
                                                            MacVelocity<T>& grad_solid_velocity,
                                                            const SolverOptions& options) {
  check_moving_solid(ctx, grad_solid_velocity, "project_moving_solid_adjoint: grad_solid_velocity");
  return project_adjoint_impl(ctx, grad_u, options, &grad_solid_velocity);
}

template <class T>
void PressureSolver<T>::check_moving_solid(const Context& ctx, const MacVelocity<T>& v,
                                           const char* what) const {
  if (!impl_->fractions)
    throw InvalidArgument(std::string(what) +
                          ": a moving solid needs a solver built with open fractions "
                          "(PressureSolver(ctx, grid, open_fractions)); the staircase holds its "
                          "wall faces at 0");
  detail::check_velocity(ctx, v, grid(), what);
}

template <class T>
SolveReport PressureSolver<T>::project_adjoint_impl(const Context& ctx, MacVelocity<T>& grad_u,
                                                    const SolverOptions& options,
                                                    MacVelocity<T>* grad_solid,
                                                    Field<T>* adjoint_pressure) {
  const char* what = "PressureSolver::project_adjoint";
  const Grid& g = grid();
  validate(options, what);
  detail::check_velocity(ctx, grad_u, g, "project_adjoint");
  static const char* names[3] = {"project_adjoint: grad_u[x]", "project_adjoint: grad_u[y]",
                                 "project_adjoint: grad_u[z]"};
  for (int a = 0; a < g.dim; ++a)  // reported after the solve's convergence read
    detail::flag_nonfinite(ctx, grad_u[a], names[a], detail::kFlagPlain);
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  // Under face fractions the transpose's right-hand side is D F g (unweighted) and its
  // gradient step W D^T y (the projection.hpp header); on 0/1 weights both are the forward's.
  const bool w = impl_->fractions;
  detail::projection_rhs(ex, L, detail::mac_views(grad_u), T(g.dx), impl_->rhs, {}, w);
  // Cold unless the caller keeps the adjoint pressure to start from (the overload above).
  SolverOptions start = options;
  start.warm_start = options.warm_start && adjoint_pressure;
  if (start.warm_start) {
    detail::flag_nonfinite(ctx, *adjoint_pressure, "project_adjoint: adjoint_pressure (warm start)",
                           detail::kFlagPlain);
    detail::masked_scale(ex, L, *adjoint_pressure, T(1), impl_->x);
    // The solver's scalars are free until pcg sets them up: one holds alpha meanwhile.
    impl_->hier.apply(ctx, impl_->x, impl_->ws.q);
    detail::scale_warm_start(ex, impl_->rhs, impl_->x, impl_->ws.q, impl_->ws.scalars.data());
  }
  const SolveReport rep =
      detail::run_and_report_checks(ctx, [&] { return impl_->run(ctx, impl_->x, start, what); });
  if (adjoint_pressure) copy(ctx, impl_->x, *adjoint_pressure);
  const detail::InflowSides inflow = detail::inflow_sides(g);
  for (int a = 0; a < g.dim; ++a)
    detail::projection_subtract_gradient(ex, L, a, impl_->x, T(1 / g.dx), grad_u[a], inflow, true,
                                         w);
  if (grad_solid)  // u_new's dependence on U: -F D^T A^+ D (1 - W); transposed, (1 - W) grad y
    for (int a = 0; a < g.dim; ++a)
      detail::add_solid_gradient(ex, L, a, impl_->x, T(1 / g.dx), (*grad_solid)[a]);
  return rep;
}

template <class T>
SolveReport PressureSolver<T>::solve(const Context& ctx, const Field<T>& rhs, Field<T>& x,
                                     const SolverOptions& options) {
  const char* what = "PressureSolver::solve";
  const Grid& g = grid();
  validate(options, what);
  check::on_grid(rhs, "solve: rhs", g, Location::Cell);
  check::on_grid(x, "solve: x", g, Location::Cell);
  check::accessible(ctx, rhs, "solve: rhs");
  check::accessible(ctx, x, "solve: x");
  detail::flag_nonfinite(ctx, rhs, "solve: rhs", detail::kFlagPlain);  // reported after the solve
  if (options.warm_start)
    detail::flag_nonfinite(ctx, x, "solve: x (warm start)", detail::kFlagPlain);
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  detail::masked_scale(ex, L, rhs, T(g.dx * g.dx), impl_->rhs);
  if (options.warm_start) detail::masked_scale(ex, L, x, T(1), x);
  return detail::run_and_report_checks(ctx, [&] { return impl_->run(ctx, x, options, what); });
}

template <class T>
void PressureSolver<T>::apply(const Context& ctx, const Field<T>& x, Field<T>& out) const {
  const Grid& g = grid();
  check::on_grid(x, "apply: x", g, Location::Cell);
  check::on_grid(out, "apply: out", g, Location::Cell);
  check::accessible(ctx, x, "apply: x");
  check::accessible(ctx, out, "apply: out");
  if (x.data() == out.data()) throw InvalidArgument("apply: x and out must not alias");
  impl_->hier.apply(ctx, x, out);
  scale(ctx, out, T(1 / (g.dx * g.dx)));
}

template <class T>
void PressureSolver<T>::precondition(const Context& ctx, const Field<T>& r, Field<T>& z,
                                     Preconditioner p) {
  const Grid& g = grid();
  check::on_grid(r, "precondition: r", g, Location::Cell);
  check::on_grid(z, "precondition: z", g, Location::Cell);
  check::accessible(ctx, r, "precondition: r");
  check::accessible(ctx, z, "precondition: z");
  if (r.data() == z.data()) throw InvalidArgument("precondition: r and z must not alias");
  impl_->hier.precondition(ctx, p, r, z);
  scale(ctx, z, T(g.dx * g.dx));  // M^-1 approximates A_s^-1 = A^-1 / dx^2
}

template <class T>
void PressureSolver<T>::add_pressure_gradient(const Context& ctx, const Field<T>& p, T scale,
                                              MacVelocity<T>& u) const {
  const Grid& g = grid();
  detail::check_velocity(ctx, u, g, "add_pressure_gradient");
  check::on_grid(p, "add_pressure_gradient: p", g, Location::Cell);
  check::accessible(ctx, p, "add_pressure_gradient: p");
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  for (int a = 0; a < g.dim; ++a)
    detail::add_gradient_on_free_faces(ex, L, a, p, scale / T(g.dx), u[a]);
}

template <class T>
void PressureSolver<T>::add_pressure_gradient_adjoint(const Context& ctx,
                                                      const MacVelocity<T>& grad_u, T scale,
                                                      Field<T>& grad_p) const {
  const Grid& g = grid();
  detail::check_velocity(ctx, grad_u, g, "add_pressure_gradient_adjoint");
  check::on_grid(grad_p, "add_pressure_gradient_adjoint: grad_p", g, Location::Cell);
  check::accessible(ctx, grad_p, "add_pressure_gradient_adjoint: grad_p");
  const detail::Exec ex = detail::exec_of(ctx);
  const detail::PoissonLevelView<T> L = impl_->hier.level(0).view();
  detail::add_gradient_on_free_faces_adjoint(ex, L, detail::mac_views(grad_u), scale / T(g.dx),
                                             grad_p);
}

template <class T>
void PressureSolver<T>::zero_fixed_faces(const Context& ctx, MacVelocity<T>& u) const {
  const Grid& g = grid();
  detail::check_velocity(ctx, u, g, "zero_fixed_faces");
  const detail::Exec ex = detail::exec_of(ctx);
  for (int a = 0; a < g.dim; ++a) {
    View<const T> wv = impl_->hier.level(0).w[a].view();
    View<T> uv = u[a].view();
    detail::for_each_cell(
        ex, u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          if (wv(i, j, k) == T(0)) uv(i, j, k) = T(0);
        });
  }
}

template <class T>
SolveReport PressureSolver<T>::project(const Context& ctx, MacVelocity<T>& u, Field<T>& pressure,
                                       T dt, const SolverOptions& options) {
  return project_impl(ctx, u, pressure, dt, options, true);
}

template class PressureSolver<float>;
template class PressureSolver<double>;

}  // namespace dfluid
