// Argument checks of the advection entry points (cuda/advection/advection_launches.hpp): shapes,
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

template <class T>
void no_overlap(const Field<T>& a, const std::string& name_a, const Field<T>& b,
                const std::string& name_b, const char* op = "advect") {
  if (check::overlap(a, b))
    throw InvalidArgument(std::string(op) + ": " + name_a + " shares memory with " + name_b +
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

inline void check_options(const Context& ctx, const AdvectionOptions& opt) {
  if (opt.scheme != AdvectionScheme::SemiLagrangian && opt.scheme != AdvectionScheme::MacCormack)
    throw InvalidArgument("advect: options.scheme has an unknown value " +
                          std::to_string(int(opt.scheme)));
  if (opt.backtrace != Backtrace::Euler && opt.backtrace != Backtrace::RK2)
    throw InvalidArgument("advect: options.backtrace has an unknown value " +
                          std::to_string(int(opt.backtrace)));
  if (opt.interpolation != Interpolation::Linear && opt.interpolation != Interpolation::Cubic)
    throw InvalidArgument("advect: options.interpolation has an unknown value " +
                          std::to_string(int(opt.interpolation)) +
                          "; use Interpolation::Linear or Interpolation::Cubic");
  if (opt.interpolation == Interpolation::Cubic && ctx.on_gpu() && !DFLUID_WITH_CUDA_CUBIC)
    throw InvalidArgument(
        "advect: options.interpolation = cubic on a CUDA context: this build left cubic "
        "advection out of the GPU code; rebuild with -DDFLUID_CUDA_CUBIC=ON, or use "
        "Interpolation::Linear or a CPU context");
  for (int a = 0; a < 3; ++a)
    for (int s = 0; s < 2; ++s) {
      const auto k = opt.boundary.kind[a][s];
      if (k != ScalarBoundaryKind::ZeroGradient && k != ScalarBoundaryKind::Fixed)
        throw InvalidArgument("advect: options.boundary.kind has an unknown value");
      if (k == ScalarBoundaryKind::Fixed && !std::isfinite(opt.boundary.value[a][s]))
        throw InvalidArgument(std::string("advect: options.boundary.value[") + kAxisName[a] + "][" +
                              (s ? "high" : "low") + "] is not finite");
      for (int c = 0; c < 3; ++c)
        if (!std::isfinite(opt.wall_velocity.v[a][s][c]))
          throw InvalidArgument("advect: options.wall_velocity of side " + side_name(a, s) +
                                " is not finite");
    }
}

template <class T>
T cells_per_velocity(const Grid& g, double dt) {
  return T(dt / g.dx);
}

// ---- adjoint arguments ----

/// A gradient array: same grid, location and memory layout (strides) as the
/// forward array it belongs to (the adjoint scatters with the forward offsets).
/// The tangent's directions (advect_tangent: dq, du) follow the same rule.
template <class T>
void check_grad(const Context& ctx, const Field<T>& gr, const std::string& name,
                const Field<T>& fwd, const char* op = "advect_adjoint") {
  check_array(ctx, gr, std::string(op) + ": " + name, fwd.grid(), fwd.location());
  const View<const T> a = gr.view(), b = fwd.view();
  if (a.sy != b.sy || a.sz != b.sz)
    throw InvalidArgument(std::string(op) + ": " + name +
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
  check_options(ctx, opt);
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
  check_options(ctx, opt);
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

// ---- tangent arguments ----

/// Checks of advect_tangent: inputs as in the forward, directions shaped like
/// the arrays they perturb, and dout sharing no memory with any input.
/// The advected field comes as its arrays (one for a scalar, one per component
/// otherwise) with their names.
template <class T, class U>
void check_tangent(const Context& ctx, const U& u, const U* du, double dt,
                   const AdvectionOptions& opt,
                   const std::vector<std::pair<const Field<T>*, std::string>>& q_parts,
                   const std::vector<std::pair<const Field<T>*, std::string>>& dq_parts,
                   const std::vector<std::pair<const Field<T>*, std::string>>& dout_parts) {
  const Grid& g = q_parts[0].first->grid();
  check_vector(ctx, u, "advect_tangent: u", g);
  check::positive_dt(dt, "advect_tangent: dt");
  check_options(ctx, opt);
  std::vector<std::pair<const Field<T>*, std::string>> in = q_parts;
  add_inputs(in, u, "u", g.dim);
  // du before dq: in self-advection (dq = du) the message names what the caller passed.
  if (du)
    for (int a = 0; a < g.dim; ++a) {
      check_grad(ctx, (*du)[a], comp_name("du", a), u[a], "advect_tangent");
      in.emplace_back(&(*du)[a], comp_name("du", a));
    }
  for (std::size_t p = 0; p < q_parts.size(); ++p) {
    check_array(ctx, *q_parts[p].first, "advect_tangent: " + q_parts[p].second, g,
                q_parts[p].first->location());
    check_grad(ctx, *dq_parts[p].first, dq_parts[p].second, *q_parts[p].first, "advect_tangent");
    check_array(ctx, *dout_parts[p].first, "advect_tangent: " + dout_parts[p].second, g,
                q_parts[p].first->location());
    in.push_back(dq_parts[p]);
  }
  for (std::size_t p = 0; p < dout_parts.size(); ++p) {
    for (const auto& i : in)
      no_overlap(*dout_parts[p].first, dout_parts[p].second, *i.first, i.second, "advect_tangent");
    for (std::size_t o = 0; o < p; ++o)
      no_overlap(*dout_parts[p].first, dout_parts[p].second, *dout_parts[o].first,
                 dout_parts[o].second, "advect_tangent");
  }
}

}  // namespace dfluid::advection
