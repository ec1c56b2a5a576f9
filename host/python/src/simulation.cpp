// State, Gradient and Simulation of one precision T (rollout.cpp: Rollout and its result;
// objects.hpp: the Python objects and the array helpers they share).
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
#include "objects.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::py {

namespace {

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
          [](S& s, nb::handle inflow, nb::handle wall, nb::handle outflow_speed) {
            s.sim->set_velocity_boundary(
                velocity_boundary_from(inflow, wall, s.grid, outflow_speed));
          },
          nb::arg("inflow").none() = nb::none(), nb::arg("wall").none() = nb::none(),
          nb::arg("outflow_speed").none() = nb::none(),
          "The prescribed values of the box sides from now on (the kinds are the grid's): "
          "`inflow` a dict side -> profile ('x-low': an array of dfluid.side_shape(grid, "
          "'x-low'), the normal velocity per face, +axis positive), `wall` a dict side -> the "
          "velocity of a 'moving-wall' side (dim numbers), `outflow_speed` a dict side -> U_c "
          "(> 0) of a 'convective-outflow' side. Sides left out are zero. Copied "
          "(the library keeps host values). InvalidArgument names the side for a value on a "
          "side of another kind, a wrong length or a net inflow through a closed box.")
      .def_prop_ro(
          "velocity_boundary",
          [](const S& s) {
            const VelocityBoundary& vb = s.sim->velocity_boundary();
            nb::dict inflow, wall, outflow_speed;
            for (int a = 0; a < s.grid.dim; ++a)
              for (int sd = 0; sd < 2; ++sd) {
                const std::vector<double>& p = vb.inflow[size_t(a)][size_t(sd)];
                const std::string key = side_name(a, sd);
                if (s.grid.boundary[size_t(a)][size_t(sd)] == BoundaryKind::ConvectiveOutflow)
                  outflow_speed[key.c_str()] = vb.outflow_speed[size_t(a)][size_t(sd)];
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
            d["outflow_speed"] = outflow_speed;
            return d;
          },
          "A copy of the prescribed values: {'inflow': {side: profile}, 'wall': {side: "
          "velocity}, 'outflow_speed': {side: U_c}}.")
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
      .def(
          "set_obstacle_fractions",
          [](S& s, nb::handle open_fractions, nb::handle face_distance) {
            const std::vector<MacVelocity<T>> w =
                wrap_mac<T>(s.ctx, open_fractions, "open_fractions", s.grid, {});
            if (face_distance.is_none()) {
              s.sim->set_obstacle_fractions(w[0]);  // copied: the arrays may go
              return;
            }
            const std::vector<MacVelocity<T>> d =
                wrap_mac<T>(s.ctx, face_distance, "face_distance", s.grid, {});
            s.sim->set_obstacle_fractions(w[0], d[0]);
          },
          nb::arg("open_fractions"), nb::arg("face_distance").none() = nb::none(),
          "A face-fraction obstacle from now on (face_open_fractions): the steps' projection, "
          "its adjoint and the pressure force (obstacle_force, Rollout's obstacle_forces) use "
          "these open fractions of the faces instead of a staircase; the body is at rest. "
          "Without `face_distance` it is free-slip; with it (face_center_distance of the same "
          "node distance) set_obstacle_wall('no-slip', ...) may make it no-slip, its wall at "
          "its true distance in the implicit viscous step and its shear in the force. COPIED "
          "(the arrays may be released). The Simulation must have been made without an "
          "obstacle mask. Fractions must lie in [0, 1]; faces with distance > 0 must be open.")
      .def_prop_ro(
          "has_obstacle_fractions", [](const S& s) { return s.sim->has_obstacle_fractions(); },
          "Whether set_obstacle_fractions was called.")
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
      .def_prop_ro("dtype", [](const S&) { return dtype_of(T()); })
      .def_prop_ro(
          "_address", [](const S& s) { return reinterpret_cast<std::uintptr_t>(s.sim.get()); },
          "The address of the C++ Simulation (for dfluid._xla.register_simulation: the XLA "
          "FFI handlers of dfluid.jax step it; this object must outlive them).");
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
