// Face-fraction obstacles from Python (dfluid/face_fractions.hpp): the signed distance of a
// circle at the grid's nodes, the open fractions of the faces from node distances, and
// Simulation.set_obstacle_fractions (bound in simulation.cpp).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/face_fractions.hpp"
#include "objects.hpp"

namespace dfluid::py {

namespace {

/// The node array shape (C order, x fastest): (ny + 1, nx + 1) in 2D, (nz + 1, ny + 1, nx + 1)
/// in 3D, (nx + 1,) in 1D.
std::vector<size_t> node_shape(const Grid& g) {
  std::vector<size_t> s;
  for (int a = g.dim - 1; a >= 0; --a)
    s.push_back(size_t(g.n[size_t(a)]) + 1);
  return s;
}

std::array<double, 3> point(const std::vector<double>& c, const Grid& g, const char* name) {
  if (c.size() != size_t(g.dim))
    throw InvalidArgument(std::string(name) + ": expected " + std::to_string(g.dim) +
                          " coordinates, got " + std::to_string(c.size()));
  std::array<double, 3> p{0, 0, 0};
  for (size_t a = 0; a < c.size(); ++a)
    p[a] = c[a];
  return p;
}

}  // namespace

void bind_face_fraction_nodes(nb::module_& m) {
  m.def(
      "circle_node_distance",
      [](const Grid& grid, std::vector<double> center, double radius) {
        auto* d = new std::vector<double>(
            circle_node_distance(grid, point(center, grid, "center"), radius));
        nb::capsule owner(d, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
        const std::vector<size_t> shape = node_shape(grid);
        return nb::ndarray<nb::numpy, double>(d->data(), shape.size(), shape.data(), owner);
      },
      nb::arg("grid"), nb::arg("center"), nb::arg("radius"),
      "The signed distance |x - center| - radius to a circle (2D; a sphere in 3D) at every "
      "node of the grid (positive outside: the fluid around a body; negate it for a fluid "
      "inside a container). A float64 array of the node shape: (ny + 1, nx + 1) in 2D, "
      "(nz + 1, ny + 1, nx + 1) in 3D; node (i, j, k) sits at origin + (i, j, k) dx.");
}

namespace {

/// The node distance argument checked against the grid's node shape, as a vector.
std::vector<double> node_distance_values(const Grid& grid, nb::handle node_distance) {
  const std::vector<size_t> shape = node_shape(grid);
  nb::ndarray<double, nb::c_contig, nb::device::cpu> a;
  if (!nb::try_cast(node_distance, a, false))
    throw InvalidArgument(
        "node_distance: expected a C-contiguous float64 array in host memory of the node "
        "shape " +
        shape_string(shape));
  std::vector<size_t> got(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i)
    got[i] = a.shape(i);
  if (got != shape)
    throw InvalidArgument("node_distance: shape " + shape_string(got) +
                          ", expected the node shape " + shape_string(shape) +
                          " (one more than the cells along each axis)");
  return std::vector<double>(a.data(), a.data() + a.size());
}

/// A MacVelocity handed to Python as a tuple of face arrays that own it.
template <class T>
nb::object owned_mac(const Context& ctx, MacVelocity<T>&& v) {
  auto* u = new MacVelocity<T>(std::move(v));
  nb::capsule owner(u, [](void* p) noexcept { delete static_cast<MacVelocity<T>*>(p); });
  return mac_views(*u, owner, ctx.cuda_device());
}

}  // namespace

template <class T>
void bind_face_fractions(nb::module_& m, const std::string& suffix) {
  m.def(("face_open_fractions" + suffix).c_str(),
        [](const Context& ctx, const Grid& grid, nb::handle node_distance) {
          return owned_mac<T>(
              ctx, face_open_fractions<T>(ctx, grid, node_distance_values(grid, node_distance)));
        },
        nb::arg("ctx"), nb::arg("grid"), nb::arg("node_distance"),
        "The open fraction in [0, 1] of every face, from a signed distance at the nodes "
        "(circle_node_distance, or any level set: > 0 fluid): a tuple of face arrays "
        "(grid.velocity_shapes; dfluid's memory). Give it to Simulation.set_obstacle_fractions.");
  m.def(("face_center_distance" + suffix).c_str(),
        [](const Context& ctx, const Grid& grid, nb::handle node_distance) {
          return owned_mac<T>(
              ctx, face_center_distance<T>(ctx, grid, node_distance_values(grid, node_distance)));
        },
        nb::arg("ctx"), nb::arg("grid"), nb::arg("node_distance"),
        "The signed distance at every face centre (the mean of the face's corner nodes) from "
        "the same node distance: a tuple of face arrays. Give it to "
        "Simulation.set_obstacle_fractions(open_fractions, face_distance) for a no-slip body "
        "whose wall the viscous term sees at its true distance (ghost fluid).");
}

template void bind_face_fractions<float>(nb::module_&, const std::string&);
template void bind_face_fractions<double>(nb::module_&, const std::string&);

}  // namespace dfluid::py
