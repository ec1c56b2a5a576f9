// The binding's parts, each in its own file, put together by NB_MODULE in core.cpp.
#pragma once

#include <nanobind/nanobind.h>

#include <string>

#include "arrays.hpp"

namespace dfluid::py {

/// Exceptions, Grid, Context, StepConfig and the reports (core.cpp).
void bind_core(nb::module_& m);
/// State, Gradient, Simulation, Rollout and Optimizer of precision T, as <Name><suffix>
/// (StateF32, SimulationF64, ...; simulation.cpp). The package picks one by dtype.
template <class T>
void bind_simulation(nb::module_& m, const char* suffix);
/// Optimizer<T> as Optimizer<suffix> (optimizer.cpp).
template <class T>
void bind_optimizer(nb::module_& m, const char* suffix);
/// BoundaryGradient and side_shape (boundary.cpp).
void bind_boundary(nb::module_& m);
/// HDF5 snapshots: SnapshotWriter, read_grid, list_snapshots, read_field (io.cpp).
void bind_io(nb::module_& m);
/// Face-fraction obstacles (face_fractions.cpp): circle_node_distance, and
/// face_open_fractions<suffix> of precision T.
void bind_face_fraction_nodes(nb::module_& m);
template <class T>
void bind_face_fractions(nb::module_& m, const std::string& suffix);

}  // namespace dfluid::py
