// Adjoint of one composed simulation step (plain C++ on the public operator API).
//
// Principle 3: the adjoint needs only the step's input state. The forward parts
// are replayed from the input in a step-local work state; before each part whose
// adjoint reads forward values its input is copied into a per-part snapshot:
//   AdvectScalars  -> the velocity and every scalar (advect_adjoint's q and u),
//   AdvectVelocity -> the velocity (self-advection adjoint),
//   Forces         -> the buoyancy scalar after this step's source (coefficient
//                     gradient), only when buoyancy is on,
//   Diffuse        -> only when the viscosity (scalar diffusivity) gradient is asked for:
//                     the velocity (the scalars) that lap() is taken of, the part's input
//                     for explicit diffusion, its OUTPUT for implicit diffusion (the replay
//                     runs that part's solves once more).
// Diffusion, projection, sources and forces are linear: their adjoints need no
// forward values. The replay stops after the last part that needs a snapshot.
// Then the part adjoints run in reverse config().order:
//   Project        grad_u <- P grad_u (project_adjoint, a cold MGPCG solve); the Inflow
//                  faces' cotangent is the inflow profile's (control_grad.boundary or
//                  boundary_slots: gathered on the device), and is then zeroed (the
//                  forward overwrote those faces); a ConvectiveOutflow side's is gathered
//                  for the end,
//   Diffuse        grad <- J^T grad (explicit: a gather; implicit: a CG solve); MovingWall
//                  sides: grad_wall from diffuse_wall_velocity_gradient_into (on the device,
//                  like every boundary gradient here); grad_nu +=
//                  dt <w, lap(snapshot)> (w = grad, or the implicit adjoint solve's values),
//   Forces         reverse of (sources, buoyancy, force): grad_f += dt grad_u;
//                  grad_coef += <grad_u, dt S q_b>; grad_q_b += dt coef S^T grad_u;
//                  grad_s_i += dt grad_q_i (grad_u and grad_q pass through),
//   AdvectVelocity grad_u <- (d adv(u,u)/du)^T grad_u (both paths); MovingWall sides:
//                  grad_wall += <grad_u, d adv/d wall velocity> (advection_wall_gradient),
//   AdvectScalars  grad_u += sum_i (d adv(q_i,u)/du)^T grad_q_i;
//                  grad_q_i <- (d adv(q_i,u)/dq_i)^T grad_q_i.
// Last, ConvectiveOutflow sides: their faces' values were computed from the step's input
// velocity and the profiles at its start: convective_outflow_values_adjoint of the gathered
// cotangent adds into grad_u and the profiles' gradient.
// Every operator adjoint is deterministic; so is this composition (fixed order).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "dfluid/advection.hpp"
#include "dfluid/diffusion.hpp"
#include "dfluid/face_fractions.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/forces.hpp"
#include "dfluid/simulation.hpp"
#include "step/place.hpp"
#include "step/step_pool.hpp"

