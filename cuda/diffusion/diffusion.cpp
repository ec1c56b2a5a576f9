// Diffusion: explicit and implicit, forward and adjoint, and the viscosity's gradient (see
// dfluid/diffusion.hpp); the wall velocities' gradients are in diffusion_wall_gradient.cpp.
#include "dfluid/diffusion.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/exec.hpp"
#include "core/stencil.hpp"
#include "diffusion/diffusion_stencil.hpp"
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

#define DFLUID_DIFFUSION_INST(T)                                                                  \
  template void diffuse_explicit<T>(const Context&, const Field<T>&, T, T, Field<T>&,             \
                                    const ScalarBoundary&);                                       \
  template void diffuse_explicit<T>(const Context&, const CellVector<T>&, T, T, CellVector<T>&,   \
                                    const ScalarBoundary&);                                       \
  template void diffuse_explicit<T>(const Context&, const MacVelocity<T>&, T, T, MacVelocity<T>&, \
                                    const WallVelocity&, const NoSlipObstacle<T>&);               \
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
