// Diffusion: explicit and implicit (see dfluid/diffusion.hpp).
#include "dfluid/diffusion.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/exec.hpp"
#include "core/stencil.hpp"
#include "diffusion/diffusion_workspace.hpp"
#include "pressure/krylov.hpp"

namespace dfluid {

namespace detail::diffusion {

/// One explicit step at one entry: q + nu_dt * lap(q); held entries are copied.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T explicit_cell(View<const T> q, const LaplacianStencil<T>& s, T nu_dt,
                                             int i, int j, int k) {
  if (stencil_held(s, i, j, k)) return q(i, j, k);
  return q(i, j, k) + nu_dt * (laplacian_linear(q, s, i, j, k) + laplacian_affine(q, s, i, j, k));
}

template <class T>
void explicit_array(const Exec& ex, const Field<T>& q, const LaplacianStencil<T>& s, T nu_dt,
                    Field<T>& out) {
  View<const T> qv = q.view();
  View<T> ov = out.view();
  for_each_cell(
      ex, q.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { ov(i, j, k) = explicit_cell(qv, s, nu_dt, i, j, k); });
}

template <class T>
void check_no_alias(const Field<T>& in, const Field<T>& out, const char* fn) {
  if (check::overlap(in, out))
    throw InvalidArgument(std::string(fn) +
                          ": out aliases the input field; diffusion reads neighbours, so "
                          "write into a separate field");
}

void check_nu(double nu, const char* fn) {
  if (!std::isfinite(nu) || nu < 0) {
    std::ostringstream s;
    s << fn << ": nu = " << nu << ": the viscosity/diffusivity must be finite and >= 0";
    throw InvalidArgument(s.str());
  }
}

void check_stable(const Grid& g, double nu, double dt, const char* fn) {
  const double max_dt = max_stable_diffusion_dt(g, nu);
  if (dt > max_dt) {
    std::ostringstream s;
    s.precision(17);
    s << fn << ": dt = " << dt << " is unstable for explicit diffusion with nu = " << nu
      << " and dx = " << g.dx << " (nu*dt/dx^2 = " << nu * dt / (g.dx * g.dx) << " > 1/"
      << 2 * g.dim << "); the largest stable dt is " << max_dt
      << "; use a smaller dt, substeps, or diffuse_implicit";
    throw UnstableTimeStep(s.str(), max_dt);
  }
}

/// The explicit step refuses a ghost-fluid body: its wall terms 1/theta (up to
/// 1/kGhostMinTheta) would make the stable dt depend on how close a face is to the surface.
template <class T>
void refuse_ghost_fluid(const NoSlipObstacle<T>& obstacle, const char* fn) {
  if (obstacle.face_distance)
    throw InvalidArgument(std::string(fn) +
                          ": a ghost-fluid obstacle (face_distance) needs implicit diffusion; use "
                          "diffuse_implicit (DiffusionMode::Implicit in a Simulation)");
}

/// The stencil of MAC component a with the no-slip obstacle (checked: the mask a cell field
/// and the wall velocity a MAC velocity on g, both accessible on ctx).
template <class T>
LaplacianStencil<T> mac_stencil(const Context& ctx, const Grid& g, int a, const WallVelocity& wall,
                                const NoSlipObstacle<T>& obstacle, const char* fn) {
  if (!obstacle.any()) return face_stencil<T>(g, a, wall);
  const std::string f(fn);
  View<const T> wv;
  if (obstacle.wall_velocity) {
    const Field<T>& w = (*obstacle.wall_velocity)[a];
    check::on_grid(w, (f + ": obstacle.wall_velocity").c_str(), g, face_location(a));
    check::accessible(ctx, w, (f + ": obstacle.wall_velocity").c_str());
    wv = w.view();
  }
  if (obstacle.face_distance) {
    if (obstacle.mask)
      throw InvalidArgument(f +
                            ": the obstacle has both a mask and a face_distance; pass one (the "
                            "staircase or the ghost-fluid body)");
    const Field<T>& d = (*obstacle.face_distance)[a];
    check::on_grid(d, (f + ": obstacle.face_distance").c_str(), g, face_location(a));
    check::accessible(ctx, d, (f + ": obstacle.face_distance").c_str());
    return ghost_fluid_face_stencil<T>(g, a, wall, d.view(), wv);
  }
  check::on_grid(*obstacle.mask, (f + ": obstacle.mask").c_str(), g, Location::Cell);
  check::accessible(ctx, *obstacle.mask, (f + ": obstacle.mask").c_str());
  View<const std::uint8_t> cv;
  if (obstacle.face_classes) {
    const Field<std::uint8_t>& c = (*obstacle.face_classes)[a];
    check::on_grid(c, (f + ": obstacle.face_classes").c_str(), g, face_location(a));
    check::accessible(ctx, c, (f + ": obstacle.face_classes").c_str());
    cv = c.view();
  }
  return face_stencil<T>(g, a, wall, obstacle.mask->view(), wv, cv);
}

}  // namespace detail::diffusion

double max_stable_diffusion_dt(const Grid& g, double nu) {
  detail::diffusion::check_nu(nu, "max_stable_diffusion_dt");
  if (nu == 0) return std::numeric_limits<double>::infinity();
  return g.dx * g.dx / (2.0 * g.dim * nu);
}

