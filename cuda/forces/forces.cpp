// Forces and sources (see dfluid/forces.hpp).
#include "dfluid/forces.hpp"

#include <cmath>
#include <string>

#include "core/exec.hpp"
#include "dfluid/memory.hpp"

namespace dfluid {

namespace detail::forces {

/// What a face normal to `axis` needs to know about its two cells.
struct FaceAxis {
  int axis = 0;
  int n = 1;  ///< cells along axis
  bool periodic = false;
  bool wall[2] = {false, false};  ///< low / high side is a Wall
};

inline FaceAxis face_axis(const Grid& g, int axis) {
  FaceAxis fa;
  fa.axis = axis;
  fa.n = g.n[axis];
  fa.periodic = g.periodic(axis);
  for (int side = 0; side < 2; ++side)
    fa.wall[side] = boundary_is_closed(g.boundary[axis][side]);
  return fa;
}

/// The cells below (lo) and above (hi) face index f along fa.axis, with their
/// sampling weights: 1/2 each between two cells (wrapping on a periodic axis),
/// 1 for the single cell next to an Open boundary face, 0 on a Wall boundary face.
struct FaceCells {
  int lo, hi;
  double w_lo, w_hi;
};

DFLUID_HD DFLUID_FORCEINLINE FaceCells face_cells(const FaceAxis& fa, int f) {
  FaceCells c{f - 1, f, 0.5, 0.5};
  if (fa.periodic) {
    if (c.lo < 0) c.lo += fa.n;
    return c;
  }
  if (f == 0) {
    c.lo = 0;
    c.w_lo = 0;
    c.w_hi = fa.wall[0] ? 0.0 : 1.0;
  } else if (f == fa.n) {
    c.hi = fa.n - 1;
    c.w_hi = 0;
    c.w_lo = fa.wall[1] ? 0.0 : 1.0;
  }
  return c;
}

/// Component `axis` of (i, j, k), and (i, j, k) with that component replaced by v: selects
/// instead of a runtime-indexed int[3], which a GPU would keep in local memory.
DFLUID_HD DFLUID_FORCEINLINE int component(int axis, int i, int j, int k) {
  return axis == 0 ? i : (axis == 1 ? j : k);
}
DFLUID_HD DFLUID_FORCEINLINE void with_component(int axis, int v, int& i, int& j, int& k) {
  i = axis == 0 ? v : i;
  j = axis == 1 ? v : j;
  k = axis == 2 ? v : k;
}

/// True when one of the (existing) cells next to face (i, j, k) normal to fa.axis is solid.
/// solid.data == nullptr means no obstacles.
DFLUID_HD DFLUID_FORCEINLINE bool face_touches_solid(View<const std::uint8_t> solid,
                                                     const FaceAxis& fa, int i, int j, int k) {
  if (!solid.data) return false;
  const int f = component(fa.axis, i, j, k);
  int lo = f - 1, hi = f;
  if (fa.periodic && lo < 0) lo += fa.n;
  if (lo >= 0) {
    int a = i, b = j, c = k;
    with_component(fa.axis, lo, a, b, c);
    if (solid(a, b, c)) return true;
  }
  if (hi < fa.n) {
    int a = i, b = j, c = k;
    with_component(fa.axis, hi, a, b, c);
    if (solid(a, b, c)) return true;
  }
  return false;
}

/// The scalar sampled at face (i, j, k) normal to fa.axis (see add_buoyancy). Linear in s.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T sample_at_face(View<const T> s, const FaceAxis& fa, int i, int j,
                                              int k) {
  const FaceCells c = face_cells(fa, component(fa.axis, i, j, k));
  int li = i, lj = j, lk = k, hi = i, hj = j, hk = k;
  with_component(fa.axis, c.lo, li, lj, lk);
  with_component(fa.axis, c.hi, hi, hj, hk);
  T v = 0;
  if (c.w_lo != 0) v += T(c.w_lo) * s(li, lj, lk);
  if (c.w_hi != 0) v += T(c.w_hi) * s(hi, hj, hk);
  return v;
}

/// True for a boundary face (index f along fa.axis) on a Wall side.
DFLUID_HD DFLUID_FORCEINLINE bool wall_face(const FaceAxis& fa, int f) {
  return !fa.periodic && ((f == 0 && fa.wall[0]) || (f == fa.n && fa.wall[1]));
}

template <class T>
View<const std::uint8_t> obstacle_view(const Context& ctx, const ObstacleMask* obstacles,
                                       const Grid& g, const char* fn) {
  if (!obstacles) return View<const std::uint8_t>{};
  check::on_grid(*obstacles, (std::string(fn) + ": obstacles").c_str(), g, Location::Cell);
  check::accessible(ctx, *obstacles, (std::string(fn) + ": obstacles").c_str());
  return obstacles->view();
}

template <class T>
void check_mac(const Context& ctx, const MacVelocity<T>& u, const char* fn, const char* name) {
  if (u[0].empty())
    throw ShapeMismatch(std::string(fn) + ": " + name + " is empty (not allocated)");
  const Grid& g = u.grid();
  for (int a = 0; a < g.dim; ++a) {
    const std::string what = std::string(fn) + ": " + name + "[" + std::to_string(a) + "]";
    check::on_grid(u[a], what.c_str(), g, face_location(a));
    check::accessible(ctx, u[a], what.c_str());
  }
}

}  // namespace detail::forces

