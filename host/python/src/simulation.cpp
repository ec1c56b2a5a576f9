// State, Gradient, Simulation, Rollout (and their results) of one precision T.
//
// Every array crossing this file is wrapped, never copied: a State made with State.wrap(...)
// computes in the caller's arrays (numpy, torch, jax, CuPy), and the arrays a State, Gradient
// or RolloutResult hands out view dfluid's own memory, kept alive by the object they came
// from. The only copies are the ones the C++ API makes itself (a Rollout copies the initial
// state into its work state, as in C++).
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <memory>
#include <optional>

#include "bindings.hpp"
#include "boundary.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::py {

namespace {

bool is_list_or_tuple(nb::handle h) {
  return PyList_Check(h.ptr()) || PyTuple_Check(h.ptr());
}

/// Keeps every item of a list/tuple alive (the arrays themselves: the caller may change the
/// list afterwards).
void keep_items(nb::list& keep, nb::handle seq) {
  for (size_t i = 0; i < nb::len(seq); ++i)
    keep.append(seq[i]);
}

std::string item(const std::string& name, size_t i) {
  return name + "[" + std::to_string(i) + "]";
}

/// A MAC velocity wrapping a list/tuple of `dim` arrays (x component first).
template <class T>
std::vector<MacVelocity<T>> wrap_mac(const Context& ctx, nb::handle seq, const std::string& name,
                                     const Grid& g, ArrayRules rules) {
  if (!is_list_or_tuple(seq) || nb::len(seq) != size_t(g.dim))
    throw InvalidArgument(name + ": expected a tuple of " + std::to_string(g.dim) +
                          " arrays (the velocity components on the faces normal to x" +
                          (g.dim > 1 ? ", y" : "") + (g.dim > 2 ? ", z" : "") + "), got " +
                          (is_list_or_tuple(seq)
                               ? std::to_string(nb::len(seq)) + " items"
                               : "a " + std::string(nb::type_name(seq.type()).c_str())));
  const int count = rules.batch >= 0 ? rules.batch : 1;
  std::vector<MacVelocity<T>> out(static_cast<size_t>(count));
  for (int a = 0; a < g.dim; ++a) {
    std::vector<Field<T>> f =
        wrap_array<T>(ctx, seq[size_t(a)], item(name, size_t(a)), g, face_location(a), rules);
    for (int k = 0; k < count; ++k)
      out[size_t(k)].comp[size_t(a)] = std::move(f[size_t(k)]);
  }
  return out;
}

template <class T>
MacVelocity<T> alias_mac(const MacVelocity<T>& u) {
  MacVelocity<T> v;
  for (int a = 0; a < u.dim(); ++a)
    v.comp[size_t(a)] = u[a].alias();
  return v;
}

template <class T>
nb::tuple mac_views(const MacVelocity<T>& u, nb::handle owner, int dev) {
  nb::list l;
  for (int a = 0; a < u.dim(); ++a)
    l.append(view_array(u[a], owner, dev));
  return nb::tuple(l);
}

template <class T>
nb::list field_views(const std::vector<Field<T>>& fs, nb::handle owner, int dev) {
  nb::list l;
  for (const Field<T>& f : fs)
    l.append(view_array(f, owner, dev));
  return l;
}

const char* dtype_of(float) {
  return "float32";
}
const char* dtype_of(double) {
  return "float64";
}

// ------------------------------------------------------------------------------ State ----

template <class T>
struct PyState {
  Context ctx;
  SmokeState<T> s;
  nb::list keep;  ///< the caller's arrays a wrapped state computes in, or the owner of aliases
};

template <class T>
struct PyGradient {
  Context ctx;
  SmokeGradient<T> g;
  nb::list keep;
};

/// A State object that aliases `s` (no copy), keeping `owner` alive.
template <class T>
nb::object alias_state(const Context& ctx, const SmokeState<T>& s, nb::handle owner) {
  auto* p = new PyState<T>{ctx, {}, {}};
  p->s.velocity = alias_mac(s.velocity);
  for (const Field<T>& f : s.scalars)
    p->s.scalars.push_back(f.alias());
  p->s.scalar_names = s.scalar_names;
  p->s.pressure = s.pressure.alias();
  if (owner.is_valid()) p->keep.append(owner);
  return nb::cast(p, nb::rv_policy::take_ownership);
}

template <class T>
nb::object alias_gradient(const Context& ctx, const SmokeGradient<T>& g, nb::handle owner) {
  auto* p = new PyGradient<T>{ctx, {}, {}};
  p->g.velocity = alias_mac(g.velocity);
  for (const Field<T>& f : g.scalars)
    p->g.scalars.push_back(f.alias());
  if (!g.pressure.empty()) p->g.pressure = g.pressure.alias();
  if (owner.is_valid()) p->keep.append(owner);
  return nb::cast(p, nb::rv_policy::take_ownership);
}

/// A step's controls wrapping the caller's arrays (force: tuple of components; sources: list
/// per scalar, None entries allowed). `batch` >= 0: per-step arrays with a leading step axis.
template <class T>
struct WrappedControls {
  std::vector<MacVelocity<T>> force;           // [step] (empty: none)
  std::vector<std::vector<Field<T>>> sources;  // [scalar][step] (empty inner: none)
  std::vector<StepControls<T>> per_step;