namespace detail::diffusion {

template <class T>
void check_scalar_args(const Context& ctx, const Field<T>& q, T nu, T dt, const Field<T>& out,
                       const char* fn) {
  const std::string f(fn);
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), (f + ": dt").c_str());
  check::on_grid(q, (f + ": q").c_str(), q.grid(), Location::Cell);
  check::same_shape(q, (f + ": q").c_str(), out, "out");
  check::accessible(ctx, q, (f + ": q").c_str());
  check::accessible(ctx, out, (f + ": out").c_str());
  check_no_alias(q, out, fn);
}

/// Vector arguments: component a of q and out at location loc(a) on q's grid.
template <class T, class V, class Loc>
void check_vector_args(const Context& ctx, const V& q, T nu, T dt, const V& out, Loc loc,
                       const char* fn) {
  const std::string f(fn);
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), (f + ": dt").c_str());
  if (q[0].empty()) throw ShapeMismatch(f + ": q is empty (not allocated)");
  const Grid& g = q.grid();
  for (int a = 0; a < g.dim; ++a) {
    const std::string qa = f + ": q[" + std::to_string(a) + "]";
    const std::string oa = f + ": out[" + std::to_string(a) + "]";
    check::on_grid(q[a], qa.c_str(), g, loc(a));
    check::on_grid(out[a], oa.c_str(), g, loc(a));
    check::accessible(ctx, q[a], qa.c_str());
    check::accessible(ctx, out[a], oa.c_str());
    for (int b = 0; b < g.dim; ++b)
      check_no_alias(q[a], out[b], fn);
  }
}

inline Location cell_loc(int) {
  return Location::Cell;
}

// ---- implicit step: (I - nu_dt L) x = q + nu_dt c on free entries, x = q on held ----

/// Right-hand side at one entry: q + nu_dt * (affine part of lap). Held entries
/// get 0: their rows of the operator are the identity and decoupled from the free
/// entries, so they stay exactly 0 through CG (and out of the residual); the
/// solve then copies q into them.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T implicit_rhs_cell(View<const T> q, const LaplacianStencil<T>& s,
                                                 T nu_dt, int i, int j, int k) {
  if (stencil_held(s, i, j, k)) return T(0);
  return q(i, j, k) + nu_dt * laplacian_affine(q, s, i, j, k);
}

/// (I - nu_dt L) x at one entry; identity on held entries. Linear and symmetric.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T implicit_operator_cell(View<const T> x, const LaplacianStencil<T>& s,
                                                      T nu_dt, int i, int j, int k) {
  if (stencil_held(s, i, j, k)) return x(i, j, k);
  return x(i, j, k) - nu_dt * laplacian_linear(x, s, i, j, k);
}

/// Jacobi preconditioner: r / diag(I - nu_dt L); identity on held entries.
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T implicit_jacobi_cell(View<const T> r, const LaplacianStencil<T>& s,
                                                    T nu_dt, int i, int j, int k) {
  if (stencil_held(s, i, j, k)) return r(i, j, k);
  return r(i, j, k) / (T(1) - nu_dt * laplacian_diagonal(s, i, j, k));
}

template <class T>
void implicit_rhs(const Exec& ex, const Field<T>& q, const LaplacianStencil<T>& s, T nu_dt,
                  Field<T>& b) {
  View<const T> qv = q.view();
  View<T> bv = b.view();
  for_each_cell(
      ex, q.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        bv(i, j, k) = implicit_rhs_cell(qv, s, nu_dt, i, j, k);
      });
}

template <class T>
void implicit_operator(const Exec& ex, const Field<T>& x, const LaplacianStencil<T>& s, T nu_dt,
                       Field<T>& out) {
  View<const T> xv = x.view();
  View<T> ov = out.view();
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        ov(i, j, k) = implicit_operator_cell(xv, s, nu_dt, i, j, k);
      });
}

template <class T>
void implicit_jacobi(const Exec& ex, const Field<T>& r, const LaplacianStencil<T>& s, T nu_dt,
                     Field<T>& z) {
  View<const T> rv = r.view();
  View<T> zv = z.view();
  for_each_cell(
      ex, r.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        zv(i, j, k) = implicit_jacobi_cell(rv, s, nu_dt, i, j, k);
      });
}

/// Held entries of out = those of src, or 0 when src is null.
template <class T>
void set_held(const Exec& ex, const Field<T>* src, const LaplacianStencil<T>& s, Field<T>& out) {
  bool any = false;
  for (int a = 0; a < s.dim; ++a)
    any = any || s.held[a][0] || s.held[a][1];
  if (!any && !stencil_has_obstacle(s)) return;  // no held box nodes, no obstacle faces
  View<const T> sv = src ? src->view() : View<const T>{};
  View<T> ov = out.view();
  for_each_cell(
      ex, out.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (stencil_held(s, i, j, k)) ov(i, j, k) = sv.data ? sv(i, j, k) : T(0);
      });
}

static_assert(kScalarCount * sizeof(double) <= kImplicitScalarBytes,
              "diffusion_workspace.hpp reserves too few bytes for the CG scalars");