namespace dfluid {

using detail::place;

namespace {

/// True when part p's adjoint reads forward values: the advections always; Forces only for
/// the buoyancy coefficient's gradient (<grad_u, dt S q_b> reads the buoyancy scalar; the
/// buoyancy adjoint itself is linear in grad_u). The scratch is sized for every case
/// (coef_gradient = true); a call that does not ask for that gradient skips the snapshot
/// and, with it, usually the replay of the scalar advection.
bool needs_snapshot(StepPart p, const StepConfig& c, bool coef_gradient = true) {
  return p == StepPart::AdvectScalars || p == StepPart::AdvectVelocity ||
         (p == StepPart::Forces && c.buoyancy != 0 && coef_gradient);
}

// What a part reads and writes of the work state, for the replay's liveness pass: the
// velocity, the scalars (all of them together) and the pressure. Writes count as partial
// (a force adds to the velocity), so a write never ends a field's liveness.
enum : unsigned { kLiveU = 1, kLiveQ = 2, kLiveP = 4 };

unsigned part_reads(StepPart p, const StepConfig& c) {
  switch (p) {
    case StepPart::AdvectScalars:
      return kLiveU | kLiveQ;
    case StepPart::AdvectVelocity:
      return kLiveU;
    case StepPart::Forces:  // sources add to the scalars, buoyancy reads one
      return kLiveU | kLiveQ;
    case StepPart::Diffuse:  // the incremental pressure correction reads the pressure
      return kLiveU | kLiveQ | (c.incremental_pressure() ? kLiveP : 0u);
    case StepPart::Project:  // the pressure is the solve's warm start
      return kLiveU | kLiveP;
  }
  return kLiveU | kLiveQ | kLiveP;
}

unsigned part_writes(StepPart p) {
  switch (p) {
    case StepPart::AdvectScalars:
      return kLiveQ;
    case StepPart::AdvectVelocity:
      return kLiveU;
    case StepPart::Forces:
    case StepPart::Diffuse:
      return kLiveU | kLiveQ;
    case StepPart::Project:
      return kLiveU | kLiveP;
  }
  return kLiveU | kLiveQ | kLiveP;
}

template <class T>
bool wants_nu(const StepControlGradient<T>* cg) {
  return cg && cg->viscosity;
}

template <class T>
bool wants_kappa(const StepControlGradient<T>* cg) {
  return cg && cg->scalar_diffusivity;
}

bool has_moving_wall(const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    for (int s = 0; s < 2; ++s)
      if (g.boundary[a][s] == BoundaryKind::MovingWall) return true;
  return false;
}

}  // namespace

template <class T>
SmokeGradient<T>::SmokeGradient(const Context& ctx, const Grid& g, int num_scalars)
    : velocity(ctx, g) {
  for (int i = 0; i < num_scalars; ++i)
    scalars.emplace_back(ctx, g, Location::Cell);
}

template <class T>
struct Simulation<T>::AdjointScratch {
  struct Snapshot {
    MacVelocity<T> u;
    std::vector<Field<T>> q;
    // The advections' inputs as the reverse pass reads them: u and q above, or the step's
    // input itself where no earlier part changes that field (no copy). Set by the replay.
    const MacVelocity<T>* u_at = nullptr;
    std::vector<const Field<T>*> q_at;
  };
  int num_scalars = -1;
  SmokeState<T> work;
  std::vector<Snapshot> snaps;  // one per entry of config.order (empty where not needed)
  MacVelocity<T> grad_u_tmp;
  Field<T> grad_q_tmp;
  // MovingWall sides: a zero velocity, and its advection with a unit wall velocity (the
  // derivative of the velocity advection with respect to that wall velocity).
  MacVelocity<T> zero_u, unit_out;
  Field<T> pressure_y;  // A y = grad.pressure (allocated by the first pressure cotangent)
  // Each Project part's adjoint pressure (project_adjoint's y): the next call's warm start
  // under set_adjoint_warm_start (indexed like snaps; empty for other parts).
  std::vector<Field<T>> project_y;
  // The replay's liveness pass (replay_for_adjoint): fields unchanged since the input before
  // each part, and the parts that run.
  std::vector<unsigned> replay_fresh;
  std::vector<char> replay_runs;
  // Diffuse parts' snapshots (snaps[k].u, snaps[k].q) are allocated by the first call that
  // asks for the viscosity (diffusivity) gradient: ensure_diffuse_snapshots.
  detail::PoolScript pool_script;  // the pool requests of step() + step_adjoint()
  std::size_t pool_bytes = 0;      // what the pool holds after them (estimate_memory().pool)

  void allocate(const Context& ctx, const Grid& g, const StepConfig& cfg, int ns) {
    if (num_scalars == ns) return;
    pool_script = detail::step_pool_script<T>(g, cfg, ns);
    detail::PoolModel model;
    model.run(pool_script);
    pool_bytes = model.total;
    work = SmokeState<T>(ctx, g, std::vector<std::string>(std::size_t(ns), "q"));
    snaps.clear();
    snaps.resize(cfg.order.size());
    for (std::size_t k = 0; k < cfg.order.size(); ++k) {
      const StepPart p = cfg.order[k];
      if (!needs_snapshot(p, cfg)) continue;
      if (p == StepPart::AdvectScalars || p == StepPart::AdvectVelocity)
        snaps[k].u = MacVelocity<T>(ctx, g);
      if (p == StepPart::AdvectScalars)
        for (int i = 0; i < ns; ++i)
          snaps[k].q.emplace_back(ctx, g, Location::Cell);
      if (p == StepPart::Forces) snaps[k].q.emplace_back(ctx, g, Location::Cell);
    }
    project_y.clear();
    project_y.resize(cfg.order.size());
    for (std::size_t k = 0; k < cfg.order.size(); ++k)
      if (cfg.order[k] == StepPart::Project) project_y[k] = Field<T>(ctx, g, Location::Cell);
    grad_u_tmp = MacVelocity<T>(ctx, g);
    grad_q_tmp = Field<T>(ctx, g, Location::Cell);
    if (has_moving_wall(g)) {
      zero_u = MacVelocity<T>(ctx, g);
      unit_out = MacVelocity<T>(ctx, g);
    }
    num_scalars = ns;
  }