template <class T>
void add_buoyancy(const Context& ctx, MacVelocity<T>& u, const Field<T>& scalar, T coef, T dt,
                  int up_axis, const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_buoyancy";
  check::positive_dt(double(dt), "add_buoyancy: dt");
  if (!std::isfinite(double(coef)))
    throw InvalidArgument("add_buoyancy: coef = " + std::to_string(double(coef)) +
                          ": the buoyancy coefficient must be finite");
  check_mac(ctx, u, fn, "u");
  const Grid& g = u.grid();
  if (up_axis < 0 || up_axis >= g.dim)
    throw InvalidArgument("add_buoyancy: up_axis = " + std::to_string(up_axis) +
                          " must be in [0, " + std::to_string(g.dim) + ") on a " +
                          std::to_string(g.dim) + "D grid (0 = x, 1 = y, 2 = z)");
  check::on_grid(scalar, "add_buoyancy: scalar", g, Location::Cell);
  check::accessible(ctx, scalar, "add_buoyancy: scalar");
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  const FaceAxis fa = face_axis(g, up_axis);
  View<const T> sv = scalar.view();
  View<T> uv = u[up_axis].view();
  const T scale = dt * coef;
  detail::for_each_cell(
      detail::exec_of(ctx), u[up_axis].extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (wall_face(fa, component(fa.axis, i, j, k))) return;
        if (face_touches_solid(solid, fa, i, j, k)) return;
        uv(i, j, k) += scale * sample_at_face(sv, fa, i, j, k);
      });
}

template <class T>
void add_force(const Context& ctx, MacVelocity<T>& u, const MacVelocity<T>& f, T dt,
               const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_force";
  check::positive_dt(double(dt), "add_force: dt");
  check_mac(ctx, u, fn, "u");
  check_mac(ctx, f, fn, "f");
  const Grid& g = u.grid();
  if (f.grid() != g)
    throw ShapeMismatch("add_force: f (" + f.grid().describe() + ") must be on u's grid (" +
                        g.describe() + ")");
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  for (int a = 0; a < g.dim; ++a) {
    const FaceAxis fa = face_axis(g, a);
    View<const T> fv = f[a].view();
    View<T> uv = u[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          if (face_touches_solid(solid, fa, i, j, k)) return;
          uv(i, j, k) += dt * fv(i, j, k);
        });
  }
}

namespace detail::forces {
template <class T>
void add_scaled_cells(const Context& ctx, Field<T>& q, const Field<T>& s, T dt,
                      View<const std::uint8_t> solid) {
  View<const T> sv = s.view();
  View<T> qv = q.view();
  for_each_cell(
      exec_of(ctx), q.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (solid.data && solid(i, j, k)) return;
        qv(i, j, k) += dt * sv(i, j, k);
      });
}
}  // namespace detail::forces