/// The temporaries of one implicit solve on arrays shaped like `like`: the right-hand side b,
/// (adjoint only) the solution w, and the CG workspace, all in ONE block of the context's
/// pool (implicit_workspace_bytes), so that a warm step allocates nothing. The block is
/// zeroed, as the fields it replaces were.
template <class T>
struct ImplicitTemps {
  TempBuffer mem;
  Field<T> b, w;
  KrylovWorkspace<T> ws;
  ImplicitTemps(const Context& ctx, const Field<T>& like, int arrays) {
    const std::size_t array_bytes = sizeof(T) * std::size_t(like.size());
    const std::size_t stride = implicit_array_stride(array_bytes);
    const std::size_t bytes = implicit_workspace_bytes(array_bytes, arrays);
    mem = TempBuffer(ctx, bytes);
    zero_bytes(ctx, mem.data(), bytes, ctx.memory_space());
    char* p = mem.as<char>();
    auto next = [&] {
      Field<T> f =
          Field<T>::wrap(like.grid(), like.location(), reinterpret_cast<T*>(p), ctx.memory_space());
      p += stride;
      return f;
    };
    b = next();
    if (arrays == kImplicitAdjointArrays) w = next();
    ws.r = next();
    ws.z = next();
    ws.p = next();
    ws.q = next();
    ws.scalars =
        Buffer<double>::wrap(reinterpret_cast<double*>(p), kScalarCount, ctx.memory_space());
  }
};

template <class T>
SolveReport implicit_array(const Context& ctx, const Field<T>& q, const LaplacianStencil<T>& s,
                           T nu_dt, Field<T>& out, const SolverOptions& opt, const char* what) {
  const Exec ex = exec_of(ctx);
  ImplicitTemps<T> tmp(ctx, q, kImplicitForwardArrays);
  Field<T>& b = tmp.b;
  implicit_rhs(ex, q, s, nu_dt, b);
  KrylovWorkspace<T>& ws = tmp.ws;
  auto apply_A = [&](const Field<T>& in, Field<T>& o) { implicit_operator(ex, in, s, nu_dt, o); };
  auto apply_M = [&](const Field<T>& r, Field<T>& z) { implicit_jacobi(ex, r, s, nu_dt, z); };
  if (opt.warm_start) set_held<T>(ex, nullptr, s, out);
  SolveReport rep;
  if (opt.preconditioner == Preconditioner::None)
    rep = pcg(ctx, apply_A, IdentityPreconditioner{ctx}, b, out, opt, ws, what);
  else
    rep = pcg(ctx, apply_A, apply_M, b, out, opt, ws, what);
  set_held(ex, &q, s, out);
  return rep;
}

inline void combine(SolveReport& acc, const SolveReport& r, bool first) {
  if (first) {
    acc = r;
    return;
  }
  acc.iterations = std::max(acc.iterations, r.iterations);
  acc.initial_residual = std::max(acc.initial_residual, r.initial_residual);
  acc.residual = std::max(acc.residual, r.residual);
  acc.converged = acc.converged && r.converged;
}

// ---- adjoints (vector-Jacobian products; see the derivation in diffusion.hpp) ----
//
// With the held entries of q as inputs too, the explicit step's linear part is
//   out_free = q_free + nu_dt (L q_free + H q_held),   out_held = q_held,
// where H q_held is the held-neighbour part of laplacian_affine (Fixed side values
// are constants and drop out). Its transpose, applied to g = grad_out:
//   gq_free = g_free + nu_dt L g          (L symmetric; held g read as 0)
//   gq_held = g_held + nu_dt H^T g_free    (laplacian_held_adjoint)
// Implicit: out_free = A^-1 (q_free + nu_dt H q_held), A = I - nu_dt L, so with
// w = A^-1 g_free (A symmetric: the same CG solve on the cotangent)
//   gq_free = w,   gq_held = g_held + nu_dt H^T w.

/// One explicit adjoint entry: (J^T g) at (i, j, k).
template <class T>
DFLUID_HD DFLUID_FORCEINLINE T explicit_adjoint_cell(View<const T> g, const LaplacianStencil<T>& s,
                                                     T nu_dt, int i, int j, int k) {
  if (stencil_held(s, i, j, k)) return g(i, j, k) + nu_dt * laplacian_held_adjoint(g, s, i, j, k);
  return g(i, j, k) + nu_dt * laplacian_linear(g, s, i, j, k);
}

/// grad_in += J^T grad_out on one array.
template <class T>
void explicit_adjoint_array(const Exec& ex, const Field<T>& grad_out, const LaplacianStencil<T>& s,
                            T nu_dt, Field<T>& grad_in) {
  View<const T> gv = grad_out.view();
  View<T> iv = grad_in.view();
  for_each_cell(
      ex, grad_out.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        iv(i, j, k) += explicit_adjoint_cell(gv, s, nu_dt, i, j, k);
      });
}

/// grad_in += J^T grad_out for the implicit step on one array (one CG solve).
template <class T>
SolveReport implicit_adjoint_array(const Context& ctx, const Field<T>& grad_out,
                                   const LaplacianStencil<T>& s, T nu_dt, Field<T>& grad_in,
                                   SolverOptions opt, const char* what) {
  const Exec ex = exec_of(ctx);
  ImplicitTemps<T> tmp(ctx, grad_out, kImplicitAdjointArrays);
  Field<T>& b = tmp.b;
  Field<T>& w = tmp.w;
  {
    View<const T> gv = grad_out.view();
    View<T> bv = b.view();
    // Held rows of the operator are the identity and decoupled: b = 0 there keeps
    // w = 0 on held entries (as in the forward), out of the residual.
    for_each_cell(
        ex, b.extents(), DFLUID_LAMBDA(int i, int j, int k) {
          bv(i, j, k) = stencil_held(s, i, j, k) ? T(0) : gv(i, j, k);
        });
  }
  KrylovWorkspace<T>& ws = tmp.ws;
  auto apply_A = [&](const Field<T>& in, Field<T>& o) { implicit_operator(ex, in, s, nu_dt, o); };
  auto apply_M = [&](const Field<T>& r, Field<T>& z) { implicit_jacobi(ex, r, s, nu_dt, z); };
  opt.warm_start = false;  // w is fresh scratch; grad_in is accumulated into, not a guess
  SolveReport rep;
  if (opt.preconditioner == Preconditioner::None)
    rep = pcg(ctx, apply_A, IdentityPreconditioner{ctx}, b, w, opt, ws, what);
  else
    rep = pcg(ctx, apply_A, apply_M, b, w, opt, ws, what);
  View<const T> gv = grad_out.view();
  View<const T> wv = w.view();
  View<T> iv = grad_in.view();
  for_each_cell(
      ex, grad_in.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        if (stencil_held(s, i, j, k))
          iv(i, j, k) += gv(i, j, k) + nu_dt * laplacian_held_adjoint(wv, s, i, j, k);
        else
          iv(i, j, k) += wv(i, j, k);
      });
  return rep;
}