  void ensure_diffuse_snapshots(const Context& ctx, const Grid& g, const StepConfig& cfg,
                                bool velocity, bool scalars) {
    for (std::size_t k = 0; k < cfg.order.size(); ++k) {
      if (cfg.order[k] != StepPart::Diffuse) continue;
      if (velocity && snaps[k].u[0].empty()) snaps[k].u = MacVelocity<T>(ctx, g);
      if (scalars && snaps[k].q.empty())
        for (int i = 0; i < num_scalars; ++i)
          snaps[k].q.emplace_back(ctx, g, Location::Cell);
    }
  }
};

template <class T>
void Simulation<T>::set_adjoint_warm_start(bool on) {
  if (on && adj_)
    for (Field<T>& y : adj_->project_y)
      if (!y.empty()) fill(ctx_, y, T(0));
  adjoint_warm_start_ = on;
}

template <class T>
void Simulation<T>::reserve_adjoint(int ns) {
  if (ns < 0)
    throw InvalidArgument("reserve_adjoint: num_scalars = " + std::to_string(ns) + " must be >= 0");
  if (!adj_) adj_ = std::make_shared<AdjointScratch>();
  AdjointScratch& S = *adj_;
  S.allocate(ctx_, grid_, config_, ns);
  if (detail::temp_pool_bytes(ctx_) == S.pool_bytes) return;
  // Take every block the script takes, in its order: from an empty pool, or one that holds
  // what step() left there, the pool then holds what the estimate counts, and the operators'
  // own requests (the same sizes in the same order; on the CPU path a subset) always find a
  // free block. Blocks other work left in the pool are freed first (the pool never shrinks
  // by itself); when they were of other sizes, the pool is rebuilt from empty.
  auto replay = [&] {
    std::vector<detail::TempBuffer> held(std::size_t(S.pool_script.blocks));
    for (const detail::PoolScript::Event& e : S.pool_script.events)
      held[std::size_t(e.block)] =
          e.bytes ? detail::TempBuffer(ctx_, e.bytes) : detail::TempBuffer();
  };
  if (detail::temp_pool_bytes(ctx_) > S.pool_bytes) detail::trim_temp_pool(ctx_);
  replay();
  if (detail::temp_pool_bytes(ctx_) != S.pool_bytes) {
    detail::trim_temp_pool(ctx_);
    replay();
  }
}

template <class T>
StepReport Simulation<T>::step_adjoint(const SmokeState<T>& input, const StepControls<T>& c,
                                       SmokeGradient<T>& grad, const StepControlGradient<T>* cg,
                                       double* grad_buoyancy) {
  check_adjoint_args(input, c, grad, cg);
  reserve_adjoint(int(input.scalars.size()));
  adj_->ensure_diffuse_snapshots(ctx_, grid_, config_, wants_nu(cg), wants_kappa(cg));
  convective_outflow_update(input.velocity);  // the replay's projections set these faces
  for (auto& sides : convective_grad_)
    for (Buffer<T>& b : sides)
      if (b.data()) detail::zero_bytes(ctx_, b.data(), b.bytes(), b.space());
  replay_for_adjoint(input, c, cg, (cg && cg->buoyancy) || grad_buoyancy);
  // The boundary gradient is gathered on the device: into the caller's slots, or (for a
  // host VelocityBoundaryGradient) into boundary_scratch_, read once at the end.
  const std::size_t kW = VelocityBoundaryGradient::kWallSlots;
  const std::size_t nslots = VelocityBoundaryGradient::slots(grid_);
  double* boundary_acc = nullptr;
  const bool to_host = cg && cg->boundary && boundary_scratch_.data();
  if (cg && cg->boundary_slots) {
    boundary_acc = cg->boundary_slots;
  } else if (to_host) {
    boundary_acc = boundary_scratch_.data() + kW;
    detail::zero_bytes(ctx_, boundary_acc, sizeof(double) * nslots, boundary_scratch_.space());
  }
  const StepReport report = reverse_parts(grad, cg, grad_buoyancy, boundary_acc);
  // ConvectiveOutflow: the faces' values came from the input velocity (and the profiles).
  convective_outflow_adjoint(grad.velocity, boundary_acc);
  if (to_host) {
    std::vector<double> host(nslots);
    read_doubles(ctx_, boundary_acc, int(nslots), host.data());  // host wait
    cg->boundary->add_slots(grid_, host.data());
  }
  // Input checks not yet read by a pressure solve (no Project part): read them now.
  raise_nonfinite(ctx_);
  return report;
}

template <class T>
void Simulation<T>::check_adjoint_args(const SmokeState<T>& input, const StepControls<T>& c,
                                       const SmokeGradient<T>& grad,
                                       const StepControlGradient<T>* cg) const {
  check_inputs(input, c);
  const int ns = int(input.scalars.size());
  if (int(grad.scalars.size()) != ns)
    throw ShapeMismatch("step_adjoint: grad has " + std::to_string(grad.scalars.size()) +
                        " scalar(s), the state has " + std::to_string(ns));
  for (int a = 0; a < grid_.dim; ++a)
    check::same_shape(grad.velocity[a], "grad.velocity", input.velocity[a], "state.velocity");
  for (int i = 0; i < ns; ++i)
    check::on_grid(grad.scalars[i], "grad.scalars", grid_, Location::Cell);
  if (!grad.pressure.empty()) check::on_grid(grad.pressure, "grad.pressure", grid_, Location::Cell);
  if (cg && cg->obstacle_wall_velocity)
    for (int a = 0; a < grid_.dim; ++a)
      check::on_grid((*cg->obstacle_wall_velocity)[a], "control_grad.obstacle_wall_velocity", grid_,
                     face_location(a));
  if (cg) {
    if (cg->force)
      for (int a = 0; a < grid_.dim; ++a)
        check::same_shape((*cg->force)[a], "control_grad.force", input.velocity[a],
                          "state.velocity");
    if (int(cg->sources.size()) > ns)
      throw InvalidArgument("control_grad.sources has " + std::to_string(cg->sources.size()) +
                            " entries for " + std::to_string(ns) + " scalar(s)");
    for (const Field<T>* s : cg->sources)
      if (s) check::on_grid(*s, "control_grad.sources", grid_, Location::Cell);
  }
  if (wants_nu(cg) || wants_kappa(cg)) {
    const char* what = wants_nu(cg) ? "control_grad.viscosity" : "control_grad.scalar_diffusivity";
    if (config_.diffusion == DiffusionMode::None)
      throw InvalidArgument(std::string("step_adjoint: ") + what +
                            " asks for a diffusion coefficient's gradient, but "
                            "StepConfig::diffusion is None; set it to Explicit or Implicit");
    if (std::find(config_.order.begin(), config_.order.end(), StepPart::Diffuse) ==
        config_.order.end())
      throw InvalidArgument(std::string("step_adjoint: ") + what +
                            " asks for a diffusion coefficient's gradient, but "
                            "StepConfig::order has no Diffuse part; add one");
  }
  if (cg && cg->boundary && cg->boundary_slots)
    throw InvalidArgument(
        "step_adjoint: control_grad.boundary and control_grad.boundary_slots are both set; "
        "give one (the host gradient, or the device slots)");
  if (cg && cg->boundary)
    for (int a = 0; a < grid_.dim; ++a)
      for (int s = 0; s < 2; ++s) {
        const std::vector<double>& v = cg->boundary->inflow[a][s];
        if (grid_.boundary[a][s] != BoundaryKind::Inflow || v.empty()) continue;
        if (v.size() != VelocityBoundary::side_faces(grid_, a))
          throw ShapeMismatch("control_grad.boundary->inflow[" + side_name(a, s) + "] has " +
                              std::to_string(v.size()) + " values, the side has " +
                              std::to_string(VelocityBoundary::side_faces(grid_, a)) +
                              " faces; leave it empty or size it so");
      }
  if (cg && (cg->boundary || cg->boundary_slots) && has_moving_wall(grid_) &&
      config_.velocity_advection.scheme != AdvectionScheme::SemiLagrangian &&
      std::find(config_.order.begin(), config_.order.end(), StepPart::AdvectVelocity) !=
          config_.order.end())
    throw InvalidArgument(
        "step_adjoint: the gradient with respect to a moving wall's velocity needs "
        "semi-Lagrangian velocity advection (StepConfig::velocity_advection.scheme = "
        "SemiLagrangian): MacCormack's clamp is not affine in it");
  if (c.force)
    for (int a = 0; a < grid_.dim; ++a)
      check::same_shape((*c.force)[a], "controls.force", input.velocity[a], "state.velocity");
  for (const Field<T>* s : c.sources)
    if (s) check::on_grid(*s, "controls.sources", grid_, Location::Cell);
  if (config_.incremental_pressure() && grad.pressure.empty())
    throw InvalidArgument(
        "step_adjoint: StepConfig::pressure_correction is Incremental, so the input pressure "
        "feeds the step: give grad.pressure (a Cell field, zero when no loss reads the output "
        "pressure); it returns the input pressure's cotangent");
  if (!grad.pressure.empty())
    check::on_grid(grad.pressure, "step_adjoint: grad.pressure", grid_, Location::Cell);
  // The reverse pass reads the input's velocity and scalars after it has written grad (the
  // advections' snapshots are the input itself where no part before them changes it).
  // A field of the state: velocity components first, then the scalars (no list built).
  const int nf = grid_.dim + ns;
  auto in_field = [&](int f) -> const Field<T>& {
    return f < grid_.dim ? input.velocity[f] : input.scalars[std::size_t(f - grid_.dim)];
  };
  auto grad_field = [&](int f) -> const Field<T>& {
    return f < grid_.dim ? grad.velocity[f] : grad.scalars[std::size_t(f - grid_.dim)];
  };
  for (int g = 0; g < nf; ++g)
    for (int f = 0; f < nf; ++f)
      if (check::overlap(grad_field(g), in_field(f)))
        throw InvalidArgument(
            "step_adjoint: grad shares memory with the input state; give the gradient "
            "fields their own memory");
}

/// Replays the forward parts from `input` in the scratch work state, copying the input of
/// every part whose adjoint reads forward values into its snapshot; stops after the last one.
template <class T>
void Simulation<T>::replay_for_adjoint(const SmokeState<T>& input, const StepControls<T>& c,
                                       const StepControlGradient<T>* cg,
                                       bool buoyancy_coef_gradient) {
  const int ns = int(input.scalars.size());
  AdjointScratch& S = *adj_;
  const auto& order = config_.order;
  const int nparts = int(order.size());
  const T dt = T(config_.dt);
  // ---- replay: the input of every part whose adjoint reads forward values ----
  // The diffusion coefficients' gradients read lap() of the Diffuse part's input (explicit)
  // or output (implicit: the part runs in the replay, then its output is copied).
  const bool snap_u = wants_nu(cg), snap_q = wants_kappa(cg);
  const bool diffuse_snap = snap_u || snap_q;
  const bool implicit = config_.diffusion == DiffusionMode::Implicit;
  int last = -1;
  for (int k = 0; k < nparts; ++k)
    if (needs_snapshot(order[k], config_, buoyancy_coef_gradient) ||
        (diffuse_snap && order[k] == StepPart::Diffuse))
      last = k;
  if (last >= 0) {
    // Liveness, from the last snapshot back: a part runs only when a later snapshot (or a
    // later part that runs) reads what it writes. In the default smoke order the velocity
    // advection is skipped: the buoyancy snapshot reads only the advected scalars. What a
    // skipped part would have written is stale in `w` and read by nothing.
    // fresh[k]: the fields no part before k writes, equal to the step's input there; the
    // advections' snapshots of them read the input itself (no copy, no replay).
    // In the step's scratch (sized once per order length): no host allocation per call.
    std::vector<unsigned>& fresh = S.replay_fresh;
    std::vector<char>& run = S.replay_runs;
    fresh.assign(std::size_t(nparts) + 1, kLiveU | kLiveQ | kLiveP);
    for (int k = 0; k < nparts; ++k)
      fresh[std::size_t(k) + 1] = fresh[std::size_t(k)] & ~part_writes(order[k]);
    run.assign(std::size_t(nparts), 0);
    unsigned live = 0;
    for (int k = last; k >= 0; --k) {
      const StepPart p = order[k];
      const bool diffuse_here = diffuse_snap && p == StepPart::Diffuse;
      unsigned snapshot_reads = 0;  // the state before part k that its snapshot copies
      if (p == StepPart::AdvectScalars) snapshot_reads = (kLiveU | kLiveQ) & ~fresh[std::size_t(k)];
      if (p == StepPart::AdvectVelocity) snapshot_reads = kLiveU & ~fresh[std::size_t(k)];
      if (p == StepPart::Forces && needs_snapshot(p, config_, buoyancy_coef_gradient))
        snapshot_reads = kLiveQ;
      if (diffuse_here && !implicit)
        snapshot_reads = (snap_u ? kLiveU : 0u) | (snap_q ? kLiveQ : 0u);
      // An implicit Diffuse snapshot is the part's output: the part runs.
      const bool runs = (diffuse_here && implicit) || (k < last && (part_writes(p) & live));
      run[std::size_t(k)] = runs;
      live |= snapshot_reads | (runs ? part_reads(p, config_) : 0u);
    }
    SmokeState<T>& w = S.work;
    if (live & kLiveU) copy(ctx_, input.velocity, w.velocity);
    if (live & kLiveQ)
      for (int i = 0; i < ns; ++i)
        copy(ctx_, input.scalars[i], w.scalars[i]);
    if (live & kLiveP) copy(ctx_, input.pressure, w.pressure);
    for (int k = 0; k <= last; ++k) {
      const StepPart p = order[k];
      auto& snap = S.snaps[k];
      const unsigned at_input = fresh[std::size_t(k)];
      if (p == StepPart::AdvectScalars || p == StepPart::AdvectVelocity) {
        snap.u_at = &input.velocity;
        if (!(at_input & kLiveU)) {
          copy(ctx_, w.velocity, snap.u);
          snap.u_at = &snap.u;
        }
      }
      if (p == StepPart::AdvectScalars) {
        snap.q_at.assign(std::size_t(ns), nullptr);
        for (int i = 0; i < ns; ++i) {
          snap.q_at[std::size_t(i)] = &input.scalars[std::size_t(i)];
          if (!(at_input & kLiveQ)) {
            copy(ctx_, w.scalars[i], snap.q[i]);
            snap.q_at[std::size_t(i)] = &snap.q[std::size_t(i)];
          }
        }
      }
      if (p == StepPart::Forces && needs_snapshot(p, config_, buoyancy_coef_gradient)) {
        const int b = config_.buoyancy_scalar;
        copy(ctx_, w.scalars[b], snap.q[0]);
        if (b < int(c.sources.size()) && c.sources[b])
          add_source(ctx_, snap.q[0], *c.sources[b], dt, obstacles_);
      }
      const bool diffuse_here = diffuse_snap && p == StepPart::Diffuse;
      if (diffuse_here && !implicit) {
        if (snap_u) copy(ctx_, w.velocity, snap.u);
        if (snap_q)
          for (int i = 0; i < ns; ++i)
            copy(ctx_, w.scalars[i], snap.q[i]);
      }
      if (!run[std::size_t(k)]) continue;  // nothing after reads its output
      switch (p) {
        case StepPart::AdvectScalars:
          advect_scalars(w);
          break;
        case StepPart::AdvectVelocity:
          advect_velocity(w);
          break;
        case StepPart::Forces:
          add_forces(w, c);
          break;
        case StepPart::Diffuse:
          diffuse(w);
          if (diffuse_here && implicit) {
            if (snap_u) {
              copy(ctx_, w.velocity, snap.u);
              // lap() of the implicit solve's own output: without the dt G p it added back.
              if (config_.incremental_pressure())
                solver_.add_pressure_gradient(ctx_, w.pressure, -dt, snap.u);
            }
            if (snap_q)
              for (int i = 0; i < ns; ++i)
                copy(ctx_, w.scalars[i], snap.q[i]);
          }
          break;
        case StepPart::Project:
          set_inflow_faces(w.velocity);
          project_step(w.velocity, w.pressure);
          break;
      }
    }
  }
}

/// The part adjoints in reverse config().order, from the snapshots replay_for_adjoint took.
template <class T>
StepReport Simulation<T>::reverse_parts(SmokeGradient<T>& grad, const StepControlGradient<T>* cg,
                                        double* grad_buoyancy, double* boundary_acc) {
  const int ns = int(grad.scalars.size());
  AdjointScratch& S = *adj_;
  const auto& order = config_.order;
  const int nparts = int(order.size());
  const T dt = T(config_.dt);
  // ---- part adjoints in reverse order ----
  StepReport report;
  bool pressure_pending = !grad.pressure.empty() &&
                          std::find(order.begin(), order.end(), StepPart::Project) != order.end();
  for (int k = nparts - 1; k >= 0; --k) {
    const StepPart p = order[k];
    auto& snap = S.snaps[k];
    switch (p) {
      case StepPart::Project: {
        SolverOptions o = config_.pressure;
        o.warm_start = adjoint_warm_start_ && config_.pressure.warm_start;
        // A moving face-fraction body: the solid's flux is a term of the projection, whose
        // transpose gives the wall velocity's gradient.
        MacVelocity<T>* grad_wall = moving_solid() && cg ? cg->obstacle_wall_velocity : nullptr;
        report.pressure =
            solver_.project_adjoint_impl(ctx_, grad.velocity, o, grad_wall, &S.project_y[k]);
        // The last projection wrote the state's pressure: its cotangent enters here (and is
        // then zero: earlier projections' pressures were overwritten).
        if (pressure_pending) {
          pressure_cotangent(grad, grad_wall);
          pressure_pending = false;
        }
        // (An incremental pressure correction's Diffuse part before this projection reads
        // the pressure an earlier projection wrote: its cotangent re-arms pressure_pending.)
        // The forward set the Inflow faces to the profile before projecting: their
        // cotangent is the profile's, and nothing upstream sees them.
        take_inflow_gradient(grad.velocity, boundary_acc);
        break;
      }
      case StepPart::Diffuse: {
        if (config_.diffusion == DiffusionMode::None) break;
        const bool implicit = config_.diffusion == DiffusionMode::Implicit;
        if (config_.viscosity > 0) {
          const T nu = T(config_.viscosity);
          // Incremental pressure correction, forward J(u - dt G p) + dt G p: the pressure's
          // cotangent gets dt G^T w here and -dt G^T J^T w below (w = grad.velocity).
          const bool incremental = config_.incremental_pressure();
          if (incremental)
            solver_.add_pressure_gradient_adjoint(ctx_, grad.velocity, dt, grad.pressure);
          fill(ctx_, S.grad_u_tmp, T(0));
          const bool wall_grad = boundary_acc && has_moving_wall(grid_);
          const NoSlipObstacle<T> ns = no_slip();
          if (implicit)
            report.diffusion = diffuse_implicit_adjoint(ctx_, grad.velocity, nu, dt, S.grad_u_tmp,
                                                        config_.diffusion_solver, ns);
          else
            diffuse_explicit_adjoint(ctx_, grad.velocity, nu, dt, S.grad_u_tmp, ns);
          if (ns.any() && cg && cg->obstacle_wall_velocity)  // on the device
            diffuse_obstacle_wall_gradient(ctx_, implicit ? S.grad_u_tmp : grad.velocity, nu, dt,
                                           ns, *cg->obstacle_wall_velocity);
          if (wall_grad) {  // on the device: this step's values, then added to the gradient
            double* step_wall = boundary_scratch_.data();
            diffuse_wall_velocity_gradient_into(ctx_, implicit ? S.grad_u_tmp : grad.velocity, nu,
                                                dt, step_wall, ns);
            add_doubles(ctx_, step_wall, int(VelocityBoundaryGradient::kWallSlots), boundary_acc);
          }
          // On the device, no host wait; before place() swaps grad away. lap() is the
          // forward's: the no-slip obstacle's ghosts and wall velocity are in it.
          if (wants_nu(cg))
            add_diffusion_nu_gradient_into(ctx_, snap.u, dt,
                                           implicit ? S.grad_u_tmp : grad.velocity, cg->viscosity,
                                           vb_.wall, ns);
          if (incremental) {
            solver_.add_pressure_gradient_adjoint(ctx_, S.grad_u_tmp, -dt, grad.pressure);
            pressure_pending = true;  // for a projection before this part
          }
          place(ctx_, grad.velocity, S.grad_u_tmp);
        } else if (wants_nu(cg)) {  // nu = 0: the step skipped diffusion, J = I, w = grad
          add_diffusion_nu_gradient_into(ctx_, snap.u, dt, grad.velocity, cg->viscosity, vb_.wall,
                                         no_slip());
        }
        const ScalarBoundary& bc = config_.scalar_advection.boundary;
        if (config_.scalar_diffusivity > 0) {
          const T kappa = T(config_.scalar_diffusivity);
          for (int i = 0; i < ns; ++i) {
            fill(ctx_, S.grad_q_tmp, T(0));
            if (implicit)
              report.diffusion = diffuse_implicit_adjoint(
                  ctx_, grad.scalars[i], kappa, dt, S.grad_q_tmp, bc, config_.diffusion_solver);
            else
              diffuse_explicit_adjoint(ctx_, grad.scalars[i], kappa, dt, S.grad_q_tmp, bc);
            if (wants_kappa(cg))
              add_diffusion_nu_gradient_into(ctx_, snap.q[i], dt,
                                             implicit ? S.grad_q_tmp : grad.scalars[i],
                                             cg->scalar_diffusivity, bc);
            place(ctx_, grad.scalars[i], S.grad_q_tmp);
          }
        } else if (wants_kappa(cg)) {
          for (int i = 0; i < ns; ++i)
            add_diffusion_nu_gradient_into(ctx_, snap.q[i], dt, grad.scalars[i],
                                           cg->scalar_diffusivity, bc);
        }
        break;
      }
      case StepPart::Forces: {
        // forward: sources, then buoyancy, then the force; reversed here.
        if (cg && cg->force) add_force_adjoint(ctx_, grad.velocity, dt, *cg->force, obstacles_);
        if (config_.buoyancy != 0) {
          const int b = config_.buoyancy_scalar;
          if (cg && cg->buoyancy)  // on the device, no host wait
            add_buoyancy_coef_gradient_into(ctx_, grad.velocity, snap.q[0], dt, config_.up_axis,
                                            cg->buoyancy, obstacles_);
          if (grad_buoyancy)  // host wait
            *grad_buoyancy += add_buoyancy_coef_gradient(ctx_, grad.velocity, snap.q[0], dt,
                                                         config_.up_axis, obstacles_);
          add_buoyancy_adjoint(ctx_, grad.velocity, T(config_.buoyancy), dt, grad.scalars[b],
                               config_.up_axis, obstacles_);
        }
        if (cg)
          for (std::size_t i = 0; i < cg->sources.size(); ++i)
            if (cg->sources[i])
              add_source_adjoint(ctx_, grad.scalars[i], dt, *cg->sources[i], obstacles_);
        break;
      }
      case StepPart::AdvectVelocity: {
        // No-slip obstacles: the forward advected G(u), u with the no-slip ghosts filled in;
        // the adjoint runs on G(u) and then through G's transpose.
        const NoSlipObstacle<T> ns = no_slip();
        if (ns.mask) obstacle_ghost_fill(ctx_, *snap.u_at, ns, obstacle_ghost_);
        if (ns.face_distance)
          fill_closed_faces(ctx_, fractions_, *snap.u_at, ns.wall_velocity, obstacle_ghost_);
        const MacVelocity<T>& advected = ns.any() ? obstacle_ghost_ : *snap.u_at;
        if (boundary_acc && has_moving_wall(grid_))
          advection_wall_gradient(advected, grad.velocity, boundary_acc);
        fill(ctx_, S.grad_u_tmp, T(0));
        {
          // The wall velocity's ghosts shape the sampled values, hence the departure
          // points' derivatives: the adjoint sees the forward's options.
          AdvectionOptions opt = config_.velocity_advection;
          opt.wall_velocity = vb_.wall;
          advect_adjoint(ctx_, advected, config_.dt, grad.velocity, S.grad_u_tmp, opt);
        }
        if (ns.mask) {
          if (cg && cg->obstacle_wall_velocity)
            obstacle_ghost_fill_wall_adjoint(ctx_, S.grad_u_tmp, *ns.mask,
                                             *cg->obstacle_wall_velocity);
          fill(ctx_, grad.velocity, T(0));
          obstacle_ghost_fill_adjoint(ctx_, S.grad_u_tmp, ns, grad.velocity);
        } else if (ns.face_distance) {
          fill(ctx_, grad.velocity, T(0));
          fill_closed_faces_adjoint(ctx_, fractions_, S.grad_u_tmp, grad.velocity,
                                    cg && ns.wall_velocity ? cg->obstacle_wall_velocity : nullptr);
        } else {
          place(ctx_, grad.velocity, S.grad_u_tmp);
        }
        break;
      }
      case StepPart::AdvectScalars:
        for (int i = 0; i < ns; ++i) {
          fill(ctx_, S.grad_q_tmp, T(0));
          advect_adjoint(ctx_, *snap.q_at[std::size_t(i)], *snap.u_at, config_.dt, grad.scalars[i],
                         S.grad_q_tmp, &grad.velocity, config_.scalar_advection);
          place(ctx_, grad.scalars[i], S.grad_q_tmp);
        }
        break;
    }
  }
  return report;
}

/// The cotangent of the state's pressure, written by the step's last projection
/// p = -(1/dt) A^+ D u (u: its input, Inflow faces included): grad_u += -(1/dt) D^T A^+ grad_p
/// on the faces the divergence reads (A symmetric; A^+ on floating regions, as the forward's
/// zero-mean pressure). Then grad_p = 0: the output pressure does not depend on the input's.
template <class T>
void Simulation<T>::pressure_cotangent(SmokeGradient<T>& grad, MacVelocity<T>* grad_wall) {
  AdjointScratch& S = *adj_;
  if (S.pressure_y.empty()) S.pressure_y = Field<T>(ctx_, grid_, Location::Cell);
  SolverOptions cold = config_.pressure;
  cold.warm_start = false;
  solver_.solve(ctx_, grad.pressure, S.pressure_y, cold);
  const T scale = T(-1.0 / config_.dt);
  if (solver_.face_fractions()) {  // p = -(1/dt) A^+ (D W u + D (1 - W) U): weighted transposes
    solver_.add_divergence_transpose(ctx_, S.pressure_y, scale, grad.velocity);
    if (grad_wall) solver_.add_solid_divergence_transpose(ctx_, S.pressure_y, scale, *grad_wall);
  } else {
    add_divergence_transpose(ctx_, S.pressure_y, obstacles_, scale, grad.velocity);
  }
  fill(ctx_, grad.pressure, T(0));
}

/// The velocity advection is affine in the wall velocity U of a MovingWall side (the
/// ghost values of the advected components, beta = 2 U; the departure points are traced
/// through zero-gradient velocities and do not see U). For semi-Lagrangian advection the
/// coefficient of U's component c is advect() of a zero velocity with U = e_c on that side
/// alone: d<g, out>/dU_c = <g, that>. One advection and one dot product per MovingWall side
/// and tangential component, reduced into boundary_scratch_'s wall slots on the device and
/// then added to acc's: no host wait.
template <class T>
void Simulation<T>::advection_wall_gradient(const MacVelocity<T>& u, const MacVelocity<T>& g,
                                            double* acc) {
  AdjointScratch& S = *adj_;
  double* step_wall = boundary_scratch_.data();
  for (int b = 0; b < grid_.dim; ++b)
    for (int side = 0; side < 2; ++side) {
      if (grid_.boundary[b][side] != BoundaryKind::MovingWall) continue;
      for (int c = 0; c < grid_.dim; ++c) {
        if (c == b) continue;
        AdvectionOptions opt = config_.velocity_advection;
        opt.wall_velocity = WallVelocity{};
        opt.wall_velocity.v[b][side][c] = 1.0;
        advect(ctx_, S.zero_u, u, config_.dt, S.unit_out, opt);
        dot_into(ctx_, g[c], S.unit_out[c],
                 step_wall + VelocityBoundaryGradient::wall_slot(b, side, c));
      }
    }
  add_doubles(ctx_, step_wall, int(VelocityBoundaryGradient::kWallSlots), acc);
}

template struct SmokeGradient<float>;
template struct SmokeGradient<double>;
template void Simulation<float>::set_adjoint_warm_start(bool);
template void Simulation<double>::set_adjoint_warm_start(bool);
template StepReport Simulation<float>::step_adjoint(const SmokeState<float>&,
                                                    const StepControls<float>&,
                                                    SmokeGradient<float>&,
                                                    const StepControlGradient<float>*, double*);
template StepReport Simulation<double>::step_adjoint(const SmokeState<double>&,
                                                     const StepControls<double>&,
                                                     SmokeGradient<double>&,
                                                     const StepControlGradient<double>*, double*);

}  // namespace dfluid