template <class T>
void add_force(const Context& ctx, CellVector<T>& u, const CellVector<T>& f, T dt,
               const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_force(CellVector)";
  check::positive_dt(double(dt), "add_force(CellVector): dt");
  if (u[0].empty()) throw ShapeMismatch("add_force(CellVector): u is empty (not allocated)");
  const Grid& g = u.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(u[a], "add_force(CellVector): u component", g, Location::Cell);
    check::on_grid(f[a], "add_force(CellVector): f component", g, Location::Cell);
    check::accessible(ctx, u[a], "add_force(CellVector): u");
    check::accessible(ctx, f[a], "add_force(CellVector): f");
  }
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  for (int a = 0; a < g.dim; ++a)
    add_scaled_cells(ctx, u[a], f[a], dt, solid);
}

template <class T>
void add_source(const Context& ctx, Field<T>& q, const Field<T>& s, T dt,
                const ObstacleMask* obstacles) {
  using namespace detail::forces;
  check::positive_dt(double(dt), "add_source: dt");
  check::on_grid(q, "add_source: q", q.grid(), Location::Cell);
  check::same_shape(s, "add_source: s", q, "q");
  check::accessible(ctx, q, "add_source: q");
  check::accessible(ctx, s, "add_source: s");
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, q.grid(), "add_source");
  add_scaled_cells(ctx, q, s, dt, solid);
}

// ---- adjoints (see forces.hpp) ----

namespace detail::forces {

/// Transpose of the buoyancy sampling at one cell: the sum over the (distinct)
/// up-axis faces next to cell (i, j, k) that the forward changes of the face's
/// weight on this cell times g at the face. A gather over at most two faces.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T gather_from_faces(View<const T> g, View<const std::uint8_t> solid,
                                                 const FaceAxis& fa, int i, int j, int k) {
  const int c = component(fa.axis, i, j, k);
  const int nfaces = fa.periodic ? fa.n : fa.n + 1;
  const int f1 = c + 1 >= nfaces ? c + 1 - nfaces : c + 1;  // periodic wrap (face n is face 0)
  const int count = f1 == c ? 1 : 2;
  T acc = 0;
  DFLUID_UNROLL
  for (int t = 0; t < 2; ++t) {
    if (t >= count) break;
    const int f = t == 0 ? c : f1;
    if (wall_face(fa, f)) continue;
    int fi = i, fj = j, fk = k;
    with_component(fa.axis, f, fi, fj, fk);
    if (face_touches_solid(solid, fa, fi, fj, fk)) continue;
    const FaceCells fc = face_cells(fa, f);
    double w = 0;
    if (fc.lo == c) w += fc.w_lo;
    if (fc.hi == c) w += fc.w_hi;
    if (w != 0) acc += T(w) * g(fi, fj, fk);
  }
  return acc;
}

template <class T>
void check_cells(const Context& ctx, const Field<T>& f, const Grid& g, const char* what) {
  check::on_grid(f, what, g, Location::Cell);
  check::accessible(ctx, f, what);
}

/// grad_s += dt * grad_q on non-solid cells.
template <class T>
void add_scaled_cells_adjoint(const Context& ctx, const Field<T>& grad_q, T dt, Field<T>& grad_s,
                              View<const std::uint8_t> solid) {
  View<const T> gv = grad_q.view();
  View<T> sv = grad_s.view();
  for_each_cell(
      exec_of(ctx), grad_s.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (solid.data && solid(i, j, k)) return;
        sv(i, j, k) += dt * gv(i, j, k);
      });
}

template <class T>
void check_buoyancy_args(const Context& ctx, const MacVelocity<T>& grad_u, T dt, int up_axis,
                         const char* fn) {
  check::positive_dt(double(dt), (std::string(fn) + ": dt").c_str());
  check_mac(ctx, grad_u, fn, "grad_u");
  const int dim = grad_u.grid().dim;
  if (up_axis < 0 || up_axis >= dim)
    throw InvalidArgument(std::string(fn) + ": up_axis = " + std::to_string(up_axis) +
                          " must be in [0, " + std::to_string(dim) + ")");
}

}  // namespace detail::forces