/// dt * sum over free entries of g * lap(q) (the full Laplacian, affine part included).
template <class T>
double explicit_nu_gradient_array(const Exec& ex, const Field<T>& q, const Field<T>& g,
                                  const LaplacianStencil<T>& s, T dt) {
  View<const T> qv = q.view();
  View<const T> gv = g.view();
  return double(dt) * sum_cells(
                          ex, q.extents(), DFLUID_LAMBDA(int i, int j, int k)->double {
                            if (stencil_held(s, i, j, k)) return 0.0;
                            return double(gv(i, j, k)) * double(laplacian_linear(qv, s, i, j, k) +
                                                                laplacian_affine(qv, s, i, j, k));
                          });
}

/// One entry's term of the nu gradient: w * lap(q) (the full Laplacian, affine part included)
/// on free entries, 0 on held ones. A functor rather than a lambda: sum_cells_into is a
/// template that nvcc cannot instantiate with an extended lambda of a function template.
template <class T>
struct NuGradientTerm {
  View<const T> qv, wv;
  LaplacianStencil<T> s;
  DFLUID_HD double operator()(int i, int j, int k) const {
    if (stencil_held(s, i, j, k)) return 0.0;
    return double(wv(i, j, k)) *
           double(laplacian_linear(qv, s, i, j, k) + laplacian_affine(qv, s, i, j, k));
  }
};

/// *acc += s * *v, on the device (one thread). Not a template: see set_scalar (exec.hpp).
void accumulate_scaled(const Exec& ex, double* acc, const double* v, double s) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { *acc += s * *v; });
}

/// *acc += dt * sum over free entries of w * lap(q), with `sum` (one double in the context's
/// memory space) as the reduction's target: no host wait.
template <class T>
void nu_gradient_into(const Exec& ex, const Field<T>& q, const Field<T>& w,
                      const LaplacianStencil<T>& s, T dt, double* sum, double* acc) {
  sum_cells_into(ex, q.extents(), NuGradientTerm<T>{q.view(), w.view(), s}, sum);
  accumulate_scaled(ex, acc, sum, double(dt));
}

template <class T>
void check_nu_gradient_args(const Context& ctx, const Field<T>& q, T dt, const Field<T>& w,
                            const double* acc, const char* fn) {
  const std::string f(fn);
  check::positive_dt(double(dt), (f + ": dt").c_str());
  check::same_shape(w, (f + ": w").c_str(), q, "q");
  check::accessible(ctx, q, (f + ": q").c_str());
  check::accessible(ctx, w, (f + ": w").c_str());
  if (!acc)
    throw InvalidArgument(f +
                          ": accumulator is null; pass one double in the context's "
                          "memory space (e.g. a Buffer<double> element)");
}

/// Adjoint arguments: grad_out and grad_in shaped like the forward's fields.
template <class T>
void check_adjoint_scalar(const Context& ctx, const Field<T>& grad_out, T nu, T dt,
                          const Field<T>& grad_in, const char* fn) {
  const std::string f(fn);
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), (f + ": dt").c_str());
  check::on_grid(grad_out, (f + ": grad_out").c_str(), grad_out.grid(), Location::Cell);
  check::same_shape(grad_out, (f + ": grad_out").c_str(), grad_in, "grad_q");
  check::accessible(ctx, grad_out, (f + ": grad_out").c_str());
  check::accessible(ctx, grad_in, (f + ": grad_q").c_str());
  check_no_alias(grad_out, grad_in, fn);
}

}  // namespace detail::diffusion

template <class T>
void diffuse_explicit(const Context& ctx, const Field<T>& q, T nu, T dt, Field<T>& out,
                      const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit";
  check_scalar_args(ctx, q, nu, dt, out, fn);
  check_stable(q.grid(), double(nu), double(dt), fn);
  explicit_array(detail::exec_of(ctx), q, detail::cell_stencil<T>(q.grid(), bc), T(nu * dt), out);
}

template <class T>
void diffuse_explicit(const Context& ctx, const CellVector<T>& q, T nu, T dt, CellVector<T>& out,
                      const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit(CellVector)";
  check_vector_args(ctx, q, nu, dt, out, cell_loc, fn);
  check_stable(q.grid(), double(nu), double(dt), fn);
  const auto s = detail::cell_stencil<T>(q.grid(), bc);
  for (int a = 0; a < q.dim(); ++a)
    explicit_array(detail::exec_of(ctx), q[a], s, T(nu * dt), out[a]);
}

