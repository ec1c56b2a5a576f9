// The convective outflow condition (BoundaryKind::ConvectiveOutflow): the values its faces
// take in a step, and the adjoint (see dfluid/projection.hpp).
//
// Forward, for every updated side (c = courant > 0), face f with boundary value u_b and
// interior neighbour u_i (the next face inward along the side's axis):
//   w_f = (1 - c) u_b + c u_i        for c <= 1 (explicit upwind: exact transport at c = 1)
//   w_f = (u_b + c u_i) / (1 + c)    for c > 1  (backward-Euler upwind, u_i lagged)
// Either is a convex combination (stable at every dt). Explicit upwind where it is stable:
// it is what semi-Lagrangian advection of the boundary face along U_c gives, and it left
// 0.0069 of a strong vortex leaving the box behind where backward Euler left 0.031 (c = 1/2,
// 24 cells a unit: tests/test_convective_outflow.cpp's vortex on a finer grid and step).
//   values_f = w_f + s_f delta,  delta = -(F_in + sum_conv s_k w_k) / N_c
// with s = -1 on a low side and +1 on a high side (outward), F_in = sum over the Inflow
// faces of s u_in (the net outward flux of the profiles) and N_c the number of updated
// faces: the net outward flux of every held face is then 0 (all faces have the same area).
// Adjoint, with values holding the cotangent g of the values:
//   S = sum_conv s_k g_k;  w-bar_f = g_f - s_f S / N_c;  inflow-bar_k += -s_k S / N_c
//   grad_u(boundary face) += a_b w-bar;  grad_u(interior face) += a_i w-bar  (the weights).
// The sums run in one thread (serial over the side's faces: deterministic, and no host
// wait; a side holds n^(dim-1) faces, small next to the cells the other operators visit).
#include <array>
#include <string>

#include "dfluid/projection.hpp"
#include "pressure/projection_detail.hpp"

