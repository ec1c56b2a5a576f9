// The requests a Simulation's step() and step_adjoint() make to the context's pool of
// temporaries (detail::TempBuffer), in the order the operators make them. One script serves
// the memory estimate (replayed on a model of the pool) and Simulation::reserve_adjoint()
// (replayed on the real pool, so that the first step_adjoint finds every block it takes):
// the pool then holds exactly what the estimate counts.
#pragma once

#include <cstddef>
#include <vector>

#include "core/scatter_workspace.hpp"
#include "diffusion/diffusion_workspace.hpp"
#include "dfluid/simulation.hpp"

namespace dfluid::detail {

/// Takes and gives back of pool blocks: bytes > 0 takes a block of that size as `block`,
/// bytes == 0 gives `block` back.
struct PoolScript {
  struct Event {
    std::size_t bytes;
    int block;
  };
  std::vector<Event> events;
  int blocks = 0;
  int take(std::size_t bytes) {
    events.push_back({bytes, blocks});
    return blocks++;
  }
  void give(int block) { events.push_back({0, block}); }
};

/// The context's pool (ContextState::take_temp): a request takes the smallest free block that
/// is large enough, or a new one; blocks are kept. `total`: the bytes it ends up holding.
struct PoolModel {
  std::vector<std::size_t> size;
  std::vector<bool> busy;
  std::vector<std::size_t> held;  // script block -> pool block
  std::size_t total = 0;
  void run(const PoolScript& s) {
    held.resize(std::size_t(s.blocks));
    for (const PoolScript::Event& e : s.events) {
      if (e.bytes == 0) {
        busy[held[std::size_t(e.block)]] = false;
        continue;
      }
      std::size_t best = size.size();
      for (std::size_t i = 0; i < size.size(); ++i)
        if (!busy[i] && size[i] >= e.bytes && (best == size.size() || size[i] < size[best]))
          best = i;
      if (best == size.size()) {
        size.push_back(e.bytes);
        busy.push_back(false);
        total += e.bytes;
      }
      busy[best] = true;
      held[std::size_t(e.block)] = best;
    }
  }
};

template <class T>
std::size_t elements_at(const Grid& g, Location loc) {
  const std::array<int, 3> e = extents_of(g, loc);
  return std::size_t(e[0]) * std::size_t(e[1]) * std::size_t(e[2]);
}

/// One implicit solve (cuda/diffusion/diffusion.cpp, ImplicitTemps): one block for its
/// duration.
template <class T>
void implicit_solve_requests(PoolScript& s, std::size_t elements, int arrays) {
  s.give(s.take(implicit_workspace_bytes(sizeof(T) * elements, arrays)));
}

/// The implicit solves of the Diffuse part (Simulation::diffuse, or its adjoint): every
/// velocity component, then every scalar.
template <class T>
void diffuse_requests(PoolScript& s, const Grid& g, const StepConfig& c, int ns, bool adjoint) {
  if (c.diffusion != DiffusionMode::Implicit) return;
  const int arrays = adjoint ? kImplicitAdjointArrays : kImplicitForwardArrays;
  if (c.viscosity > 0)
    for (int a = 0; a < g.dim; ++a)
      implicit_solve_requests<T>(s, elements_at<T>(g, face_location(a)), arrays);
  if (c.scalar_diffusivity > 0)
    for (int i = 0; i < ns; ++i)
      implicit_solve_requests<T>(s, elements_at<T>(g, Location::Cell), arrays);
}

/// The adjoint of one advected array of `elements` (cuda/advection/advection_launches.hpp,
/// advect_array_adjoint) with a velocity cotangent: MacCormack holds q^ and its cotangent
/// throughout and runs two scatters (5 targets: the velocity cotangent's components, the
/// array's cotangent, q^'s cotangent; then 4), semi-Lagrangian one scatter (4 targets).
template <class T>
void array_adjoint_requests(PoolScript& s, const Grid& g, std::size_t elements,
                            const AdvectionOptions& opt) {
  const bool mc = opt.scheme == AdvectionScheme::MacCormack;
  std::vector<std::size_t> targets;
  for (int a = 0; a < g.dim; ++a)
    targets.push_back(elements_at<T>(g, face_location(a)));
  targets.push_back(elements);
  auto scatter = [&](const std::vector<std::size_t>& t) {
    std::vector<int> taken;
    for (std::size_t bytes : scatter_workspace_bytes(t))
      taken.push_back(s.take(bytes));
    for (int b : taken)
      s.give(b);
  };
  int qhat = -1, qhat_bar = -1;
  if (mc) {
    qhat = s.take(sizeof(T) * elements);
    qhat_bar = s.take(sizeof(T) * elements);
    std::vector<std::size_t> with_aux = targets;
    with_aux.push_back(elements);
    scatter(with_aux);
  }
  scatter(targets);
  if (mc) {
    s.give(qhat);
    s.give(qhat_bar);
  }
}

/// Everything one step() and then one step_adjoint() (replay and part adjoints) request, for
/// a state with `ns` scalars. `forward_events` is set to the number of events of step().
template <class T>
PoolScript step_pool_script(const Grid& g, const StepConfig& c, int ns,
                            std::size_t* forward_events = nullptr) {
  PoolScript s;
  for (StepPart p : c.order)
    if (p == StepPart::Diffuse) diffuse_requests<T>(s, g, c, ns, false);
  if (forward_events) *forward_events = s.events.size();
  // step_adjoint's replay runs the parts before the last one whose adjoint needs a snapshot.
  int last = -1;
  for (int k = 0; k < int(c.order.size()); ++k) {
    const StepPart p = c.order[std::size_t(k)];
    if (p == StepPart::AdvectScalars || p == StepPart::AdvectVelocity ||
        (p == StepPart::Forces && c.buoyancy != 0))
      last = k;
  }
  for (int k = 0; k < last; ++k)
    if (c.order[std::size_t(k)] == StepPart::Diffuse) diffuse_requests<T>(s, g, c, ns, false);
  for (auto it = c.order.rbegin(); it != c.order.rend(); ++it) {
    if (*it == StepPart::Diffuse) diffuse_requests<T>(s, g, c, ns, true);
    if (*it == StepPart::AdvectVelocity)
      for (int a = 0; a < g.dim; ++a)
        array_adjoint_requests<T>(s, g, elements_at<T>(g, face_location(a)), c.velocity_advection);
    if (*it == StepPart::AdvectScalars)
      for (int i = 0; i < ns; ++i)
        array_adjoint_requests<T>(s, g, elements_at<T>(g, Location::Cell), c.scalar_advection);
  }
  return s;
}

}  // namespace dfluid::detail