template <class T>
void diffuse_explicit(const Context& ctx, const MacVelocity<T>& u, T nu, T dt, MacVelocity<T>& out,
                      const WallVelocity& wall, const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit(MacVelocity)";
  check_vector_args(ctx, u, nu, dt, out, face_location, fn);
  const Grid& g = u.grid();
  refuse_ghost_fluid(obstacle, fn);
  check_stable(g, double(nu), double(dt), fn);
  for (int a = 0; a < g.dim; ++a)
    explicit_array(detail::exec_of(ctx), u[a], mac_stencil(ctx, g, a, wall, obstacle, fn),
                   T(nu * dt), out[a]);
}

template <class T>
SolveReport diffuse_implicit(const Context& ctx, const Field<T>& q, T nu, T dt, Field<T>& out,
                             const ScalarBoundary& bc, const SolverOptions& options) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit";
  check_scalar_args(ctx, q, nu, dt, out, fn);
  validate(options, "diffuse_implicit: options");
  return implicit_array(ctx, q, detail::cell_stencil<T>(q.grid(), bc), T(nu * dt), out, options,
                        fn);
}

template <class T>
SolveReport diffuse_implicit(const Context& ctx, const CellVector<T>& q, T nu, T dt,
                             CellVector<T>& out, const ScalarBoundary& bc,
                             const SolverOptions& options) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit(CellVector)";
  check_vector_args(ctx, q, nu, dt, out, cell_loc, fn);
  validate(options, "diffuse_implicit(CellVector): options");
  const auto s = detail::cell_stencil<T>(q.grid(), bc);
  SolveReport rep;
  for (int a = 0; a < q.dim(); ++a)
    combine(rep, implicit_array(ctx, q[a], s, T(nu * dt), out[a], options, fn), a == 0);
  return rep;
}

template <class T>
SolveReport diffuse_implicit(const Context& ctx, const MacVelocity<T>& u, T nu, T dt,
                             MacVelocity<T>& out, const SolverOptions& options,
                             const WallVelocity& wall, const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit(MacVelocity)";
  check_vector_args(ctx, u, nu, dt, out, face_location, fn);
  validate(options, "diffuse_implicit(MacVelocity): options");
  const Grid& g = u.grid();
  SolveReport rep;
  for (int a = 0; a < g.dim; ++a)
    combine(rep,
            implicit_array(ctx, u[a], mac_stencil(ctx, g, a, wall, obstacle, fn), T(nu * dt),
                           out[a], options, fn),
            a == 0);
  return rep;
}

// ---- adjoints ----

template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const Field<T>& grad_out, T nu, T dt,
                              Field<T>& grad_q, const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit_adjoint";
  check_adjoint_scalar(ctx, grad_out, nu, dt, grad_q, fn);
  check_stable(grad_out.grid(), double(nu), double(dt), fn);
  explicit_adjoint_array(detail::exec_of(ctx), grad_out,
                         detail::cell_stencil<T>(grad_out.grid(), bc), T(nu * dt), grad_q);
}

template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const CellVector<T>& grad_out, T nu, T dt,
                              CellVector<T>& grad_q, const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit_adjoint(CellVector)";
  check_vector_args(ctx, grad_out, nu, dt, grad_q, cell_loc, fn);
  check_stable(grad_out.grid(), double(nu), double(dt), fn);
  const auto s = detail::cell_stencil<T>(grad_out.grid(), bc);
  for (int a = 0; a < grad_out.dim(); ++a)
    explicit_adjoint_array(detail::exec_of(ctx), grad_out[a], s, T(nu * dt), grad_q[a]);
}

template <class T>
void diffuse_explicit_adjoint(const Context& ctx, const MacVelocity<T>& grad_out, T nu, T dt,
                              MacVelocity<T>& grad_u, const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit_adjoint(MacVelocity)";
  check_vector_args(ctx, grad_out, nu, dt, grad_u, face_location, fn);
  const Grid& g = grad_out.grid();
  refuse_ghost_fluid(obstacle, fn);
  check_stable(g, double(nu), double(dt), fn);
  for (int a = 0; a < g.dim; ++a)
    explicit_adjoint_array(detail::exec_of(ctx), grad_out[a],
                           mac_stencil(ctx, g, a, {}, obstacle, fn), T(nu * dt), grad_u[a]);
}

template <class T>
double diffuse_explicit_nu_gradient(const Context& ctx, const Field<T>& q, T nu, T dt,
                                    const Field<T>& grad_out, const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit_nu_gradient";
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_explicit_nu_gradient: dt");
  check::on_grid(q, "diffuse_explicit_nu_gradient: q", q.grid(), Location::Cell);
  check::same_shape(grad_out, "diffuse_explicit_nu_gradient: grad_out", q, "q");
  check::accessible(ctx, q, "diffuse_explicit_nu_gradient: q");
  check::accessible(ctx, grad_out, "diffuse_explicit_nu_gradient: grad_out");
  return explicit_nu_gradient_array(detail::exec_of(ctx), q, grad_out,
                                    detail::cell_stencil<T>(q.grid(), bc), dt);
}

template <class T>
double diffuse_explicit_nu_gradient(const Context& ctx, const MacVelocity<T>& u, T nu, T dt,
                                    const MacVelocity<T>& grad_out, const WallVelocity& wall,
                                    const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit_nu_gradient(MacVelocity)";
  check_vector_args(ctx, grad_out, nu, dt, u, face_location, fn);
  refuse_ghost_fluid(obstacle, fn);
  const Grid& g = u.grid();
  double acc = 0;
  for (int a = 0; a < g.dim; ++a)
    acc += explicit_nu_gradient_array(detail::exec_of(ctx), u[a], grad_out[a],
                                      mac_stencil(ctx, g, a, wall, obstacle, fn), dt);
  return acc;
}

