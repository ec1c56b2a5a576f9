// The closed faces of a face-fraction body (dfluid/face_fractions.hpp): velocity advection
// of a Simulation with a no-slip face-fraction body samples the solid's velocity there, not
// the zeros the projection leaves. Per-face code shared by the CPU and CUDA paths.
#include <string>

#include "core/exec.hpp"
#include "dfluid/face_fractions.hpp"

namespace dfluid {

namespace detail::closed_faces {

template <class T>
void check(const Context& ctx, const MacVelocity<T>& v, const Grid& g, const char* what) {
  if (v[0].empty()) throw ShapeMismatch(std::string(what) + " is empty (not allocated)");
  for (int a = 0; a < g.dim; ++a) {
    check::on_grid(v[a], what, g, face_location(a));
    check::accessible(ctx, v[a], what);
  }
}

}  // namespace detail::closed_faces

template <class T>
void fill_closed_faces(const Context& ctx, const MacVelocity<T>& open_fractions,
                       const MacVelocity<T>& u, const MacVelocity<T>* solid_velocity,
                       MacVelocity<T>& out) {
  using detail::closed_faces::check;
  const Grid& g = open_fractions.grid();
  check(ctx, open_fractions, g, "fill_closed_faces: open_fractions");
  check(ctx, u, g, "fill_closed_faces: u");
  check(ctx, out, g, "fill_closed_faces: out");
  if (solid_velocity) check(ctx, *solid_velocity, g, "fill_closed_faces: solid_velocity");
  for (int a = 0; a < g.dim; ++a) {
    View<const T> wv = open_fractions[a].view(), uv = u[a].view();
    View<const T> sv = solid_velocity ? (*solid_velocity)[a].view() : View<const T>{};
    View<T> ov = out[a].view();
    detail::for_each_cell(
        detail::exec_of(ctx), out[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          ov(i, j, k) = wv(i, j, k) > T(0) ? uv(i, j, k) : sv.data ? sv(i, j, k) : T(0);
        });
  }
}

template <class T>
void fill_closed_faces_adjoint(const Context& ctx, const MacVelocity<T>& open_fractions,
                               const MacVelocity<T>& grad_out, MacVelocity<T>& grad_u,
                               MacVelocity<T>* grad_solid) {
  using detail::closed_faces::check;
  const Grid& g = open_fractions.grid();
  check(ctx, open_fractions, g, "fill_closed_faces_adjoint: open_fractions");
  check(ctx, grad_out, g, "fill_closed_faces_adjoint: grad_out");
  check(ctx, grad_u, g, "fill_closed_faces_adjoint: grad_u");
  if (grad_solid) check(ctx, *grad_solid, g, "fill_closed_faces_adjoint: grad_solid");
  for (int a = 0; a < g.dim; ++a) {
    View<const T> wv = open_fractions[a].view(), gv = grad_out[a].view();
    View<T> uv = grad_u[a].view();
    View<T> sv = grad_solid ? (*grad_solid)[a].view() : View<T>{};
    detail::for_each_cell(
        detail::exec_of(ctx), grad_u[a].extents(), DFLUID_LAMBDA(int i, int j, int k) {
          if (wv(i, j, k) > T(0))
            uv(i, j, k) += gv(i, j, k);
          else if (sv.data)
            sv(i, j, k) += gv(i, j, k);
        });
  }
}

#define DFLUID_CLOSED_FACES_INST(T)                                                                \
  template void fill_closed_faces<T>(const Context&, const MacVelocity<T>&, const MacVelocity<T>&, \
                                     const MacVelocity<T>*, MacVelocity<T>&);                      \
  template void fill_closed_faces_adjoint<T>(const Context&, const MacVelocity<T>&,                \
                                             const MacVelocity<T>&, MacVelocity<T>&,               \
                                             MacVelocity<T>*);
DFLUID_CLOSED_FACES_INST(float)
DFLUID_CLOSED_FACES_INST(double)
#undef DFLUID_CLOSED_FACES_INST

}  // namespace dfluid