  WrappedControls(const Context& ctx, const Grid& g, nb::handle force_obj, nb::handle sources_obj,
                  int num_scalars, int batch, const char* force_name, const char* sources_name,
                  bool writable = false) {
    ArrayRules rules;
    rules.batch = batch;
    rules.writable = writable;
    const int n = batch >= 0 ? batch : 1;
    if (force_obj.is_valid() && !force_obj.is_none())
      force = wrap_mac<T>(ctx, force_obj, force_name, g, rules);
    if (sources_obj.is_valid() && !sources_obj.is_none()) {
      if (!is_list_or_tuple(sources_obj) || nb::len(sources_obj) > size_t(num_scalars))
        throw InvalidArgument(std::string(sources_name) + ": expected a list of at most " +
                              std::to_string(num_scalars) +
                              " arrays (one per scalar of the state, None for none)");
      for (size_t i = 0; i < nb::len(sources_obj); ++i) {
        nb::handle h = sources_obj[i];
        if (h.is_none())
          sources.emplace_back();
        else
          sources.push_back(wrap_array<T>(ctx, h, item(sources_name, i), g, Location::Cell, rules));
      }
    }
    per_step.resize(size_t(n));
    for (int k = 0; k < n; ++k) {
      if (!force.empty()) per_step[size_t(k)].force = &force[size_t(k)];
      for (auto& s : sources)
        per_step[size_t(k)].sources.push_back(s.empty() ? nullptr : &s[size_t(k)]);
    }
  }
};

template <class T>
void bind_state(nb::module_& m, const std::string& suffix) {
  nb::class_<PyState<T>>(m, ("State" + suffix).c_str(),
                         "A smoke state: MAC velocity, cell-centred scalars and the last "
                         "pressure (the next step's warm start). Its arrays view dfluid's "
                         "memory (owning state) or are the caller's own (State.wrap).")
      .def(
          "__init__",
          [](PyState<T>* self, const Context& ctx, const Grid& grid,
             std::vector<std::string> scalars) {
            new (self) PyState<T>{ctx, SmokeState<T>(ctx, grid, std::move(scalars)), {}};
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("scalars") = std::vector<std::string>{"density"},
          "A zero state allocated by dfluid in ctx's memory space.")
      .def_static(
          "wrap",
          [](const Context& ctx, const Grid& grid, nb::handle velocity, nb::handle scalars,
             nb::handle pressure, std::optional<std::vector<std::string>> names) {
            auto* p = new PyState<T>{ctx, {}, {}};
            std::unique_ptr<PyState<T>> guard(p);
            ArrayRules w;
            w.writable = true;
            p->s.velocity = std::move(wrap_mac<T>(ctx, velocity, "velocity", grid, w)[0]);
            keep_items(p->keep, velocity);
            if (!is_list_or_tuple(scalars))
              throw InvalidArgument(
                  "scalars: expected a list of arrays (cell-centred, one per "
                  "scalar), got a " +
                  std::string(nb::type_name(scalars.type()).c_str()));
            for (size_t i = 0; i < nb::len(scalars); ++i) {
              p->s.scalars.push_back(
                  wrap_field<T>(ctx, scalars[i], item("scalars", i), grid, Location::Cell, true));
              p->s.scalar_names.push_back(
                  names && i < names->size() ? (*names)[i] : "scalar" + std::to_string(i));
            }
            if (names && names->size() != p->s.scalars.size())
              throw InvalidArgument("names: " + std::to_string(names->size()) + " names for " +
                                    std::to_string(p->s.scalars.size()) + " scalars");
            keep_items(p->keep, scalars);
            if (pressure.is_none()) {
              p->s.pressure = Field<T>(ctx, grid);  // the warm start only: dfluid's own
            } else {
              p->s.pressure = wrap_field<T>(ctx, pressure, "pressure", grid, Location::Cell, true);
              p->keep.append(pressure);
            }
            return guard.release();
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("velocity"), nb::arg("scalars"),
          nb::arg("pressure").none() = nb::none(), nb::arg("names").none() = nb::none(),
          nb::rv_policy::take_ownership,
          "A state that computes in the caller's arrays (no copy): `velocity` a tuple of the "
          "face arrays (grid.velocity_shapes), `scalars` a list of cell arrays, `pressure` a "
          "cell array or None (then dfluid allocates it: it is only the next solve's warm "
          "start). The arrays must be C-contiguous, of the state's dtype, writable, and in the "
          "memory ctx computes in; they are kept alive by the state.")
      .def_prop_ro("velocity",
                   [](nb::handle self) {
                     auto& p = nb::cast<PyState<T>&>(self);
                     return mac_views(p.s.velocity, self, p.ctx.cuda_device());
                   })
      .def_prop_ro("scalars",
                   [](nb::handle self) {
                     auto& p = nb::cast<PyState<T>&>(self);
                     return field_views(p.s.scalars, self, p.ctx.cuda_device());
                   })
      .def_prop_ro("pressure",
                   [](nb::handle self) {
                     auto& p = nb::cast<PyState<T>&>(self);
                     return view_array(p.s.pressure, self, p.ctx.cuda_device());
                   })
      .def_prop_ro("scalar_names", [](const PyState<T>& p) { return p.s.scalar_names; })
      .def_prop_ro("grid", [](const PyState<T>& p) { return p.s.grid(); })
      .def_prop_ro("context", [](const PyState<T>& p) { return p.ctx; })
      .def_prop_ro("dtype", [](const PyState<T>&) { return dtype_of(T()); })
      .def(
          "copy_from",
          [](PyState<T>& p, const PyState<T>& src) {
            if (src.s.scalars.size() != p.s.scalars.size())
              throw InvalidArgument("src: " + std::to_string(src.s.scalars.size()) +
                                    " scalars, expected " + std::to_string(p.s.scalars.size()));
            copy(p.ctx, src.s.velocity, p.s.velocity);
            for (size_t i = 0; i < p.s.scalars.size(); ++i)
              copy(p.ctx, src.s.scalars[i], p.s.scalars[i]);
            copy(p.ctx, src.s.pressure, p.s.pressure);
          },
          nb::arg("src"), "Copies every field of `src` into this state (on the context).");

  nb::class_<PyGradient<T>>(m, ("Gradient" + suffix).c_str(),
                            "Cotangent of a state: velocity and scalars (no pressure).")
      .def(
          "__init__",
          [](PyGradient<T>* self, const Context& ctx, const Grid& grid, int num_scalars) {
            new (self) PyGradient<T>{ctx, SmokeGradient<T>(ctx, grid, num_scalars), {}};
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("num_scalars") = 1)
      .def_static(
          "wrap",
          [](const Context& ctx, const Grid& grid, nb::handle velocity, nb::handle scalars,
             nb::handle pressure) {
            auto* p = new PyGradient<T>{ctx, {}, {}};
            std::unique_ptr<PyGradient<T>> guard(p);
            ArrayRules w;
            w.writable = true;
            p->g.velocity = std::move(wrap_mac<T>(ctx, velocity, "velocity", grid, w)[0]);
            if (!is_list_or_tuple(scalars))
              throw InvalidArgument("scalars: expected a list of arrays (one per scalar)");
            for (size_t i = 0; i < nb::len(scalars); ++i)
              p->g.scalars.push_back(
                  wrap_field<T>(ctx, scalars[i], item("scalars", i), grid, Location::Cell, true));
            keep_items(p->keep, velocity);
            keep_items(p->keep, scalars);
            if (!pressure.is_none()) {
              p->g.pressure = wrap_field<T>(ctx, pressure, "pressure", grid, Location::Cell, true);
              p->keep.append(pressure);
            }
            return guard.release();
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("velocity"), nb::arg("scalars"),
          nb::arg("pressure").none() = nb::none(), nb::rv_policy::take_ownership,
          "A gradient in the caller's arrays (no copy). `pressure` (optional cell array): the "
          "cotangent of the state's pressure, which a loss on the obstacle force has; "
          "step_adjoint carries it through the step's projection and leaves it zero.")
      .def_prop_ro("velocity",
                   [](nb::handle self) {
                     auto& p = nb::cast<PyGradient<T>&>(self);
                     return mac_views(p.g.velocity, self, p.ctx.cuda_device());
                   })
      .def_prop_ro("scalars",
                   [](nb::handle self) {
                     auto& p = nb::cast<PyGradient<T>&>(self);
                     return field_views(p.g.scalars, self, p.ctx.cuda_device());
                   })
      .def_prop_ro(
          "pressure",
          [](nb::handle self) -> nb::object {
            auto& p = nb::cast<PyGradient<T>&>(self);
            if (p.g.pressure.empty()) return nb::none();
            return view_array(p.g.pressure, self, p.ctx.cuda_device());
          },
          "The pressure cotangent (a cell array), or None when the gradient has none (zero).");
}

// ------------------------------------------------------------------------- Simulation ----

template <class T>
struct PySimulation {
  Context ctx;
  Grid grid;
  std::unique_ptr<ObstacleMask> obstacles;
  nb::object obstacles_keep;
  std::unique_ptr<Simulation<T>> sim;
  // The obstacle wall velocity set_obstacle_wall wraps (the caller's arrays, kept alive):
  // the Simulation holds a pointer to it.
  std::unique_ptr<MacVelocity<T>> wall_velocity;
  nb::object wall_velocity_keep;
};

nb::dict memory_dict(const SimulationMemory& m) {
  nb::dict d;
  d["state"] = m.state;
  d["workspace"] = m.workspace;
  d["adjoint"] = m.adjoint;
  d["pool"] = m.pool;
  d["forward"] = m.forward();
  d["with_adjoint"] = m.with_adjoint();
  return d;
}

template <class T>
void bind_sim(nb::module_& m, const std::string& suffix) {
  using S = PySimulation<T>;
  nb::class_<S>(m, ("Simulation" + suffix).c_str(),
                "One smoke step (Simulation<T>): step() advances a State in place, "
                "step_adjoint() is its hand-written vector-Jacobian product.")
      .def(
          "__init__",
          [](S* self, const Context& ctx, const Grid& grid, const StepConfig& config,
             nb::handle obstacles) {
            new (self) S{ctx, grid, nullptr, nb::none(), nullptr, nullptr, nb::none()};
            if (!obstacles.is_none()) {
              self->obstacles = std::make_unique<ObstacleMask>(wrap_field<std::uint8_t>(
                  ctx, obstacles, "obstacles", grid, Location::Cell, false));
              self->obstacles_keep = nb::borrow(obstacles);
            }
            self->sim = std::make_unique<Simulation<T>>(ctx, grid, config, self->obstacles.get());
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("config"),
          nb::arg("obstacles").none() = nb::none(),
          "`obstacles`: optional uint8 cell array, 1 = solid (kept alive, not copied).")
      .def_static(
          "estimate_memory",
          [](const Context& ctx, const Grid& grid, const StepConfig& config, int num_scalars) {
            return memory_dict(Simulation<T>::estimate_memory(ctx, grid, config, num_scalars));
          },
          nb::arg("ctx"), nb::arg("grid"), nb::arg("config"), nb::arg("num_scalars") = 1,
          "Bytes a Simulation and one State will allocate (nothing is allocated).")
      .def(
          "step",
          [](S& s, PyState<T>& state, nb::handle force, nb::handle sources) {
            WrappedControls<T> c(s.ctx, s.grid, force, sources, int(state.s.scalars.size()), -1,
                                 "force", "sources");
            return s.sim->step(state.s, c.per_step[0]);
          },
          nb::arg("state"), nb::arg("force").none() = nb::none(),
          nb::arg("sources").none() = nb::none(),
          "Advances `state` in place by one step. `force`: tuple of face arrays (u += dt f); "
          "`sources`: list of cell arrays per scalar (q += dt s), None entries for none.")
      .def(
          "step_adjoint",
          [](S& s, const PyState<T>& input, PyGradient<T>& grad, nb::handle force,
             nb::handle sources, nb::handle grad_force, nb::handle grad_sources,
             bool buoyancy_gradient, bool viscosity_gradient, bool scalar_diffusivity_gradient,
             PyBoundaryGradient* grad_boundary, nb::handle grad_wall) {
            const int ns = int(input.s.scalars.size());
            WrappedControls<T> c(s.ctx, s.grid, force, sources, ns, -1, "force", "sources");
            WrappedControls<T> gc(s.ctx, s.grid, grad_force, grad_sources, ns, -1, "grad_force",
                                  "grad_sources", true);
            StepControlGradient<T> cg;
            if (grad_boundary) {
              if (grad_boundary->grid != s.grid)
                throw InvalidArgument(
                    "grad_boundary: a BoundaryGradient of another grid; make it with "
                    "dfluid.BoundaryGradient(sim.grid)");
              cg.boundary = &grad_boundary->g;
            }
            std::vector<MacVelocity<T>> gw;  // the caller's arrays, accumulated into
            if (!grad_wall.is_none()) {
              ArrayRules w;
              w.writable = true;
              gw = wrap_mac<T>(s.ctx, grad_wall, "grad_obstacle_wall_velocity", s.grid, w);
              cg.obstacle_wall_velocity = &gw[0];
            }
            if (!gc.force.empty()) cg.force = &gc.force[0];
            for (auto& f : gc.sources)
              cg.sources.push_back(f.empty() ? nullptr : &f[0]);
            double gb = 0;
            const bool coefficients = viscosity_gradient || scalar_diffusivity_gradient;
            Buffer<double> acc;  // the diffusion coefficients' gradients, added on the device
            if (coefficients) {
              acc = Buffer<double>(s.ctx, 2, s.ctx.memory_space());  // zero-filled
              if (viscosity_gradient) cg.viscosity = acc.data();
              if (scalar_diffusivity_gradient) cg.scalar_diffusivity = acc.data() + 1;
            }
            StepReport r = s.sim->step_adjoint(input.s, c.per_step[0], grad.g, &cg,
                                               buoyancy_gradient ? &gb : nullptr);
            if (!coefficients) return nb::make_tuple(r, gb);
            double v[2];
            read_doubles(s.ctx, acc.data(), 2, v);
            return nb::make_tuple(r, gb, v[0], v[1]);
          },
          nb::arg("input"), nb::arg("grad"), nb::arg("force").none() = nb::none(),
          nb::arg("sources").none() = nb::none(), nb::arg("grad_force").none() = nb::none(),
          nb::arg("grad_sources").none() = nb::none(), nb::arg("buoyancy_gradient") = false,
          nb::arg("viscosity_gradient") = false, nb::arg("scalar_diffusivity_gradient") = false,
          nb::arg("grad_boundary").none() = nb::none(),
          nb::arg("grad_obstacle_wall_velocity").none() = nb::none(),
          "Adjoint of step(): `input` is the step's input state, `grad` holds the cotangent of "
          "its output on entry and of its input on return (overwritten; a pressure cotangent, "
          "Gradient.wrap(..., pressure=), is carried through the projection). `grad_force` / "
          "`grad_sources` (the caller's arrays) ACCUMULATE the control gradients, as do "
          "`grad_boundary` (a dfluid.BoundaryGradient: d / d the inflow profiles and wall "
          "velocities of set_velocity_boundary) and `grad_obstacle_wall_velocity` (a tuple of "
          "face arrays: d / d the no-slip obstacles' wall velocity). Returns "
          "(StepReport, d loss / d buoyancy) (0.0 unless buoyancy_gradient); with "
          "viscosity_gradient or scalar_diffusivity_gradient, (StepReport, d loss / d buoyancy, "
          "d loss / d viscosity, d loss / d scalar_diffusivity) (0.0 where not asked for).")
      .def(
          "_step_timed",
          [](S& s, PyState<T>& state) {
            // For the overhead benchmark (host/python/benchmarks): the step's time measured in
            // C++ around Simulation::step alone (the CPU path computes synchronously).
            const auto t0 = std::chrono::steady_clock::now();
            s.sim->step(state.s, StepControls<T>{});
            s.ctx.synchronize();
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          },
          nb::arg("state"), "Benchmark helper: one step, returns its seconds measured in C++.")
      .def(
          "set_buoyancy", [](S& s, double b) { s.sim->set_buoyancy(b); }, nb::arg("value"),
          "Changes the buoyancy coefficient (finite and non-zero, as was the configured one).")
      .def(
          "set_viscosity", [](S& s, double v) { s.sim->set_viscosity(v); }, nb::arg("value"),
          "Changes the viscosity (finite, >= 0, and zero or non-zero as the configured one).")
      .def(
          "set_scalar_diffusivity", [](S& s, double v) { s.sim->set_scalar_diffusivity(v); },
          nb::arg("value"),
          "Changes the scalar diffusivity (finite, >= 0, and zero or non-zero as the configured "
          "one).")
      .def(
          "set_velocity_boundary",
          [](S& s, nb::handle inflow, nb::handle wall) {
            s.sim->set_velocity_boundary(velocity_boundary_from(inflow, wall, s.grid));
          },
          nb::arg("inflow").none() = nb::none(), nb::arg("wall").none() = nb::none(),
          "The prescribed values of the box sides from now on (the kinds are the grid's): "
          "`inflow` a dict side -> profile ('x-low': an array of dfluid.side_shape(grid, "
          "'x-low'), the normal velocity per face, +axis positive), `wall` a dict side -> the "
          "velocity of a 'moving-wall' side (dim numbers). Sides left out are zero. Copied "
          "(the library keeps host values). InvalidArgument names the side for a value on a "
          "side of another kind, a wrong length or a net inflow through a closed box.")
      .def_prop_ro(
          "velocity_boundary",
          [](const S& s) {
            const VelocityBoundary& vb = s.sim->velocity_boundary();
            nb::dict inflow, wall;
            for (int a = 0; a < s.grid.dim; ++a)
              for (int sd = 0; sd < 2; ++sd) {
                const std::vector<double>& p = vb.inflow[size_t(a)][size_t(sd)];
                const std::string key = side_name(a, sd);
                if (!p.empty()) {
                  std::vector<size_t> shape = side_shape(s.grid, a);
                  if (shape.empty()) shape.push_back(1);
                  auto* copy = new std::vector<double>(p);
                  nb::capsule owner(
                      copy, [](void* v) noexcept { delete static_cast<std::vector<double>*>(v); });
                  inflow[key.c_str()] = nb::ndarray<nb::numpy, double>(copy->data(), shape.size(),
                                                                       shape.data(), owner)
                                            .cast();
                }
                if (s.grid.boundary[size_t(a)][size_t(sd)] == BoundaryKind::MovingWall) {
                  nb::list l;
                  for (int c = 0; c < s.grid.dim; ++c)
                    l.append(vb.wall.v[size_t(a)][size_t(sd)][size_t(c)]);
                  wall[key.c_str()] = nb::tuple(l);
                }
              }
            nb::dict d;
            d["inflow"] = inflow;
            d["wall"] = wall;
            return d;
          },
          "A copy of the prescribed values: {'inflow': {side: profile}, 'wall': {side: "
          "velocity}}.")
      .def(
          "set_obstacle_wall",
          [](S& s, const std::string& kind, nb::handle wall_velocity) {
            ObstacleWall<T> w;
            try {
              w.kind = parse_obstacle_wall_kind(kind);
            } catch (const InvalidArgument& e) {
              throw InvalidArgument(std::string("kind: ") + e.what());
            }
            std::unique_ptr<MacVelocity<T>> u;
            if (!wall_velocity.is_none()) {
              u = std::make_unique<MacVelocity<T>>(
                  std::move(wrap_mac<T>(s.ctx, wall_velocity, "wall_velocity", s.grid, {})[0]));
              w.wall_velocity = u.get();
            }
            s.sim->set_obstacle_wall(w);
            // Only now that the Simulation took it: the old one stays valid until here.
            s.wall_velocity = std::move(u);
            s.wall_velocity_keep = nb::borrow(wall_velocity);
          },
          nb::arg("kind") = "no-slip", nb::arg("wall_velocity").none() = nb::none(),
          "How the obstacles meet the fluid from now on: 'free-slip' (the default: the "
          "projection holds the wall faces) or 'no-slip' (also the tangential velocity at the "
          "solid is the wall velocity: advection and diffusion see ghosts). `wall_velocity`: "
          "None (at rest) or a tuple of face arrays (grid.velocity_shapes) read at the faces "
          "next to the body, e.g. dfluid.rigid_rotation_velocity(...); WRAPPED, not copied: "
          "the simulation reads the arrays at every step (change them in place to change the "
          "wall's motion) and keeps them alive.")
      .def_prop_ro(
          "obstacle_wall",
          [](const S& s) { return std::string(to_string(s.sim->obstacle_wall().kind)); },
          "'free-slip' or 'no-slip'.")
      .def(
          "obstacle_force",
          [](const S& s, const PyState<T>& state) {
            const std::array<double, 3> f = s.sim->obstacle_force(state.s);
            nb::list l;
            for (int a = 0; a < s.grid.dim; ++a)
              l.append(f[size_t(a)]);
            return nb::tuple(l);
          },
          nb::arg("state"),
          "The force of the fluid on all solid cells in `state` (per unit depth in 2D; dim "
          "numbers, x first): the pressure on the wall faces and, with no-slip walls and "
          "diffusion on, the viscous shear (density 1). Needs obstacles.")
      .def(
          "obstacle_force_adjoint",
          [](const S& s, nb::handle direction, double weight, PyGradient<T>& grad) {
            if (grad.g.pressure.empty())
              throw InvalidArgument(
                  "grad: the force reads the pressure, so its gradient needs a pressure "
                  "cotangent: make it with wrap_gradient(..., pressure=zeros(grid.shape()))");
            s.sim->obstacle_force_adjoint(force_direction(direction, s.grid, "direction"), weight,
                                          grad.g);
          },
          nb::arg("direction"), nb::arg("weight"), nb::arg("grad"),
          "grad += weight * d (direction . obstacle_force(state)) / d state (velocity and "
          "pressure; the force is linear in the state, so no state is needed).")
      .def(
          "obstacle_force_wall_gradient",
          [](const S& s, nb::handle direction, double weight, nb::handle grad_wall) {
            ArrayRules w;
            w.writable = true;
            std::vector<MacVelocity<T>> g =
                wrap_mac<T>(s.ctx, grad_wall, "grad_wall_velocity", s.grid, w);
            s.sim->obstacle_force_wall_gradient(force_direction(direction, s.grid, "direction"),
                                                weight, g[0]);
          },
          nb::arg("direction"), nb::arg("weight"), nb::arg("grad_wall_velocity"),
          "grad_wall_velocity (face arrays) += weight * d (direction . obstacle_force) / d the "
          "obstacle wall velocity (no-slip walls with diffusion).")
      .def_prop_ro(
          "config", [](const S& s) { return s.sim->config(); }, "A copy of the step configuration.")
      .def_prop_ro("grid", [](const S& s) { return s.grid; })
      .def_prop_ro("context", [](const S& s) { return s.ctx; })
      .def_prop_ro("dtype", [](const S&) { return dtype_of(T()); });
}

// ---------------------------------------------------------------------------- Rollout ----

template <class T>
struct PyRollout {
  nb::object sim_keep;
  PySimulation<T>* psim;
  std::unique_ptr<Rollout<T>> rollout;
};

template <class T>
struct PyResult {
  Context ctx;
  RolloutResult<T> r;
  Grid grid;
};

std::int64_t get_int(nb::handle o, const char* attr, std::int64_t dflt) {
  if (!nb::hasattr(o, attr)) return dflt;
  nb::object v = o.attr(attr);
  return v.is_none() ? dflt : nb::cast<std::int64_t>(v);
}

/// RolloutOptions from the package's Checkpointing dataclass (None: store-all) and flags.
RolloutOptions rollout_options(nb::handle ckpt, bool force_g, bool source_g, bool buoy_g,
                               bool check_finite, bool visc_g = false, bool diff_g = false) {
  RolloutOptions o;
  o.viscosity_gradient = visc_g;
  o.scalar_diffusivity_gradient = diff_g;
  o.force_gradients = force_g;
  o.source_gradients = source_g;
  o.buoyancy_gradient = buoy_g;
  o.check_finite = check_finite;
  if (ckpt.is_valid() && !ckpt.is_none()) {
    CheckpointOptions& c = o.checkpointing;
    c.enabled = true;
    c.budget.device_bytes = size_t(get_int(ckpt, "device_bytes", 0));
    c.budget.host_bytes = size_t(get_int(ckpt, "host_bytes", 0));
    c.budget.disk_bytes = size_t(get_int(ckpt, "disk_bytes", 0));
    c.slots.device = get_int(ckpt, "slots", 0);
    c.slots.host = get_int(ckpt, "host_slots", 0);
    c.slots.disk = get_int(ckpt, "disk_slots", 0);
    const std::string st =
        nb::hasattr(ckpt, "strategy") ? nb::cast<std::string>(ckpt.attr("strategy")) : "auto";
    if (st == "auto")
      c.strategy = checkpoint::Strategy::Auto;
    else if (st == "store-all")
      c.strategy = checkpoint::Strategy::StoreAll;
    else if (st == "recompute")
      c.strategy = checkpoint::Strategy::RecomputeFromStart;
    else if (st == "revolve")
      c.strategy = checkpoint::Strategy::Revolve;
    else if (st == "multi-level")
      c.strategy = checkpoint::Strategy::MultiLevel;
    else
      throw InvalidArgument("checkpointing.strategy: '" + st +
                            "', expected auto, store-all, recompute, revolve or multi-level");
    if (nb::hasattr(ckpt, "disk_directory"))
      c.disk_directory = nb::cast<std::string>(ckpt.attr("disk_directory"));
  }
  return o;
}

/// The losses of a run from the package's Keyframe / VelocityTarget / UserLoss objects; the
/// wrapped target fields live here while the run lasts.
template <class T>
struct WrappedLosses {
  std::vector<Field<T>> fields;                         // keyframe targets and masks
  std::vector<std::vector<MacVelocity<T>>> velocities;  // velocity targets
  RolloutLosses<T> losses;

  WrappedLosses(const Context& ctx, const Grid& g, nb::handle keyframes, nb::handle vel_targets,
                nb::handle user, double force_effort, double source_effort,
                nb::handle obstacle_forces) {
    const size_t nk = nb::len(keyframes);
    fields.reserve(2 * nk);
    for (size_t i = 0; i < nk; ++i) {
      nb::handle k = keyframes[i];
      ScalarKeyframe<T> kf;
      kf.name = nb::cast<std::string>(k.attr("name"));
      kf.step = nb::cast<int>(k.attr("step"));
      kf.scalar = nb::cast<int>(k.attr("scalar"));
      kf.weight = nb::cast<double>(k.attr("weight"));
      fields.push_back(wrap_field<T>(ctx, k.attr("target"),
                                     "keyframes[" + std::to_string(i) + "].target", g,
                                     Location::Cell, false));
      kf.target = &fields.back();
      if (!k.attr("mask").is_none()) {
        fields.push_back(wrap_field<T>(ctx, k.attr("mask"),
                                       "keyframes[" + std::to_string(i) + "].mask", g,
                                       Location::Cell, false));
        kf.mask = &fields.back();
      }
      losses.keyframes.push_back(kf);
    }
    for (size_t i = 0; i < nb::len(vel_targets); ++i) {
      nb::handle v = vel_targets[i];
      velocities.push_back(wrap_mac<T>(
          ctx, v.attr("target"), "velocity_targets[" + std::to_string(i) + "].target", g, {}));
      VelocityTarget<T> vt;
      vt.name = nb::cast<std::string>(v.attr("name"));
      vt.step = nb::cast<int>(v.attr("step"));
      vt.weight = nb::cast<double>(v.attr("weight"));
      vt.target = &velocities.back()[0];
      losses.velocity_targets.push_back(vt);
    }
    for (size_t i = 0; i < nb::len(user); ++i) {
      nb::handle u = user[i];
      UserLoss<T> ul;
      ul.name = nb::cast<std::string>(u.attr("name"));
      ul.steps = nb::cast<std::vector<int>>(u.attr("steps"));
      nb::object fn = nb::borrow(u.attr("fn"));
      Context c = ctx;
      // The callback sees the state and the gradient as arrays that alias dfluid's memory
      // for the duration of the call only; it writes d value / d state into the gradient.
      ul.fn = [fn, c](int step, const SmokeState<T>& s, SmokeGradient<T>& grad) {
        nb::object st = alias_state(c, s, nb::handle());
        nb::object gr = alias_gradient(c, grad, nb::handle());
        return nb::cast<double>(fn(step, st, gr));
      };
      losses.user.push_back(std::move(ul));
    }
    for (size_t i = 0; i < nb::len(obstacle_forces); ++i) {
      nb::handle f = obstacle_forces[i];
      const std::string name = "obstacle_forces[" + std::to_string(i) + "]";
      ObstacleForceLoss<T> fl;
      fl.name = nb::cast<std::string>(f.attr("name"));
      fl.steps = nb::cast<std::vector<int>>(f.attr("steps"));
      fl.direction = force_direction(f.attr("direction"), g, name + ".direction");
      fl.weight = nb::cast<double>(f.attr("weight"));
      losses.obstacle_forces.push_back(fl);
    }
    losses.force_effort = force_effort;
    losses.source_effort = source_effort;
  }
};

nb::dict checkpoint_dict(const RolloutCheckpointInfo& c) {
  nb::dict d;
  d["state_bytes"] = c.size.state_bytes;
  d["working_bytes"] = c.size.working_bytes;
  d["planned_advances"] = c.summary.advances;
  d["advances"] = c.performed.advances;
  d["reverses"] = c.performed.reverses;
  d["predicted_ratio"] = c.summary.time_ratio;
  return d;
}

template <class T>
void bind_rollout(nb::module_& m, const std::string& suffix) {
  using R = PyResult<T>;
  nb::class_<R>(m, ("RolloutResult" + suffix).c_str(),
                "The loss of a rollout and its gradients; the arrays view the result's memory.")
      .def_prop_ro("loss", [](const R& r) { return r.r.loss; })
      .def_prop_ro("loss_terms", [](const R& r) { return r.r.loss_terms; })
      .def_prop_ro("grad_buoyancy", [](const R& r) { return r.r.grad_buoyancy; })
      .def_prop_ro(
          "grad_viscosity", [](const R& r) { return r.r.grad_viscosity; },
          "d loss / d StepConfig.viscosity (run(..., viscosity_gradient=True); else 0)")
      .def_prop_ro(
          "grad_scalar_diffusivity", [](const R& r) { return r.r.grad_scalar_diffusivity; },
          "d loss / d StepConfig.scalar_diffusivity (run(..., "
          "scalar_diffusivity_gradient=True); else 0)")
      .def_prop_ro(
          "grad_initial",
          [](nb::handle self) {
            auto& r = nb::cast<R&>(self);
            return alias_gradient(r.ctx, r.r.grad_initial, self);
          },
          "d loss / d initial state (a Gradient: velocity, scalars).")
      .def_prop_ro(
          "grad_force",
          [](nb::handle self) {
            auto& r = nb::cast<R&>(self);
            nb::list l;
            for (const auto& u : r.r.grad_force)
              l.append(mac_views(u, self, r.ctx.cuda_device()));
            return l;
          },
          "[k]: d loss / d force of step k (a tuple of face arrays).")
      .def_prop_ro(
          "grad_source",
          [](nb::handle self) {
            auto& r = nb::cast<R&>(self);
            nb::list l;
            for (const auto& s : r.r.grad_source)
              l.append(field_views(s, self, r.ctx.cuda_device()));
            return l;
          },
          "[k][i]: d loss / d source i of step k.")
      .def_prop_ro(
          "grad_boundary",
          [](const R& r) {
            return PyBoundaryGradient{r.grid, r.r.grad_boundary};
          },
          "d loss / d the velocity boundary (a BoundaryGradient: .inflow per Inflow side, .wall "
          "per MovingWall side; run(..., boundary_gradient=True), else zero).")
      .def_prop_ro(
          "grad_obstacle_wall_velocity",
          [](nb::handle self) -> nb::object {
            auto& r = nb::cast<R&>(self);
            if (r.r.grad_obstacle_wall_velocity[0].empty()) return nb::none();
            return mac_views(r.r.grad_obstacle_wall_velocity, self, r.ctx.cuda_device());
          },
          "d loss / d the obstacles' wall velocity (a tuple of face arrays; "
          "run(..., obstacle_wall_velocity_gradient=True), else None). d loss / d a rotation "
          "rate: its inner product with rigid_rotation_velocity(..., rate=1).")
      .def_prop_ro("final_state",
                   [](nb::handle self) {
                     auto& r = nb::cast<R&>(self);
                     return alias_state(r.ctx, r.r.final_state, self);
                   })
      .def_prop_ro("forward_reports", [](const R& r) { return r.r.forward_reports; })
      .def_prop_ro("adjoint_reports", [](const R& r) { return r.r.adjoint_reports; })
      .def_prop_ro(
          "checkpointing",
          [](const R& r) -> nb::object {
            if (!r.r.checkpointing) return nb::none();
            return checkpoint_dict(*r.r.checkpointing);
          },
          "None (store-all) or the plan's counts and what the driver performed.");

  using P = PyRollout<T>;
  nb::class_<P>(m, ("Rollout" + suffix).c_str(),
                "Gradient of a loss over an N-step rollout (Rollout<T>): store-all or a "
                "checkpoint plan within a memory budget.")
      .def(
          "__init__",
          [](P* self, nb::handle sim) {
            auto& s = nb::cast<PySimulation<T>&>(sim);
            new (self) P{nb::borrow(sim), &s, std::make_unique<Rollout<T>>(*s.sim)};
          },
          nb::arg("simulation"))
      .def(
          "run",
          [](P& p, const PyState<T>& initial, int steps, nb::handle forces, nb::handle sources,
             nb::handle keyframes, nb::handle velocity_targets, double force_effort,
             double source_effort, nb::handle user_losses, nb::handle checkpointing,
             bool force_gradients, bool source_gradients, bool buoyancy_gradient, bool check_finite,
             bool viscosity_gradient, bool scalar_diffusivity_gradient, nb::handle obstacle_forces,
             bool boundary_gradient, bool obstacle_wall_velocity_gradient) {
            const Context& ctx = p.psim->ctx;
            const Grid& g = p.psim->grid;
            if (steps < 1)
              throw InvalidArgument("steps: " + std::to_string(steps) + ", expected >= 1");
            WrappedControls<T> c(ctx, g, forces, sources, int(initial.s.scalars.size()), steps,
                                 "forces", "sources");
            WrappedLosses<T> l(ctx, g, keyframes, velocity_targets, user_losses, force_effort,
                               source_effort, obstacle_forces);
            RolloutOptions o =
                rollout_options(checkpointing, force_gradients, source_gradients, buoyancy_gradient,
                                check_finite, viscosity_gradient, scalar_diffusivity_gradient);
            o.boundary_gradient = boundary_gradient;
            o.obstacle_wall_velocity_gradient = obstacle_wall_velocity_gradient;
            auto* res = new R{ctx, {}, g};
            std::unique_ptr<R> guard(res);
            const bool any = !c.force.empty() || !c.sources.empty();
            p.rollout->run(initial.s, steps, any ? c.per_step : std::vector<StepControls<T>>{},
                           l.losses, o, res->r);
            return guard.release();
          },
          nb::arg("initial"), nb::arg("steps"), nb::arg("forces").none() = nb::none(),
          nb::arg("sources").none() = nb::none(), nb::arg("keyframes") = nb::tuple(),
          nb::arg("velocity_targets") = nb::tuple(), nb::arg("force_effort") = 0.0,
          nb::arg("source_effort") = 0.0, nb::arg("user_losses") = nb::tuple(),
          nb::arg("checkpointing").none() = nb::none(), nb::arg("force_gradients") = true,
          nb::arg("source_gradients") = true, nb::arg("buoyancy_gradient") = true,
          nb::arg("check_finite") = true, nb::arg("viscosity_gradient") = false,
          nb::arg("scalar_diffusivity_gradient") = false, nb::arg("obstacle_forces") = nb::tuple(),
          nb::arg("boundary_gradient") = false, nb::arg("obstacle_wall_velocity_gradient") = false,
          nb::rv_policy::take_ownership,
          "Runs `steps` steps from `initial` (not modified) and back; returns a RolloutResult.\n"
          "obstacle_forces: dfluid.ObstacleForceLoss terms (drag, lift: the mean of direction . "
          "obstacle_force over their states; the Simulation needs obstacles). "
          "boundary_gradient fills grad_boundary (d / d the inflow profiles and wall velocities "
          "of set_velocity_boundary), obstacle_wall_velocity_gradient fills "
          "grad_obstacle_wall_velocity (d / d the no-slip obstacles' wall velocity).\n"
          "viscosity_gradient / scalar_diffusivity_gradient fill grad_viscosity / "
          "grad_scalar_diffusivity (the StepConfig needs diffusion 'explicit' or 'implicit').\n"
          "forces: tuple of per-component arrays with a leading step axis, (steps, *face "
          "shape); sources: list per scalar of (steps, *cell shape) arrays or None; "
          "keyframes, velocity_targets, user_losses: dfluid.Keyframe, VelocityTarget, UserLoss; "
          "checkpointing: dfluid.Checkpointing or None (store every state).")
      .def(
          "loss",
          [](P& p, const PyState<T>& initial, int steps, nb::handle forces, nb::handle sources,
             nb::handle keyframes, nb::handle velocity_targets, double force_effort,
             double source_effort, nb::handle user_losses, nb::handle obstacle_forces) {
            const Context& ctx = p.psim->ctx;
            const Grid& g = p.psim->grid;
            if (steps < 1)
              throw InvalidArgument("steps: " + std::to_string(steps) + ", expected >= 1");
            WrappedControls<T> c(ctx, g, forces, sources, int(initial.s.scalars.size()), steps,
                                 "forces", "sources");
            WrappedLosses<T> l(ctx, g, keyframes, velocity_targets, user_losses, force_effort,
                               source_effort, obstacle_forces);
            const bool any = !c.force.empty() || !c.sources.empty();
            return p.rollout->loss(initial.s, steps,
                                   any ? c.per_step : std::vector<StepControls<T>>{}, l.losses);
          },
          nb::arg("initial"), nb::arg("steps"), nb::arg("forces").none() = nb::none(),
          nb::arg("sources").none() = nb::none(), nb::arg("keyframes") = nb::tuple(),
          nb::arg("velocity_targets") = nb::tuple(), nb::arg("force_effort") = 0.0,
          nb::arg("source_effort") = 0.0, nb::arg("user_losses") = nb::tuple(),
          nb::arg("obstacle_forces") = nb::tuple(), "The loss only (forward, no states stored).")
      .def(
          "plan",
          [](P& p, const PyState<T>& initial, int steps, nb::handle checkpointing,
             nb::handle obstacle_forces) {
            RolloutOptions o = rollout_options(checkpointing, true, true, true, true);
            WrappedLosses<T> l(p.psim->ctx, p.psim->grid, nb::tuple(), nb::tuple(), nb::tuple(), 0,
                               0, obstacle_forces);
            RolloutPlan plan = p.rollout->plan(initial.s, steps, o, &l.losses);
            nb::dict d;
            d["describe"] = plan.describe();
            d["state_bytes"] = plan.size.state_bytes;
            d["working_bytes"] = plan.size.working_bytes;
            d["advances"] = plan.summary.advances;
            d["predicted_ratio"] = plan.summary.time_ratio;
            return d;
          },
          nb::arg("initial"), nb::arg("steps"), nb::arg("checkpointing").none(),
          nb::arg("obstacle_forces") = nb::tuple(),
          "The checkpoint plan run() would follow (nothing runs): its report and counts.")
      .def("release_workspace", [](P& p) { p.rollout->release_workspace(); });
}

template <class T>
void bind_rotation(nb::module_& m, const std::string& suffix) {
  m.def(("rigid_rotation_velocity" + suffix).c_str(),
        [](const Context& ctx, const Grid& grid, std::vector<double> center, double rate) {
          if (center.size() != size_t(grid.dim) && !(grid.dim == 2 && center.size() == 3))
            throw InvalidArgument("center: expected " + std::to_string(grid.dim) +
                                  " coordinates (the rotation axis), got " +
                                  std::to_string(center.size()));
          std::array<double, 3> c{0, 0, 0};
          for (size_t a = 0; a < center.size(); ++a)
            c[a] = center[a];
          // The field is dfluid's; the arrays view it and keep it alive through the capsule.
          auto* u = new MacVelocity<T>(rigid_rotation_velocity<T>(ctx, grid, c, rate));
          nb::capsule owner(u, [](void* p) noexcept { delete static_cast<MacVelocity<T>*>(p); });
          return mac_views(*u, owner, ctx.cuda_device());
        },
        nb::arg("ctx"), nb::arg("grid"), nb::arg("center"), nb::arg("rate"),
        "The velocity of a rigid rotation about `center` at `rate` (radians per unit time, "
        "counter-clockwise about +z) on every face: u = -rate (y - cy), v = rate (x - cx); a "
        "tuple of face arrays (dfluid's memory). The wall velocity of a spinning body "
        "(Simulation.set_obstacle_wall('no-slip', wall_velocity=...)).");
}

}  // namespace

template <class T>
void bind_simulation(nb::module_& m, const char* suffix) {
  bind_state<T>(m, suffix);
  bind_sim<T>(m, suffix);
  bind_rollout<T>(m, suffix);
  bind_rotation<T>(m, suffix);
}

template void bind_simulation<float>(nb::module_&, const char*);
template void bind_simulation<double>(nb::module_&, const char*);

}  // namespace dfluid::py
