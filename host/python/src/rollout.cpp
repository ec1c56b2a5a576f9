// Rollout<T>, its RolloutResult<T> and rigid_rotation_velocity<T> of one precision T: the
// losses and options of a run from the package's dataclasses (Keyframe, VelocityTarget,
// UserLoss, ObstacleForceLoss, Checkpointing), the result's gradients as views of its memory.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <memory>

#include "bindings.hpp"
#include "boundary.hpp"
#include "dfluid/dfluid.hpp"
#include "objects.hpp"

namespace dfluid::py {

namespace {

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
void bind_rollout_classes(nb::module_& m, const std::string& suffix) {
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
             bool boundary_gradient, bool obstacle_wall_velocity_gradient,
             bool warm_adjoint_solves) {
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
            o.warm_adjoint_solves = warm_adjoint_solves;
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
          nb::arg("warm_adjoint_solves") = true, nb::rv_policy::take_ownership,
          "Runs `steps` steps from `initial` (not modified) and back; returns a RolloutResult.\n"
          "obstacle_forces: dfluid.ObstacleForceLoss terms (drag, lift: the mean of direction . "
          "obstacle_force over their states; the Simulation needs obstacles). "
          "boundary_gradient fills grad_boundary (d / d the inflow profiles and wall velocities "
          "of set_velocity_boundary), obstacle_wall_velocity_gradient fills "
          "grad_obstacle_wall_velocity (d / d the no-slip obstacles' wall velocity).\n"
          "warm_adjoint_solves: each step adjoint's pressure solve starts from the previous "
          "one's solution (fewer iterations; the gradient moves within the solver tolerance and "
          "stays a function of the run's inputs); False solves each from zero.\n"
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

}  // namespace

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

template <class T>
void bind_rollout(nb::module_& m, const std::string& suffix) {
  bind_rollout_classes<T>(m, suffix);
}

template void bind_rollout<float>(nb::module_&, const std::string&);
template void bind_rollout<double>(nb::module_&, const std::string&);
template void bind_rotation<float>(nb::module_&, const std::string&);
template void bind_rotation<double>(nb::module_&, const std::string&);

}  // namespace dfluid::py
