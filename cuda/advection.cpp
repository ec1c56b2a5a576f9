// Advection operators (see dfluid/advection.hpp): per-cell functions, then the
// launches and the public entry points. The sampling math is in interpolation.hpp.
#include "dfluid/advection.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "exec.hpp"
#include "interpolation.hpp"

namespace dfluid {

// ===========================================================================
// Per-cell functions (pure functions of their inputs; the adjoint recomputes
// the same departure points and stencils from the step's input state).
// ===========================================================================
namespace advection {

using interp::Source;

/// Semi-Lagrangian value at sample (i, j, k) of an array at `face_axis`
/// (-1: cell centres): q interpolated at the departure point of a backtrace
/// over dtc = dt / dx through the velocity `vel`.
template <class T, int D, class Vel>
DFLUID_HD inline T semi_lagrangian_cell(const Source<T>& q, const Vel& vel, T dtc, int rk2,
                                        int face_axis, int i, int j, int k) {
  T x[3], xd[3];
  interp::node_position(i, j, k, face_axis, x);
  interp::departure_point(vel, x, dtc, rk2, xd);
  return interp::sample<T, D>(q, xd);
}

/// MacCormack value at sample (i, j, k), given q and q^ = SL(q; dt) (both
/// read at the sample itself and around it):
///   q~ = SL(q^; -dt),  q_new = q^ + (q - q~)/2,
/// clamped (when `clamp`) to the range of q's stencil values around the
/// departure point of the forward pass.
template <class T, int D, class Vel>
DFLUID_HD inline T maccormack_cell(const Source<T>& q, const Source<T>& qhat, const Vel& vel, T dtc,
                                   int rk2, int clamp, int face_axis, int i, int j, int k) {
  T x[3], xd[3], xf[3];
  interp::node_position(i, j, k, face_axis, x);
  interp::departure_point(vel, x, -dtc, rk2, xf);  // forward trace (backward pass)
  const T qtilde = interp::sample<T, D>(qhat, xf);
  const T corrected = qhat.v(i, j, k) + T(0.5) * (q.v(i, j, k) - qtilde);
  if (!clamp) return corrected;
  interp::departure_point(vel, x, dtc, rk2, xd);
  T lo, hi;
  interp::stencil_range<T, D>(interp::make_stencil<T, D>(q, xd), q.v, lo, hi);
  return interp::min_of(interp::max_of(corrected, lo), hi);
}

// ===========================================================================
// Launches
// ===========================================================================

template <class T, int D, class Vel>
void semi_lagrangian_pass(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                          Source<T> q, Vel vel, T dtc, int rk2, View<T> out) {
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        out(i, j, k) = semi_lagrangian_cell<T, D>(q, vel, dtc, rk2, face_axis, i, j, k);
      });
}

template <class T, int D, class Vel>
void maccormack_pass(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                     Source<T> q, Source<T> qhat, Vel vel, T dtc, int rk2, int clamp, View<T> out) {
  detail::for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        out(i, j, k) = maccormack_cell<T, D>(q, qhat, vel, dtc, rk2, clamp, face_axis, i, j, k);
      });
}

/// Advects one array (given as a Source with its location) through `vel`.
/// `tmp` (same shape as q) holds q^ for MacCormack.
template <class T, int D, class Vel>
void advect_array(const detail::Exec& ex, const std::array<int, 3>& ext, int face_axis,
                  const Source<T>& q, const Vel& vel, T dtc, const AdvectionOptions& opt,
                  View<T> out, View<T> tmp) {
  const int rk2 = opt.backtrace == Backtrace::RK2 ? 1 : 0;
  if (opt.scheme == AdvectionScheme::SemiLagrangian) {
    semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, out);
    return;
  }
  semi_lagrangian_pass<T, D>(ex, ext, face_axis, q, vel, dtc, rk2, tmp);
  Source<T> qhat = q;  // same layout and boundary rule
  qhat.v = tmp;
  maccormack_pass<T, D>(ex, ext, face_axis, q, qhat, vel, dtc, rk2, opt.maccormack_clamp ? 1 : 0,
                        out);
}

template <class T, int D>
interp::MacSampler<T, D> mac_sampler(const MacVelocity<T>& u) {
  interp::MacSampler<T, D> s;
  for (int a = 0; a < D; ++a)
    s.c[a] = interp::face_source(u[a], a);
  return s;
}

template <class T, int D>
interp::CellSampler<T, D> cell_sampler(const CellVector<T>& u, const ScalarBoundary& b) {
  interp::CellSampler<T, D> s;
  for (int a = 0; a < D; ++a)
    s.c[a] = interp::cell_source(u[a], b);
  return s;
}

template <class T, int D>
void advect_scalar(const detail::Exec& ex, const Field<T>& q, const MacVelocity<T>& u, T dtc,
                   Field<T>& out, const AdvectionOptions& opt, Field<T>* tmp) {
  advect_array<T, D>(ex, q.extents(), -1, interp::cell_source(q, opt.boundary),
                     mac_sampler<T, D>(u), dtc, opt, out.view(), tmp ? tmp->view() : View<T>{});
}

