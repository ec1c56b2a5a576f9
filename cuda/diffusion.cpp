// Diffusion: explicit and implicit (see dfluid/diffusion.hpp).
#include "dfluid/diffusion.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "exec.hpp"
#include "stencil.hpp"

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
bool overlaps(const Field<T>& a, const Field<T>& b) {
  if (a.empty() || b.empty()) return false;
  const View<const T> va = a.view(), vb = b.view();
  const T* a0 = va.data;
  const T* a1 = a0 + va.offset(va.nx - 1, va.ny - 1, va.nz - 1) + 1;
  const T* b0 = vb.data;
  const T* b1 = b0 + vb.offset(vb.nx - 1, vb.ny - 1, vb.nz - 1) + 1;
  return a0 < b1 && b0 < a1;
}

template <class T>
void check_no_alias(const Field<T>& in, const Field<T>& out, const char* fn) {
  if (overlaps(in, out))
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

}  // namespace detail::diffusion

double max_stable_diffusion_dt(const Grid& g, double nu) {
  detail::diffusion::check_nu(nu, "max_stable_diffusion_dt");
  if (nu == 0) return std::numeric_limits<double>::infinity();
  return g.dx * g.dx / (2.0 * g.dim * nu);
}

template <class T>
void diffuse_explicit(const Context& ctx, const Field<T>& q, T nu, T dt, Field<T>& out,
                      const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit";
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_explicit: dt");
  check::on_grid(q, "diffuse_explicit: q", q.grid(), Location::Cell);
  check::same_shape(q, "diffuse_explicit: q", out, "out");
  check::accessible(ctx, q, "diffuse_explicit: q");
  check::accessible(ctx, out, "diffuse_explicit: out");
  check_no_alias(q, out, fn);
  check_stable(q.grid(), double(nu), double(dt), fn);
  explicit_array(detail::exec_of(ctx), q, detail::cell_stencil<T>(q.grid(), bc), T(nu * dt), out);
}

template <class T>
void diffuse_explicit(const Context& ctx, const CellVector<T>& q, T nu, T dt, CellVector<T>& out,
                      const ScalarBoundary& bc) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit(CellVector)";
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_explicit(CellVector): dt");
  if (q[0].empty()) throw ShapeMismatch("diffuse_explicit(CellVector): q is empty");
  const Grid& g = q.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(q[a], "diffuse_explicit(CellVector): q component", g, Location::Cell);
    check::on_grid(out[a], "diffuse_explicit(CellVector): out component", g, Location::Cell);
    check::accessible(ctx, q[a], "diffuse_explicit(CellVector): q");
    check::accessible(ctx, out[a], "diffuse_explicit(CellVector): out");
    for (int b = 0; b < g.dim; ++b)
      check_no_alias(q[a], out[b], fn);
  }
  check_stable(g, double(nu), double(dt), fn);
  const auto s = detail::cell_stencil<T>(g, bc);
  for (int a = 0; a < g.dim; ++a)
    explicit_array(detail::exec_of(ctx), q[a], s, T(nu * dt), out[a]);
}

template <class T>
void diffuse_explicit(const Context& ctx, const MacVelocity<T>& u, T nu, T dt,
                      MacVelocity<T>& out) {
  using namespace detail::diffusion;
  const char* fn = "diffuse_explicit(MacVelocity)";
  check_nu(double(nu), fn);
  check::positive_dt(double(dt), "diffuse_explicit(MacVelocity): dt");
  if (u[0].empty()) throw ShapeMismatch("diffuse_explicit(MacVelocity): u is empty");
  const Grid& g = u.grid();
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(u[a], "diffuse_explicit(MacVelocity): u component", g, face_location(a));
    check::on_grid(out[a], "diffuse_explicit(MacVelocity): out component", g, face_location(a));
    check::accessible(ctx, u[a], "diffuse_explicit(MacVelocity): u");
    check::accessible(ctx, out[a], "diffuse_explicit(MacVelocity): out");
    for (int b = 0; b < g.dim; ++b)
      check_no_alias(u[a], out[b], fn);
  }
  check_stable(g, double(nu), double(dt), fn);
  for (int a = 0; a < g.dim; ++a)
    explicit_array(detail::exec_of(ctx), u[a], detail::face_stencil<T>(g, a), T(nu * dt), out[a]);
}

#define DFLUID_DIFFUSION_INST(T)                                                                \
  template void diffuse_explicit<T>(const Context&, const Field<T>&, T, T, Field<T>&,           \
                                    const ScalarBoundary&);                                     \
  template void diffuse_explicit<T>(const Context&, const CellVector<T>&, T, T, CellVector<T>&, \
                                    const ScalarBoundary&);                                     \
  template void diffuse_explicit<T>(const Context&, const MacVelocity<T>&, T, T, MacVelocity<T>&);
DFLUID_DIFFUSION_INST(float)
DFLUID_DIFFUSION_INST(double)
#undef DFLUID_DIFFUSION_INST

}  // namespace dfluid