// d/dnu of <g, out>: explicit, out = q + nu dt lap(q), so dt <g, lap(q)> over the diffused
// entries; implicit, (I - nu dt L) out = q + nu dt (H q_held + c), so differentiating,
// (I - nu dt L) d out/d nu = dt lap(out) on free entries and
// d<g, out>/d nu = dt <(I - nu dt L)^-1 g, lap(out)> = dt <w, lap(out)> with w the adjoint
// solve's values. Both read "w * lap(q)" with the right q and w; the affine part (Fixed side
// values, held faces, MovingWall wall velocities, a no-slip obstacle's wall velocity) is part
// of lap, and so are the no-slip obstacle's ghosts: L must be the forward's operator.
template <class T>
void add_diffusion_nu_gradient_into(const Context& ctx, const Field<T>& q, T dt, const Field<T>& w,
                                    double* accumulator, const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "add_diffusion_nu_gradient_into";
  check::on_grid(q, "add_diffusion_nu_gradient_into: q", q.grid(), Location::Cell);
  check_nu_gradient_args(ctx, q, dt, w, accumulator, fn);
  // The sum stays on the device (a pool block, reused once warm): no host wait.
  detail::TempBuffer sum(ctx, sizeof(double));
  nu_gradient_into(detail::exec_of(ctx), q, w, detail::cell_stencil<T>(q.grid(), bc), dt,
                   sum.as<double>(), accumulator);
}

template <class T>
void add_diffusion_nu_gradient_into(const Context& ctx, const MacVelocity<T>& u, T dt,
                                    const MacVelocity<T>& w, double* accumulator,
                                    const WallVelocity& wall, const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "add_diffusion_nu_gradient_into(MacVelocity)";
  if (u[0].empty()) throw ShapeMismatch(std::string(fn) + ": u is empty (not allocated)");
  const Grid& g = u.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(u[a], "add_diffusion_nu_gradient_into(MacVelocity): u", g, face_location(a));
    check_nu_gradient_args(ctx, u[a], dt, w[a], accumulator, fn);
  }
  // The forward's stencil: the obstacle's faces are held (no term), its ghosts 2 U - u are in
  // lap(u), the wall velocity's 2 U in its affine part.
  detail::TempBuffer sum(ctx, sizeof(double));
  for (int a = 0; a < g.dim; ++a)
    nu_gradient_into(detail::exec_of(ctx), u[a], w[a], mac_stencil(ctx, g, a, wall, obstacle, fn),
                     dt, sum.as<double>(), accumulator);
}

template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const Field<T>& grad_out, T nu, T dt,
                                     Field<T>& grad_q, const ScalarBoundary& bc,
                                     const SolverOptions& options) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit_adjoint";
  check_adjoint_scalar(ctx, grad_out, nu, dt, grad_q, fn);
  validate(options, "diffuse_implicit_adjoint: options");
  return implicit_adjoint_array(ctx, grad_out, detail::cell_stencil<T>(grad_out.grid(), bc),
                                T(nu * dt), grad_q, options, fn);
}

template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const CellVector<T>& grad_out, T nu, T dt,
                                     CellVector<T>& grad_q, const ScalarBoundary& bc,
                                     const SolverOptions& options) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit_adjoint(CellVector)";
  check_vector_args(ctx, grad_out, nu, dt, grad_q, cell_loc, fn);
  validate(options, "diffuse_implicit_adjoint(CellVector): options");
  const auto s = detail::cell_stencil<T>(grad_out.grid(), bc);
  SolveReport rep;
  for (int a = 0; a < grad_out.dim(); ++a)
    combine(rep, implicit_adjoint_array(ctx, grad_out[a], s, T(nu * dt), grad_q[a], options, fn),
            a == 0);
  return rep;
}

template <class T>
SolveReport diffuse_implicit_adjoint(const Context& ctx, const MacVelocity<T>& grad_out, T nu, T dt,
                                     MacVelocity<T>& grad_u, const SolverOptions& options,
                                     const NoSlipObstacle<T>& obstacle) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_implicit_adjoint(MacVelocity)";
  check_vector_args(ctx, grad_out, nu, dt, grad_u, face_location, fn);
  validate(options, "diffuse_implicit_adjoint(MacVelocity): options");
  const Grid& g = grad_out.grid();
  SolveReport rep;
  for (int a = 0; a < g.dim; ++a)
    combine(rep,
            implicit_adjoint_array(ctx, grad_out[a], mac_stencil(ctx, g, a, {}, obstacle, fn),
                                   T(nu * dt), grad_u[a], options, fn),
            a == 0);
  return rep;
}

