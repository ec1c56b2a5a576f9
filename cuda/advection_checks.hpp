// Argument checks of the advection entry points (cuda/advection.cpp): shapes,
// memory spaces, options, and that outputs share no memory with inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dfluid/advection.hpp"
#include "dfluid/field.hpp"

namespace dfluid::advection {

const char* const kAxisName[3] = {"x", "y", "z"};

inline std::string comp_name(const char* base, int a) {
  return std::string(base) + "[" + kAxisName[a] + "]";
}

/// Byte range [begin, end) spanned by a field's values.
template <class T>
std::pair<std::uintptr_t, std::uintptr_t> byte_range(const Field<T>& f) {
  const View<const T> v = f.view();
  const auto b = reinterpret_cast<std::uintptr_t>(f.data());
  return {b, b + sizeof(T) * std::uintptr_t(v.offset(v.nx - 1, v.ny - 1, v.nz - 1) + 1)};
}

template <class T>
void no_overlap(const Field<T>& a, const std::string& name_a, const Field<T>& b,
                const std::string& name_b) {
  if (a.empty() || b.empty()) return;
  auto ra = byte_range(a), rb = byte_range(b);
  if (ra.first < rb.second && rb.first < ra.second)
    throw InvalidArgument("advect: " + name_a + " shares memory with " + name_b +
                          "; advection cannot run in place, pass a separate output field");
}

/// Common checks of one array (q, out, scratch against q's shape and space).
template <class T>
void check_array(const Context& ctx, const Field<T>& f, const std::string& name, const Grid& g,
                 Location loc) {
  check::on_grid(f, name.c_str(), g, loc);
  check::accessible(ctx, f, name.c_str());
}

template <class T>
void check_vector(const Context& ctx, const MacVelocity<T>& u, const char* name, const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    check_array(ctx, u[a], comp_name(name, a), g, face_location(a));
}

template <class T>
void check_vector(const Context& ctx, const CellVector<T>& u, const char* name, const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    check_array(ctx, u[a], comp_name(name, a), g, Location::Cell);
}

inline void check_options(const AdvectionOptions& opt) {
  if (opt.scheme != AdvectionScheme::SemiLagrangian && opt.scheme != AdvectionScheme::MacCormack)
    throw InvalidArgument("advect: options.scheme has an unknown value " +
                          std::to_string(int(opt.scheme)));
  if (opt.backtrace != Backtrace::Euler && opt.backtrace != Backtrace::RK2)
    throw InvalidArgument("advect: options.backtrace has an unknown value " +
                          std::to_string(int(opt.backtrace)));
  for (int a = 0; a < 3; ++a)
    for (int s = 0; s < 2; ++s) {
      const auto k = opt.boundary.kind[a][s];
      if (k != ScalarBoundaryKind::ZeroGradient && k != ScalarBoundaryKind::Fixed)
        throw InvalidArgument("advect: options.boundary.kind has an unknown value");
      if (k == ScalarBoundaryKind::Fixed && !std::isfinite(opt.boundary.value[a][s]))
        throw InvalidArgument(std::string("advect: options.boundary.value[") + kAxisName[a] + "][" +
                              (s ? "high" : "low") + "] is not finite");
    }
}

template <class T>
T cells_per_velocity(const Grid& g, double dt) {
  return T(dt / g.dx);
}

// ---- adjoint arguments ----

/// A gradient array: same grid, location and memory layout (strides) as the
/// forward array it belongs to (the adjoint scatters with the forward offsets).
template <class T>
void check_grad(const Context& ctx, const Field<T>& gr, const std::string& name,
                const Field<T>& fwd) {
  check_array(ctx, gr, "advect_adjoint: " + name, fwd.grid(), fwd.location());
  const View<const T> a = gr.view(), b = fwd.view();
  if (a.sy != b.sy || a.sz != b.sz)
    throw InvalidArgument("advect_adjoint: " + name +
                          " must have the same memory layout (strides) as its forward field");
}

/// Gradient outputs must not share memory with the inputs they are computed from.
template <class T>
void grad_no_overlap(const Field<T>& gr, const std::string& name,
                     const std::vector<std::pair<const Field<T>*, std::string>>& inputs) {
  for (const auto& in : inputs)
    no_overlap(gr, name, *in.first, in.second);
}

template <class T, class Vec>
void add_inputs(std::vector<std::pair<const Field<T>*, std::string>>& v, const Vec& f,
                const char* name, int dim) {
  for (int a = 0; a < dim; ++a)
    v.emplace_back(&f[a], comp_name(name, a));
}

/// Checks of the vector overloads (MAC velocity or cell vector): every
/// component of q, u and out, options, dt, and no aliasing of out.
template <class T, class V>
void check_vector_advect(const Context& ctx, const V& q, const V& u, const V& out, const V* scratch,
                         double dt, const AdvectionOptions& opt) {
  if (q[0].empty()) throw ShapeMismatch("advect: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_vector(ctx, q, "advect: q", g);
  check_vector(ctx, u, "advect: u", g);
  check_vector(ctx, out, "advect: out", g);
  check::positive_dt(dt, "advect: dt");
  check_options(opt);
  for (int a = 0; a < g.dim; ++a)
    for (int b = 0; b < g.dim; ++b) {
      no_overlap(out[a], comp_name("out", a), q[b], comp_name("q", b));
      no_overlap(out[a], comp_name("out", a), u[b], comp_name("u", b));
      if (a != b) no_overlap(out[a], comp_name("out", a), out[b], comp_name("out", b));
    }
  if (opt.scheme != AdvectionScheme::MacCormack || !scratch) return;
  check_vector(ctx, *scratch, "advect: scratch", g);
  for (int a = 0; a < g.dim; ++a)
    for (int b = 0; b < g.dim; ++b) {
      const std::string s = comp_name("scratch", a);
      no_overlap((*scratch)[a], s, q[b], comp_name("q", b));
      no_overlap((*scratch)[a], s, u[b], comp_name("u", b));
      no_overlap((*scratch)[a], s, out[b], comp_name("out", b));
    }
}

/// Checks of the vector adjoint overloads: inputs as in the forward, gradients
/// shaped like their forward arrays and sharing no memory with the inputs.
template <class T, class V>
void check_vector_adjoint(const Context& ctx, const V& q, const V& u, const V& grad_out,
                          const V& grad_q, const V* grad_u, double dt,
                          const AdvectionOptions& opt) {
  if (q[0].empty()) throw ShapeMismatch("advect_adjoint: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_vector(ctx, q, "advect_adjoint: q", g);
  check_vector(ctx, u, "advect_adjoint: u", g);
  check_vector(ctx, grad_out, "advect_adjoint: grad_out", g);
  check::positive_dt(dt, "advect_adjoint: dt");
  check_options(opt);
  std::vector<std::pair<const Field<T>*, std::string>> in;
  add_inputs(in, q, "q", g.dim);
  add_inputs(in, u, "u", g.dim);
  add_inputs(in, grad_out, "grad_out", g.dim);
  for (int a = 0; a < g.dim; ++a) {
    check_grad(ctx, grad_q[a], comp_name("grad_q", a), q[a]);
    grad_no_overlap(grad_q[a], comp_name("grad_q", a), in);
    if (grad_u) {
      check_grad(ctx, (*grad_u)[a], comp_name("grad_u", a), u[a]);
      grad_no_overlap((*grad_u)[a], comp_name("grad_u", a), in);
    }
  }
}

}  // namespace dfluid::advection
