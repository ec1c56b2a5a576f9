// Checkpointed rollouts: the plan (Rollout::plan, Rollout::state_size) and the
// checkpoint::CheckpointDriver that executes it on the Simulation (Rollout::Driver).
//
// The driver holds the current state (velocity, scalars AND pressure: the next step
// warm-starts its pressure solve from it, so a state restored from a slot replays
// exactly the same bits) and hands the slot copies to CheckpointSlots
// (rollout_slots.hpp). Its reverse(k) is the store-all backward pass's body for step
// k (Rollout::reverse_step); reverse(N-1) first steps a copy of state N-1 forward to
// state N (the "first turn"), evaluates the losses of state N and keeps it as
// final_state. Losses are therefore evaluated in the same order as in the store-all
// path, and the results are bitwise identical.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "dfluid/checkpoint/executor.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/rollout.hpp"
#include "rollout/rollout_internal.hpp"
#include "rollout/rollout_slots.hpp"

namespace dfluid {

using checkpoint::Level;

std::string RolloutPlan::describe() const {
  std::string s = checkpoint::describe(summary, plan);
  s += "state size: " + std::to_string(size.state_bytes) +
       " bytes (velocity, scalars and pressure)\n";
  s += "working memory estimate: " + std::to_string(size.working_bytes) + " bytes (" +
       std::to_string(output_bytes) + " of them gradient outputs)\n";
  s += "working memory terms: simulation " + format_bytes(memory.simulation.workspace) +
       ", its adjoint " + format_bytes(memory.simulation.adjoint) + " (pool of temporaries " +
       format_bytes(memory.simulation.pool) + " in these), rollout " +
       format_bytes(memory.rollout + memory.reduction_scratch) + ", result " +
       format_bytes(memory.result) + ", gradient outputs " + format_bytes(memory.outputs) + "\n";
  s += "estimated peak device memory: " + format_bytes(summary.peak_device_bytes);
  if (budget.device_bytes > 0) s += " of the " + format_bytes(budget.device_bytes) + " budget";
  s += "\n";
  return s;
}

template <class T>
class Rollout<T>::Driver final : public checkpoint::CheckpointDriver {
 public:
  Driver(Rollout<T>& rollout, const SmokeState<T>& initial, int steps,
         const std::vector<StepControls<T>>& controls, const RolloutLosses<T>& losses,
         const RolloutOptions& options, const RolloutPlan& plan, RolloutResult<T>& result,
         SmokeGradient<T>& grad, SmokeState<T>& cur, detail::CheckpointSlots& slots)
      : ro_(rollout),
        ctx_(rollout.sim_.context()),
        n_(steps),
        controls_(controls),
        losses_(losses),
        opt_(options),
        r_(result),
        grad_(grad),
        cur_(cur),
        slots_(slots) {
    detail::copy_state(ctx_, initial, cur_);
    std::size_t bytes = 0;
    for (const auto& seg : segments())
      bytes += seg.bytes;
    if (bytes != plan.size.state_bytes) {
      throw Error("checkpointed rollout: the state has " + std::to_string(bytes) +
                  " bytes, the plan was made for " + std::to_string(plan.size.state_bytes));
    }
    next_reverse_ = n_ - 1;
  }

  void advance(std::int64_t step) override {
    expect_current(step, "advance");
    const int k = static_cast<int>(step);
    r_.forward_reports[k] = ro_.sim_.step(cur_, ctrl(k));
    current_ = step + 1;
    ++stats_.advances;
  }
  void store(Level level, std::int32_t slot, std::int64_t step) override {
    expect_current(step, "store");
    slots_.store(level, slot, segments());
    ++stats_.stores[static_cast<int>(level)];
  }
  void restore(Level level, std::int32_t slot, std::int64_t step) override {
    slots_.restore(level, slot, segments());
    current_ = step;
    ++stats_.restores[static_cast<int>(level)];
  }
  void prefetch(Level level, std::int32_t slot, std::int64_t) override {
    slots_.prefetch(level, slot);
  }
  void release(Level level, std::int32_t slot) override { slots_.release(level, slot); }
  void fence(Level level) override { slots_.fence(level); }