template <class T>
void add_buoyancy_adjoint(const Context& ctx, const MacVelocity<T>& grad_u, T coef, T dt,
                          Field<T>& grad_scalar, int up_axis, const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_buoyancy_adjoint";
  if (!std::isfinite(double(coef)))
    throw InvalidArgument("add_buoyancy_adjoint: coef = " + std::to_string(double(coef)) +
                          ": the buoyancy coefficient must be finite");
  check_buoyancy_args(ctx, grad_u, dt, up_axis, fn);
  const Grid& g = grad_u.grid();
  check_cells(ctx, grad_scalar, g, "add_buoyancy_adjoint: grad_scalar");
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  const FaceAxis fa = face_axis(g, up_axis);
  View<const T> gv = grad_u[up_axis].view();
  View<T> sv = grad_scalar.view();
  const T scale = dt * coef;
  detail::for_each_cell(
      detail::exec_of(ctx), grad_scalar.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        sv(i, j, k) += scale * gather_from_faces(gv, solid, fa, i, j, k);
      });
}

namespace detail::forces {

/// One face's term of the coefficient gradient: grad_u * s_face on the faces the forward
/// changes, 0 elsewhere.
template <class T>
struct CoefGradientTerm {
  View<const T> gv, sv;
  View<const std::uint8_t> solid;
  FaceAxis fa;
  DFLUID_HD double operator()(int i, int j, int k) const {
    const int idx[3] = {i, j, k};
    if (wall_face(fa, idx[fa.axis])) return 0.0;
    if (face_touches_solid(solid, fa, i, j, k)) return 0.0;
    return double(gv(i, j, k)) * double(sample_at_face(sv, fa, i, j, k));
  }
};

template <class T>
CoefGradientTerm<T> coef_gradient_term(const Context& ctx, const MacVelocity<T>& grad_u,
                                       const Field<T>& scalar, T dt, int up_axis,
                                       const ObstacleMask* obstacles, const char* fn) {
  check_buoyancy_args(ctx, grad_u, dt, up_axis, fn);
  const Grid& g = grad_u.grid();
  check_cells(ctx, scalar, g, (std::string(fn) + ": scalar").c_str());
  return CoefGradientTerm<T>{grad_u[up_axis].view(), scalar.view(),
                             obstacle_view<T>(ctx, obstacles, g, fn), face_axis(g, up_axis)};
}

/// *acc += s * *v, on the device (one thread). Not a template: see set_scalar (exec.hpp).
void accumulate_scaled(const Exec& ex, double* acc, const double* v, double s) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { *acc += s * *v; });
}

}  // namespace detail::forces

template <class T>
double add_buoyancy_coef_gradient(const Context& ctx, const MacVelocity<T>& grad_u,
                                  const Field<T>& scalar, T dt, int up_axis,
                                  const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const CoefGradientTerm<T> term =
      coef_gradient_term(ctx, grad_u, scalar, dt, up_axis, obstacles, "add_buoyancy_coef_gradient");
  return double(dt) * detail::sum_cells(detail::exec_of(ctx), grad_u[up_axis].extents(), term);
}

template <class T>
void add_buoyancy_coef_gradient_into(const Context& ctx, const MacVelocity<T>& grad_u,
                                     const Field<T>& scalar, T dt, int up_axis, double* accumulator,
                                     const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_buoyancy_coef_gradient_into";
  const CoefGradientTerm<T> term =
      coef_gradient_term(ctx, grad_u, scalar, dt, up_axis, obstacles, fn);
  if (!accumulator) throw InvalidArgument(std::string(fn) + ": accumulator is null");
  // The sum stays on the device (a pool block, reused once warm): no host wait.
  detail::TempBuffer sum(ctx, sizeof(double));
  const detail::Exec ex = detail::exec_of(ctx);
  detail::sum_cells_into(ex, grad_u[up_axis].extents(), term, sum.as<double>());
  accumulate_scaled(ex, accumulator, sum.as<double>(), double(dt));
}

