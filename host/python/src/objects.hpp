// The Python objects of the binding's State, Gradient and Simulation, and the helpers that
// wrap the caller's arrays into them (simulation.cpp binds them, rollout.cpp the Rollout).
// Named namespace, not an anonymous one: nanobind identifies the classes by their type, which
// must be the same in every file that casts them.
#pragma once

#include <nanobind/nanobind.h>

#include <memory>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::py {

inline bool is_list_or_tuple(nb::handle h) {
  return PyList_Check(h.ptr()) || PyTuple_Check(h.ptr());
}

/// Keeps every item of a list/tuple alive (the arrays themselves: the caller may change the
/// list afterwards).
inline void keep_items(nb::list& keep, nb::handle seq) {
  for (size_t i = 0; i < nb::len(seq); ++i)
    keep.append(seq[i]);
}

inline std::string item(const std::string& name, size_t i) {
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

inline const char* dtype_of(float) {
  return "float32";
}
inline const char* dtype_of(double) {
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

/// Rollout<T> and its RolloutResult<T> as Rollout<suffix> (rollout.cpp).
template <class T>
void bind_rollout(nb::module_& m, const std::string& suffix);
/// rigid_rotation_velocity<suffix> (rollout.cpp).
template <class T>
void bind_rotation(nb::module_& m, const std::string& suffix);

}  // namespace dfluid::py