  void reverse(std::int64_t step) override {
    expect_current(step, "reverse");
    if (step != next_reverse_) {
      throw Error("checkpointed rollout: reverse of step " + std::to_string(step) +
                  ", expected step " + std::to_string(next_reverse_));
    }
    const int k = static_cast<int>(step);
    if (k == n_ - 1) {  // the first turn: state N and its losses, before any adjoint
      SmokeState<T>& last = r_.final_state;  // prepared by prepare_result: no allocation
      detail::copy_state(ctx_, cur_, last);
      r_.forward_reports[k] = ro_.sim_.step(last, ctrl(k));
      ro_.state_losses(n_, last, losses_, &grad_);
    }
    ro_.reverse_step(k, cur_, ctrl(k), losses_, opt_, grad_, r_);
    current_ = -1;  // the current state is scratch until the next restore
    --next_reverse_;
    ++stats_.reverses;
  }

  CheckpointRunStats stats() const {
    CheckpointRunStats s = stats_;
    s.prefetch_hits = slots_.prefetch_hits();
    return s;
  }
  bool complete() const { return next_reverse_ == -1; }

 private:
  /// The current state's fields, looked up at each use: Simulation::step swaps field
  /// buffers with its scratch, so the addresses change from step to step.
  std::vector<detail::StateSegment> segments() {
    std::vector<detail::StateSegment> s;
    auto add = [&](Field<T>& f) {
      s.push_back(detail::StateSegment{f.data(), static_cast<std::size_t>(f.size()) * sizeof(T)});
    };
    for (int a = 0; a < cur_.velocity.dim(); ++a)
      add(cur_.velocity[a]);
    for (Field<T>& q : cur_.scalars)
      add(q);
    add(cur_.pressure);
    return s;
  }
  const StepControls<T>& ctrl(int k) const {
    static const StepControls<T> none{};
    return controls_.empty() ? none : controls_[k];
  }
  void expect_current(std::int64_t step, const char* what) const {
    if (current_ != step) {
      throw Error(std::string("checkpointed rollout: ") + what + " of state " +
                  std::to_string(step) + " while the current state is " +
                  (current_ < 0 ? std::string("undefined") : std::to_string(current_)));
    }
  }