template <class T>
void add_force_adjoint(const Context& ctx, const MacVelocity<T>& grad_u, T dt,
                       MacVelocity<T>& grad_f, const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_force_adjoint";
  check::positive_dt(double(dt), "add_force_adjoint: dt");
  check_mac(ctx, grad_u, fn, "grad_u");
  check_mac(ctx, grad_f, fn, "grad_f");
  const Grid& g = grad_u.grid();
  if (grad_f.grid() != g)
    throw ShapeMismatch("add_force_adjoint: grad_f (" + grad_f.grid().describe() +
                        ") must be on grad_u's grid (" + g.describe() + ")");
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  for (int a = 0; a < g.dim; ++a) {
    const FaceAxis fa = face_axis(g, a);
    View<const T> gv = grad_u[a].view();
    View<T> fv = grad_f[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), grad_f[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          if (face_touches_solid(solid, fa, i, j, k)) return;
          fv(i, j, k) += dt * gv(i, j, k);
        });
  }
}

template <class T>
void add_force_adjoint(const Context& ctx, const CellVector<T>& grad_u, T dt, CellVector<T>& grad_f,
                       const ObstacleMask* obstacles) {
  using namespace detail::forces;
  const char* fn = "add_force_adjoint(CellVector)";
  check::positive_dt(double(dt), "add_force_adjoint(CellVector): dt");
  if (grad_u[0].empty())
    throw ShapeMismatch("add_force_adjoint(CellVector): grad_u is empty (not allocated)");
  const Grid& g = grad_u.grid();
  for (int a = 0; a < g.dim; ++a) {
    check_cells(ctx, grad_u[a], g, "add_force_adjoint(CellVector): grad_u component");
    check_cells(ctx, grad_f[a], g, "add_force_adjoint(CellVector): grad_f component");
  }
  View<const std::uint8_t> solid = obstacle_view<T>(ctx, obstacles, g, fn);
  for (int a = 0; a < g.dim; ++a)
    add_scaled_cells_adjoint(ctx, grad_u[a], dt, grad_f[a], solid);
}

template <class T>
void add_source_adjoint(const Context& ctx, const Field<T>& grad_q, T dt, Field<T>& grad_s,
                        const ObstacleMask* obstacles) {
  using namespace detail::forces;
  check::positive_dt(double(dt), "add_source_adjoint: dt");
  check_cells(ctx, grad_q, grad_q.grid(), "add_source_adjoint: grad_q");
  check::same_shape(grad_s, "add_source_adjoint: grad_s", grad_q, "grad_q");
  check::accessible(ctx, grad_s, "add_source_adjoint: grad_s");
  View<const std::uint8_t> solid =
      obstacle_view<T>(ctx, obstacles, grad_q.grid(), "add_source_adjoint");
  add_scaled_cells_adjoint(ctx, grad_q, dt, grad_s, solid);
}

#define DFLUID_FORCES_INST(T)                                                                      \
  template void add_buoyancy<T>(const Context&, MacVelocity<T>&, const Field<T>&, T, T, int,       \
                                const ObstacleMask*);                                              \
  template void add_force<T>(const Context&, MacVelocity<T>&, const MacVelocity<T>&, T,            \
                             const ObstacleMask*);                                                 \
  template void add_force<T>(const Context&, CellVector<T>&, const CellVector<T>&, T,              \
                             const ObstacleMask*);                                                 \
  template void add_source<T>(const Context&, Field<T>&, const Field<T>&, T, const ObstacleMask*); \
  template void add_buoyancy_adjoint<T>(const Context&, const MacVelocity<T>&, T, T, Field<T>&,    \
                                        int, const ObstacleMask*);                                 \
  template double add_buoyancy_coef_gradient<T>(const Context&, const MacVelocity<T>&,             \
                                                const Field<T>&, T, int, const ObstacleMask*);     \
  template void add_buoyancy_coef_gradient_into<T>(const Context&, const MacVelocity<T>&,          \
                                                   const Field<T>&, T, int, double*,               \
                                                   const ObstacleMask*);                           \
  template void add_force_adjoint<T>(const Context&, const MacVelocity<T>&, T, MacVelocity<T>&,    \
                                     const ObstacleMask*);                                         \
  template void add_force_adjoint<T>(const Context&, const CellVector<T>&, T, CellVector<T>&,      \
                                     const ObstacleMask*);                                         \
  template void add_source_adjoint<T>(const Context&, const Field<T>&, T, Field<T>&,               \
                                      const ObstacleMask*);
DFLUID_FORCES_INST(float)
DFLUID_FORCES_INST(double)
#undef DFLUID_FORCES_INST

}  // namespace dfluid