// The wall velocity U of a MovingWall side enters the stencil of each tangential
// component c only through the affine part, c = 2 U / dx^2 at the free entries next to
// the side (stencil.hpp). Explicit: out = q + nu dt (L q + c), so d<g, out>/dU = nu dt
// 2/dx^2 * sum of g over those entries. Implicit: (I - nu dt L) out = q + nu dt c, so
// the same sum of w = (I - nu dt L)^-1 g, which is what diffuse_implicit_adjoint
// accumulates at the free entries.
template <class T>
WallVelocity diffuse_wall_velocity_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                            const NoSlipObstacle<T>& obstacle) {
  const char* fn = "diffuse_wall_velocity_gradient";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_wall_velocity_gradient: dt");
  const Grid& g = w.grid();
  WallVelocity grad;
  const double coef = double(nu) * double(dt) * 2.0 / (g.dx * g.dx);
  for (int b = 0; b < g.dim; ++b)
    for (int side = 0; side < 2; ++side) {
      if (g.boundary[b][side] != BoundaryKind::MovingWall) continue;
      for (int c = 0; c < g.dim; ++c) {
        if (c == b) continue;
        check::accessible(ctx, w[c], "diffuse_wall_velocity_gradient: w");
        const detail::LaplacianStencil<T> s =
            detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
        View<const T> wv = w[c].view();
        const int edge = side ? s.m[b] - 1 : 0;
        const int axis = b;
        std::array<int, 3> ext = w[c].extents();
        grad.v[b][side][c] =
            coef * detail::sum_cells(
                       detail::exec_of(ctx), ext, DFLUID_LAMBDA(int i, int j, int k)->double {
                         const int idx[3] = {i, j, k};
                         if (idx[axis] != edge || detail::stencil_held(s, i, j, k)) return 0.0;
                         return double(wv(i, j, k));
                       });
      }
    }
  return grad;
}

namespace detail::diffusion {

/// One entry's term of diffuse_wall_velocity_gradient: w at the free entries of the layer
/// next to the side (index `edge` along `axis`). A functor: see NuGradientTerm.
template <class T>
struct WallLayerTerm {
  View<const T> wv;
  LaplacianStencil<T> s;
  int axis, edge;
  DFLUID_HD double operator()(int i, int j, int k) const {
    const int idx[3] = {i, j, k};
    if (idx[axis] != edge || stencil_held(s, i, j, k)) return 0.0;
    return double(wv(i, j, k));
  }
};

/// *p *= f, on the device (one thread). Not a template: see set_scalar (exec.hpp).
void scale_scalar(const Exec& ex, double* p, double f) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { *p *= f; });
}

}  // namespace detail::diffusion

// The same gradient left on the device: the reduction of each MovingWall side and
// tangential component into its slot, then scaled there (bitwise coef * sum, as above).
template <class T>
void diffuse_wall_velocity_gradient_into(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                         double* dst, const NoSlipObstacle<T>& obstacle) {
  const char* fn = "diffuse_wall_velocity_gradient_into";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_wall_velocity_gradient_into: dt");
  if (!dst)
    throw InvalidArgument(std::string(fn) +
                          ": dst is null; pass VelocityBoundaryGradient::kWallSlots doubles in "
                          "the context's memory space");
  const Grid& g = w.grid();
  const double coef = double(nu) * double(dt) * 2.0 / (g.dx * g.dx);
  const detail::Exec ex = detail::exec_of(ctx);
  for (int b = 0; b < g.dim; ++b)
    for (int side = 0; side < 2; ++side) {
      if (g.boundary[b][side] != BoundaryKind::MovingWall) continue;
      for (int c = 0; c < g.dim; ++c) {
        if (c == b) continue;
        check::accessible(ctx, w[c], "diffuse_wall_velocity_gradient_into: w");
        const detail::LaplacianStencil<T> s =
            detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
        double* slot = dst + VelocityBoundaryGradient::wall_slot(b, side, c);
        detail::sum_cells_into(
            ex, w[c].extents(),
            detail::diffusion::WallLayerTerm<T>{w[c].view(), s, b, side ? s.m[b] - 1 : 0}, slot);
        detail::diffusion::scale_scalar(ex, slot, coef);
      }
    }
}

// A no-slip obstacle's wall velocity W enters the stencil of a free entry f only through
// the affine part, nu dt / dx^2 * (W_f + W_g) for each interior neighbour g (stencil.hpp).
// So d<g, out>/dW at face x gathers nu dt / dx^2 times: w_x once per interior neighbour
// when x is free, and the sum of w over the free neighbours that read x as a ghost when x
// is an interior face (explicit: w = grad_out; implicit: w = (I - nu dt L)^-1 grad_out, as
// for the box sides above). A gather; no host wait.
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const ObstacleMask& mask, MacVelocity<T>& grad_wall) {
  diffuse_obstacle_wall_gradient(ctx, w, nu, dt, NoSlipObstacle<T>{&mask, nullptr}, grad_wall);
}

// Ghost fluid: the affine part is (1/theta - 1) W_f + W_g per interior neighbour g, so a
// free face gathers (1/theta - 1) w_x per interior neighbour (1 on the staircase) and an
// interior face w of each free neighbour that reads it, as above.
template <class T>
void diffuse_obstacle_wall_gradient(const Context& ctx, const MacVelocity<T>& w, T nu, T dt,
                                    const NoSlipObstacle<T>& no_slip, MacVelocity<T>& grad_wall) {
  const char* fn = "diffuse_obstacle_wall_gradient";
  detail::diffusion::check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_obstacle_wall_gradient: dt");
  if (!no_slip.any())
    throw InvalidArgument(std::string(fn) +
                          ": the obstacle has neither a mask nor a face_distance; pass the "
                          "no-slip body the forward diffused with");
  const Grid& g = w.grid();
  const NoSlipObstacle<T> obstacle{no_slip.mask, nullptr, nullptr, no_slip.face_distance};
  const T coef = T(double(nu) * double(dt) / (g.dx * g.dx));
  for (int c = 0; c < g.dim; ++c) {
    check::on_grid(grad_wall[c], "diffuse_obstacle_wall_gradient: grad_wall", g, face_location(c));
    check::accessible(ctx, w[c], "diffuse_obstacle_wall_gradient: w");
    check::accessible(ctx, grad_wall[c], "diffuse_obstacle_wall_gradient: grad_wall");
    const detail::LaplacianStencil<T> s =
        detail::diffusion::mac_stencil(ctx, g, c, {}, obstacle, fn);
    View<const T> wv = w[c].view();
    View<T> gv = grad_wall[c].view();
    detail::for_each_cell(
        detail::exec_of(ctx), w[c].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          const int idx[3] = {i, j, k};
          const unsigned char self = detail::stencil_obstacle(s, idx);
          const bool self_free = !detail::stencil_held(s, i, j, k);
          if (!self_free && self != detail::kFaceInterior) return;
          T acc = 0;
          for (int a = 0; a < s.dim; ++a)
            for (int side = 0; side < 2; ++side) {
              int nb[3];
              if (!detail::face_neighbour(s.obst, s.comp, a, side, i, j, k, nb)) continue;
              if (self_free) {
                if (detail::stencil_obstacle(s, nb) == detail::kFaceInterior)
                  acc += (detail::stencil_ghost_weight(s, i, j, k, nb) - T(1)) * wv(i, j, k);
              } else if (!detail::stencil_held(s, nb[0], nb[1], nb[2])) {
                acc += wv(nb[0], nb[1], nb[2]);
              }
            }
          gv(i, j, k) += coef * acc;
        });
  }
}