template <class T, int D>
void advect_mac(const detail::Exec& ex, const MacVelocity<T>& q, const MacVelocity<T>& u, T dtc,
                MacVelocity<T>& out, const AdvectionOptions& opt, MacVelocity<T>* tmp) {
  const interp::MacSampler<T, D> vel = mac_sampler<T, D>(u);
  for (int a = 0; a < D; ++a)
    advect_array<T, D>(ex, q[a].extents(), a, interp::face_source(q[a], a), vel, dtc, opt,
                       out[a].view(), tmp ? (*tmp)[a].view() : View<T>{});
}

template <class T, int D>
void advect_cell_vector(const detail::Exec& ex, const CellVector<T>& q, const CellVector<T>& u,
                        T dtc, CellVector<T>& out, const AdvectionOptions& opt,
                        CellVector<T>* tmp) {
  const interp::CellSampler<T, D> vel = cell_sampler<T, D>(u, opt.boundary);
  for (int a = 0; a < D; ++a)
    advect_array<T, D>(ex, q[a].extents(), -1, interp::cell_source(q[a], opt.boundary), vel, dtc,
                       opt, out[a].view(), tmp ? (*tmp)[a].view() : View<T>{});
}

// ===========================================================================
// Argument checks
// ===========================================================================

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
void check_mac(const Context& ctx, const MacVelocity<T>& u, const char* name, const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    check_array(ctx, u[a], comp_name(name, a), g, face_location(a));
}

template <class T>
void check_cell_vector(const Context& ctx, const CellVector<T>& u, const char* name,
                       const Grid& g) {
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

}  // namespace advection

// ===========================================================================
// Public entry points
// ===========================================================================

const char* to_string(Backtrace b) {
  switch (b) {
    case Backtrace::Euler:
      return "euler";
    case Backtrace::RK2:
      return "rk2";
  }
  return "?";
}

const char* to_string(AdvectionScheme s) {
  switch (s) {
    case AdvectionScheme::SemiLagrangian:
      return "semi-lagrangian";
    case AdvectionScheme::MacCormack:
      return "maccormack";
  }
  return "?";
}

Backtrace parse_backtrace(const std::string& s) {
  if (s == "euler") return Backtrace::Euler;
  if (s == "rk2" || s == "midpoint") return Backtrace::RK2;
  throw InvalidArgument("backtrace: unknown value '" + s + "'; use euler or rk2");
}

AdvectionScheme parse_advection_scheme(const std::string& s) {
  if (s == "semi-lagrangian" || s == "sl" || s == "semilagrangian")
    return AdvectionScheme::SemiLagrangian;
  if (s == "maccormack") return AdvectionScheme::MacCormack;
  throw InvalidArgument("advection scheme: unknown value '" + s +
                        "'; use semi-lagrangian (sl) or maccormack");
}