  Rollout<T>& ro_;
  Context ctx_;
  int n_;
  const std::vector<StepControls<T>>& controls_;
  const RolloutLosses<T>& losses_;
  const RolloutOptions& opt_;
  RolloutResult<T>& r_;
  SmokeGradient<T>& grad_;
  SmokeState<T>& cur_;              // the Rollout's workspace state
  detail::CheckpointSlots& slots_;  // the Rollout's slots, kept between runs
  std::int64_t current_ = 0;
  std::int64_t next_reverse_ = 0;
  CheckpointRunStats stats_;
};

// The context's reduction scratch as the GPU path allocates it (cuda/core/exec.cpp
// gpu_reduce_scratch: kReduceBlocks + 1 doubles); the CPU path counts it the same.
constexpr std::size_t kReduceScratchBytes = (1024 + 1) * sizeof(double);

template <class T>
checkpoint::StateSize Rollout<T>::estimate_size(const Context& ctx, const Grid& g,
                                                const StepConfig& config, int ns, int n,
                                                const RolloutOptions& opt, RolloutMemory* parts) {
  if (n < 1) throw InvalidArgument("Rollout: steps = " + std::to_string(n) + " must be >= 1");
  RolloutMemory m;
  m.simulation = Simulation<T>::estimate_memory(ctx, g, config, ns);
  // estimate_memory() counts the reduction scratch in the workspace on a GPU context only
  // (memory_stats() sees it only there); the counters, and the GPU, hold it either way.
  if (!ctx.on_gpu()) m.reduction_scratch = kReduceScratchBytes;
  auto bytes_at = [&](Location loc) {
    const auto e = extents_of(g, loc);
    return static_cast<std::size_t>(e[0]) * e[1] * e[2] * sizeof(T);
  };
  const std::size_t C = bytes_at(Location::Cell);
  std::size_t U = 0;
  for (int a = 0; a < g.dim; ++a)
    U += bytes_at(face_location(a));
  const auto nsz = static_cast<std::size_t>(ns);
  const std::size_t S = m.simulation.state;  // velocity, scalars, pressure
  const std::size_t G = U + nsz * C;         // a cotangent: velocity, scalars
  m.rollout = S + (C + U) + G;  // workspace state, loss scratch diff_ + diff_u_, user_grad_
  m.result = S + G;             // final_state, grad_initial
  if (opt.force_gradients) m.outputs += static_cast<std::size_t>(n) * U;
  if (opt.source_gradients) m.outputs += static_cast<std::size_t>(n) * nsz * C;
  if (opt.obstacle_wall_velocity_gradient) m.result += U;  // grad_obstacle_wall_velocity
  // The step adjoint's Diffuse snapshots (StepControlGradient::viscosity, scalar_diffusivity).
  for (StepPart p : config.order)
    if (p == StepPart::Diffuse && config.diffusion != DiffusionMode::None) {
      if (opt.viscosity_gradient) m.simulation.adjoint += U;
      if (opt.scalar_diffusivity_gradient) m.simulation.adjoint += nsz * C;
    }
  if (parts) *parts = m;
  checkpoint::StateSize size;
  size.state_bytes = S;
  size.working_bytes = m.working();
  return size;
}

template <class T>
void Rollout<T>::add_obstacle_memory(RolloutMemory& m, checkpoint::StateSize& size,
                                     const RolloutLosses<T>* losses) const {
  if (!sim_.obstacles() && !sim_.has_obstacle_fractions()) return;
  const Grid& g = sim_.grid();
  auto bytes_at = [&](Location loc) {
    const auto e = extents_of(g, loc);
    return static_cast<std::size_t>(e[0]) * e[1] * e[2] * sizeof(T);
  };
  const std::size_t C = bytes_at(Location::Cell);
  std::size_t U = 0;
  for (int a = 0; a < g.dim; ++a)
    U += bytes_at(face_location(a));
  if (sim_.obstacle_wall().kind == ObstacleWallKind::NoSlip) {
    m.simulation.workspace += U;  // velocity advection's ghost-filled input
    // The face classes the stencil reads, a byte per face (a staircase's only).
    for (int a = 0; a < g.dim && sim_.obstacles(); ++a) {
      const auto e = extents_of(g, face_location(a));
      m.simulation.workspace += static_cast<std::size_t>(e[0]) * e[1] * e[2];
    }
  }
  if (sim_.has_obstacle_fractions()) m.simulation.workspace += U;      // the fractions' copy
  if (sim_.has_obstacle_face_distance()) m.simulation.workspace += U;  // and their distance
  const bool force_losses = losses && !losses->obstacle_forces.empty();
  if (force_losses) {
    // ObstacleForceCoefficients: one set per body the losses name (null: every solid cell).
    std::vector<const ObstacleMask*> bodies;
    for (const auto& f : losses->obstacle_forces)
      if (std::find(bodies.begin(), bodies.end(), f.body) == bodies.end()) bodies.push_back(f.body);
    m.simulation.workspace += bodies.size() * (2 * U + std::size_t(g.dim) * C);
  }
  if (force_losses || sim_.config().incremental_pressure()) {
    m.simulation.adjoint += C;  // the pressure cotangent's solve (AdjointScratch::pressure_y)
    m.result += C;              // grad_initial.pressure
  }
  size.working_bytes = m.working();
}

template <class T>
checkpoint::StateSize Rollout<T>::state_size(const SmokeState<T>& initial, int n,
                                             const RolloutOptions& opt, std::size_t* output_bytes,
                                             const RolloutLosses<T>* losses) const {
  RolloutMemory m;
  checkpoint::StateSize size = estimate_size(sim_.context(), sim_.grid(), sim_.config(),
                                             int(initial.scalars.size()), n, opt, &m);
  add_obstacle_memory(m, size, losses);
  if (output_bytes) *output_bytes = m.outputs;
  return size;
}

template <class T>
RolloutPlan Rollout<T>::plan(const SmokeState<T>& initial, int n, const RolloutOptions& opt,
                             const RolloutLosses<T>* losses) const {
  if (n < 1) throw InvalidArgument("Rollout: steps = " + std::to_string(n) + " must be >= 1");
  check::on_grid(initial.velocity[0], "initial.velocity", sim_.grid(), Location::FaceX);
  const CheckpointOptions& c = opt.checkpointing;
  RolloutPlan p;
  p.size = estimate_size(sim_.context(), sim_.grid(), sim_.config(), int(initial.scalars.size()), n,
                         opt, &p.memory);
  add_obstacle_memory(p.memory, p.size, losses);
  p.output_bytes = p.memory.outputs;
  if (c.slots.device <= 0) p.budget = c.budget;
  checkpoint::PlanRequest request;
  request.steps = n;
  if (c.slots.device > 0) {
    request.slots = c.slots;
  } else {
    try {
      request.slots = checkpoint::slots_from_budget(c.budget, p.size);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string("rollout checkpointing: ") + e.what() +
                            "; raise CheckpointOptions::budget.device_bytes or give slots");
    }
  }
  request.size = p.size;
  request.costs = c.costs;
  request.strategy = c.strategy;
  p.plan = checkpoint::make_plan(request);
  p.summary = checkpoint::summarize(p.plan);
  return p;
}