namespace dfluid {
namespace {

/// Everything the serial sum kernels read, by value (device-copyable).
template <class T>
struct SideSet {
  T* conv[3][2] = {};    // values (forward) / their cotangent (adjoint) of updated sides
  T* inflow[3][2] = {};  // Inflow profiles (forward) / their cotangents (adjoint)
  Index faces[3] = {0, 0, 0};
  Index n_conv = 0;
};

template <class T>
SideSet<T> side_set(const Grid& g, const ConvectiveOutflowSides<T>& s, const char* fn) {
  SideSet<T> set;
  for (int a = 0; a < g.dim; ++a) {
    set.faces[a] = Index(VelocityBoundary::side_faces(g, a));
    for (int side = 0; side < 2; ++side) {
      const double c = s.courant[a][side];
      if (c != 0) {
        if (!(c > 0) || !s.values[a][side] || g.periodic(a))
          throw InvalidArgument(std::string(fn) + ": side " + side_name(a, side) +
                                " needs courant > 0, a values buffer and a non-periodic axis");
        set.conv[a][side] = s.values[a][side];
        set.n_conv += set.faces[a];
      }
      set.inflow[a][side] = s.inflow[a][side];
    }
  }
  if (set.n_conv == 0)
    throw InvalidArgument(std::string(fn) + ": no side has courant > 0 (nothing to update)");
  return set;
}

/// values of side (a, side) <- a_b u_b + a_i u_i (forward), or the transpose:
/// grad_u(b) += a_b values, grad_u(i) += a_i values (adjoint); the weights as above.
template <class T>
void side_blend(const Context& ctx, const Field<T>& ua, int axis, int side, T c, T* values,
                Field<T>* grad) {
  std::array<int, 3> e = ua.extents();
  const int face = side ? e[axis] - 1 : 0, inner = side ? e[axis] - 2 : 1;
  e[axis] = 1;
  const Index sy = e[0], sz = Index(e[0]) * e[1];
  const int ax = axis;
  const T wb = c <= T(1) ? T(1) - c : T(1) / (T(1) + c), wi = T(1) - wb;
  if (!grad) {
    View<const T> uv = ua.view();
    detail::for_each_cell(
        detail::exec_of(ctx), e, DFLUID_LAMBDA(int i, int j, int k) {
          int b[3] = {i, j, k}, n[3] = {i, j, k};
          b[ax] = face;
          n[ax] = inner;
          values[i + j * sy + k * sz] = wb * uv(b[0], b[1], b[2]) + wi * uv(n[0], n[1], n[2]);
        });
  } else {
    View<T> gv = grad->view();
    detail::for_each_cell(
        detail::exec_of(ctx), e, DFLUID_LAMBDA(int i, int j, int k) {
          int b[3] = {i, j, k}, n[3] = {i, j, k};
          b[ax] = face;
          n[ax] = inner;
          const T g = values[i + j * sy + k * sz];
          gv(b[0], b[1], b[2]) += wb * g;
          gv(n[0], n[1], n[2]) += wi * g;
        });
  }
}

}  // namespace

template <class T>
void convective_outflow_values(const Context& ctx, const MacVelocity<T>& u,
                               const ConvectiveOutflowSides<T>& sides) {
  const Grid& g = u.grid();
  detail::check_velocity(ctx, u, g, "convective_outflow_values");
  const SideSet<T> set = side_set(g, sides, "convective_outflow_values");
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (set.conv[a][s])
        side_blend(ctx, u[a], a, s, T(sides.courant[a][s]), set.conv[a][s],
                   static_cast<Field<T>*>(nullptr));
  const int dim = g.dim;
  detail::for_each_cell(
      detail::exec_of(ctx), std::array<int, 3>{1, 1, 1}, DFLUID_LAMBDA(int, int, int) {
        double flux = 0;  // net outward flux of the held faces, in face velocities
        for (int a = 0; a < dim; ++a)
          for (int s = 0; s < 2; ++s) {
            const T* v = set.conv[a][s] ? set.conv[a][s] : set.inflow[a][s];
            if (!v) continue;
            double f = 0;
            for (Index m = 0; m < set.faces[a]; ++m)
              f += double(v[m]);
            flux += s ? f : -f;
          }
        const double delta = -flux / double(set.n_conv);
        for (int a = 0; a < dim; ++a)
          for (int s = 0; s < 2; ++s)
            if (T* v = set.conv[a][s])
              for (Index m = 0; m < set.faces[a]; ++m)
                v[m] += T(s ? delta : -delta);
      });
}

template <class T>
void convective_outflow_values_adjoint(const Context& ctx, const ConvectiveOutflowSides<T>& sides,
                                       MacVelocity<T>& grad_u) {
  const Grid& g = grad_u.grid();
  detail::check_velocity(ctx, grad_u, g, "convective_outflow_values_adjoint");
  const SideSet<T> set = side_set(g, sides, "convective_outflow_values_adjoint");
  const int dim = g.dim;
  detail::for_each_cell(
      detail::exec_of(ctx), std::array<int, 3>{1, 1, 1}, DFLUID_LAMBDA(int, int, int) {
        double sum = 0;  // S = sum_conv s_k g_k
        for (int a = 0; a < dim; ++a)
          for (int s = 0; s < 2; ++s)
            if (const T* v = set.conv[a][s]) {
              double f = 0;
              for (Index m = 0; m < set.faces[a]; ++m)
                f += double(v[m]);
              sum += s ? f : -f;
            }
        const double d = -sum / double(set.n_conv);  // d(values)/d(flux) applied to g
        for (int a = 0; a < dim; ++a)
          for (int s = 0; s < 2; ++s) {
            T* v = set.conv[a][s] ? set.conv[a][s] : set.inflow[a][s];
            if (!v) continue;
            for (Index m = 0; m < set.faces[a]; ++m)
              v[m] += T(s ? d : -d);
          }
      });
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (set.conv[a][s])
        side_blend(ctx, grad_u[a], a, s, T(sides.courant[a][s]), set.conv[a][s], &grad_u[a]);
}

#define DFLUID_CONV_OUTFLOW_INST(T)                                                 \
  template void convective_outflow_values<T>(const Context&, const MacVelocity<T>&, \
                                             const ConvectiveOutflowSides<T>&);     \
  template void convective_outflow_values_adjoint<T>(                               \
      const Context&, const ConvectiveOutflowSides<T>&, MacVelocity<T>&);
DFLUID_CONV_OUTFLOW_INST(float)
DFLUID_CONV_OUTFLOW_INST(double)
#undef DFLUID_CONV_OUTFLOW_INST

}  // namespace dfluid