#define DFLUID_DIFFUSION_INST(T)                                                                  \
  template void diffuse_explicit<T>(const Context&, const Field<T>&, T, T, Field<T>&,             \
                                    const ScalarBoundary&);                                       \
  template void diffuse_explicit<T>(const Context&, const CellVector<T>&, T, T, CellVector<T>&,   \
                                    const ScalarBoundary&);                                       \
  template void diffuse_explicit<T>(const Context&, const MacVelocity<T>&, T, T, MacVelocity<T>&, \
                                    const WallVelocity&, const NoSlipObstacle<T>&);               \
  template void diffuse_obstacle_wall_gradient<T>(const Context&, const MacVelocity<T>&, T, T,    \
                                                  const ObstacleMask&, MacVelocity<T>&);          \
  template void diffuse_obstacle_wall_gradient<T>(const Context&, const MacVelocity<T>&, T, T,    \
                                                  const NoSlipObstacle<T>&, MacVelocity<T>&);     \
  template SolveReport diffuse_implicit<T>(const Context&, const Field<T>&, T, T, Field<T>&,      \
                                           const ScalarBoundary&, const SolverOptions&);          \
  template SolveReport diffuse_implicit<T>(const Context&, const CellVector<T>&, T, T,            \
                                           CellVector<T>&, const ScalarBoundary&,                 \
                                           const SolverOptions&);                                 \
  template void diffuse_explicit_adjoint<T>(const Context&, const Field<T>&, T, T, Field<T>&,     \
                                            const ScalarBoundary&);                               \
  template void diffuse_explicit_adjoint<T>(const Context&, const CellVector<T>&, T, T,           \
                                            CellVector<T>&, const ScalarBoundary&);               \
  template void diffuse_explicit_adjoint<T>(const Context&, const MacVelocity<T>&, T, T,          \
                                            MacVelocity<T>&, const NoSlipObstacle<T>&);           \
  template double diffuse_explicit_nu_gradient<T>(const Context&, const Field<T>&, T, T,          \
                                                  const Field<T>&, const ScalarBoundary&);        \
  template double diffuse_explicit_nu_gradient<T>(const Context&, const MacVelocity<T>&, T, T,    \
                                                  const MacVelocity<T>&, const WallVelocity&,     \
                                                  const NoSlipObstacle<T>&);                      \
  template void add_diffusion_nu_gradient_into<T>(                                                \
      const Context&, const Field<T>&, T, const Field<T>&, double*, const ScalarBoundary&);       \
  template void add_diffusion_nu_gradient_into<T>(const Context&, const MacVelocity<T>&, T,       \
                                                  const MacVelocity<T>&, double*,                 \
                                                  const WallVelocity&, const NoSlipObstacle<T>&); \
  template WallVelocity diffuse_wall_velocity_gradient<T>(const Context&, const MacVelocity<T>&,  \
                                                          T, T, const NoSlipObstacle<T>&);        \
  template void diffuse_wall_velocity_gradient_into<T>(const Context&, const MacVelocity<T>&, T,  \
                                                       T, double*, const NoSlipObstacle<T>&);     \
  template SolveReport diffuse_implicit_adjoint<T>(const Context&, const Field<T>&, T, T,         \
                                                   Field<T>&, const ScalarBoundary&,              \
                                                   const SolverOptions&);                         \
  template SolveReport diffuse_implicit_adjoint<T>(const Context&, const CellVector<T>&, T, T,    \
                                                   CellVector<T>&, const ScalarBoundary&,         \
                                                   const SolverOptions&);                         \
  template SolveReport diffuse_implicit_adjoint<T>(const Context&, const MacVelocity<T>&, T, T,   \
                                                   MacVelocity<T>&, const SolverOptions&,         \
                                                   const NoSlipObstacle<T>&);                     \
  template SolveReport diffuse_implicit<T>(const Context&, const MacVelocity<T>&, T, T,           \
                                           MacVelocity<T>&, const SolverOptions&,                 \
                                           const WallVelocity&, const NoSlipObstacle<T>&);
DFLUID_DIFFUSION_INST(float)
DFLUID_DIFFUSION_INST(double)
#undef DFLUID_DIFFUSION_INST

}  // namespace dfluid