template <class T>
void advect(const Context& ctx, const Field<T>& q, const MacVelocity<T>& u, double dt,
            Field<T>& out, const AdvectionOptions& opt, Field<T>* scratch) {
  using namespace advection;
  if (q.empty()) throw ShapeMismatch("advect: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_array(ctx, q, "advect: q", g, Location::Cell);
  check_mac(ctx, u, "advect: u", g);
  check_array(ctx, out, "advect: out", g, Location::Cell);
  check::positive_dt(dt, "advect: dt");
  check_options(opt);
  no_overlap(out, "out", q, "q");
  for (int a = 0; a < g.dim; ++a)
    no_overlap(out, "out", u[a], comp_name("u", a));
  const bool mc = opt.scheme == AdvectionScheme::MacCormack;
  Field<T> own;
  Field<T>* tmp = nullptr;
  if (mc) {
    if (scratch) {
      check_array(ctx, *scratch, "advect: scratch", g, Location::Cell);
      no_overlap(*scratch, "scratch", q, "q");
      no_overlap(*scratch, "scratch", out, "out");
      for (int a = 0; a < g.dim; ++a)
        no_overlap(*scratch, "scratch", u[a], comp_name("u", a));
      tmp = scratch;
    } else {
      own = Field<T>(ctx, g, Location::Cell);
      tmp = &own;
    }
  }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  switch (g.dim) {
    case 1:
      advect_scalar<T, 1>(ex, q, u, dtc, out, opt, tmp);
      break;
    case 2:
      advect_scalar<T, 2>(ex, q, u, dtc, out, opt, tmp);
      break;
    default:
      advect_scalar<T, 3>(ex, q, u, dtc, out, opt, tmp);
      break;
  }
}

template <class T>
void advect(const Context& ctx, const MacVelocity<T>& q, const MacVelocity<T>& u, double dt,
            MacVelocity<T>& out, const AdvectionOptions& opt, MacVelocity<T>* scratch) {
  using namespace advection;
  if (q[0].empty()) throw ShapeMismatch("advect: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_mac(ctx, q, "advect: q", g);
  check_mac(ctx, u, "advect: u", g);
  check_mac(ctx, out, "advect: out", g);
  check::positive_dt(dt, "advect: dt");
  check_options(opt);
  for (int a = 0; a < g.dim; ++a)
    for (int b = 0; b < g.dim; ++b) {
      no_overlap(out[a], comp_name("out", a), q[b], comp_name("q", b));
      no_overlap(out[a], comp_name("out", a), u[b], comp_name("u", b));
      if (a != b) no_overlap(out[a], comp_name("out", a), out[b], comp_name("out", b));
    }
  const bool mc = opt.scheme == AdvectionScheme::MacCormack;
  MacVelocity<T> own;
  MacVelocity<T>* tmp = nullptr;
  if (mc) {
    if (scratch) {
      check_mac(ctx, *scratch, "advect: scratch", g);
      for (int a = 0; a < g.dim; ++a)
        for (int b = 0; b < g.dim; ++b) {
          const std::string s = comp_name("scratch", a);
          no_overlap((*scratch)[a], s, q[b], comp_name("q", b));
          no_overlap((*scratch)[a], s, u[b], comp_name("u", b));
          no_overlap((*scratch)[a], s, out[b], comp_name("out", b));
        }
      tmp = scratch;
    } else {
      own = MacVelocity<T>(ctx, g);
      tmp = &own;
    }
  }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  switch (g.dim) {
    case 1:
      advect_mac<T, 1>(ex, q, u, dtc, out, opt, tmp);
      break;
    case 2:
      advect_mac<T, 2>(ex, q, u, dtc, out, opt, tmp);
      break;
    default:
      advect_mac<T, 3>(ex, q, u, dtc, out, opt, tmp);
      break;
  }
}

template <class T>
void advect(const Context& ctx, const CellVector<T>& q, const CellVector<T>& u, double dt,
            CellVector<T>& out, const AdvectionOptions& opt, CellVector<T>* scratch) {
  using namespace advection;
  if (q[0].empty()) throw ShapeMismatch("advect: q is empty (not allocated)");
  const Grid& g = q.grid();
  check_cell_vector(ctx, q, "advect: q", g);
  check_cell_vector(ctx, u, "advect: u", g);
  check_cell_vector(ctx, out, "advect: out", g);
  check::positive_dt(dt, "advect: dt");
  check_options(opt);
  for (int a = 0; a < g.dim; ++a)
    for (int b = 0; b < g.dim; ++b) {
      no_overlap(out[a], comp_name("out", a), q[b], comp_name("q", b));
      no_overlap(out[a], comp_name("out", a), u[b], comp_name("u", b));
      if (a != b) no_overlap(out[a], comp_name("out", a), out[b], comp_name("out", b));
    }
  const bool mc = opt.scheme == AdvectionScheme::MacCormack;
  CellVector<T> own;
  CellVector<T>* tmp = nullptr;
  if (mc) {
    if (scratch) {
      check_cell_vector(ctx, *scratch, "advect: scratch", g);
      for (int a = 0; a < g.dim; ++a)
        for (int b = 0; b < g.dim; ++b) {
          const std::string s = comp_name("scratch", a);
          no_overlap((*scratch)[a], s, q[b], comp_name("q", b));
          no_overlap((*scratch)[a], s, u[b], comp_name("u", b));
          no_overlap((*scratch)[a], s, out[b], comp_name("out", b));
        }
      tmp = scratch;
    } else {
      own = CellVector<T>(ctx, g);
      tmp = &own;
    }
  }
  const detail::Exec ex = detail::exec_of(ctx);
  const T dtc = cells_per_velocity<T>(g, dt);
  switch (g.dim) {
    case 1:
      advect_cell_vector<T, 1>(ex, q, u, dtc, out, opt, tmp);
      break;
    case 2:
      advect_cell_vector<T, 2>(ex, q, u, dtc, out, opt, tmp);
      break;
    default:
      advect_cell_vector<T, 3>(ex, q, u, dtc, out, opt, tmp);
      break;
  }
}

#define DFLUID_ADVECTION_INST(T)                                                                \
  template void advect<T>(const Context&, const Field<T>&, const MacVelocity<T>&, double,       \
                          Field<T>&, const AdvectionOptions&, Field<T>*);                       \
  template void advect<T>(const Context&, const MacVelocity<T>&, const MacVelocity<T>&, double, \
                          MacVelocity<T>&, const AdvectionOptions&, MacVelocity<T>*);           \
  template void advect<T>(const Context&, const CellVector<T>&, const CellVector<T>&, double,   \
                          CellVector<T>&, const AdvectionOptions&, CellVector<T>*);
DFLUID_ADVECTION_INST(float)
DFLUID_ADVECTION_INST(double)
#undef DFLUID_ADVECTION_INST

}  // namespace dfluid