namespace {

/// How the options name the memory behind a level's slots, for the slots' error messages.
std::string budget_name(const CheckpointOptions& c, Level level) {
  const bool host = level == Level::Host;
  if (c.slots.device > 0) {
    return std::string("CheckpointOptions::slots.") + (host ? "host" : "device") + " = " +
           std::to_string(host ? c.slots.host : c.slots.device);
  }
  return std::string("CheckpointOptions::budget.") + (host ? "host_bytes" : "device_bytes") +
         " = " + format_bytes(host ? c.budget.host_bytes : c.budget.device_bytes);
}

}  // namespace

template <class T>
void Rollout<T>::run_checkpointed(const SmokeState<T>& initial, int n,
                                  const std::vector<StepControls<T>>& controls,
                                  const RolloutLosses<T>& losses, const RolloutOptions& opt,
                                  RolloutResult<T>& r) {
  validate(initial, n, controls, losses);
  check_gradient_options(opt);
  const RolloutPlan p = plan(initial, n, opt, &losses);
  const Context& ctx = sim_.context();
  const int ns = int(initial.scalars.size());

  // Everything the run holds, before its first step: the plan's budget counts it all.
  own_store_.release();  // a store-all run's states: this run keeps checkpoints instead
  prepare_result(r, initial, n, opt);
  prepare_obstacle_terms(r, n, losses, opt);
  sim_.reserve_adjoint(ns);
  SmokeState<T>& cur = work_state(initial);
  const detail::SlotNeeds needs = detail::slot_needs(p.plan);
  if (!ws_->slots || !(ws_->slots->needs() == needs)) {
    ws_->slots.reset();  // the old buffers go before the new ones come: one set at a time
    ws_->slots = std::make_unique<detail::CheckpointSlots>(
        ctx, needs, budget_name(opt.checkpointing, Level::Device),
        budget_name(opt.checkpointing, Level::Host));
  }
  detail::CheckpointSlots& slots = *ws_->slots;
  slots.begin(p.summary.stores[static_cast<int>(Level::Disk)] > 0,
              opt.checkpointing.disk_directory);
  struct Finish {  // waits for the copies and removes the disk directory, also on a throw
    detail::CheckpointSlots& s;
    ~Finish() { s.finish(); }
  } finish{slots};

  begin_losses(controls, losses, &opt);
  effort_terms(controls, losses, opt, r);
  SmokeGradient<T>& grad = r.grad_initial;
  std::vector<double> per_state(std::size_t(n) + 1, 0.0);
  RolloutCheckpointInfo info;
  info.size = p.size;
  info.summary = p.summary;
  {
    Driver driver(*this, initial, n, controls, losses, opt, p, r, grad, cur, slots);
    checkpoint::execute_plan(p.plan, driver);
    if (!driver.complete()) throw Error("checkpointed rollout: the plan left steps unreversed");
    info.performed = driver.stats();
  }
  // One host wait: every loss value, and the last steps' cotangent checks.
  double effort = 0;
  finish_losses(per_state, effort, &r.loss_terms, &r);
  for (double v : per_state)
    r.loss += v;
  r.loss += effort;
  r.checkpointing = info;
}

#define DFLUID_ROLLOUT_CHECKPOINT(T)                                                               \
  template checkpoint::StateSize Rollout<T>::state_size(                                           \
      const SmokeState<T>&, int, const RolloutOptions&, std::size_t*, const RolloutLosses<T>*)     \
      const;                                                                                       \
  template RolloutPlan Rollout<T>::plan(const SmokeState<T>&, int, const RolloutOptions&,          \
                                        const RolloutLosses<T>*) const;                            \
  template checkpoint::StateSize Rollout<T>::estimate_size(const Context&, const Grid&,            \
                                                           const StepConfig&, int, int,            \
                                                           const RolloutOptions&, RolloutMemory*); \
  template void Rollout<T>::run_checkpointed(                                                      \
      const SmokeState<T>&, int, const std::vector<StepControls<T>>&, const RolloutLosses<T>&,     \
      const RolloutOptions&, RolloutResult<T>&);
DFLUID_ROLLOUT_CHECKPOINT(float)
DFLUID_ROLLOUT_CHECKPOINT(double)
#undef DFLUID_ROLLOUT_CHECKPOINT

}  // namespace dfluid
