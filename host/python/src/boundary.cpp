#include "boundary.hpp"

#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <vector>

#include "dfluid/error.hpp"

namespace dfluid::py {

namespace {

const char* kAxes = "xyz";

std::string sides_of(const Grid& g) {
  std::string s;
  for (int a = 0; a < g.dim; ++a)
    s += std::string(a ? ", " : "") + side_name(a, 0) + ", " + side_name(a, 1);
  return s;
}

}  // namespace

std::pair<int, int> parse_side(nb::handle key, const Grid& g, const std::string& name) {
  int axis = -1, side = -1;
  if (nb::isinstance<nb::str>(key)) {
    const std::string s = nb::cast<std::string>(key);
    if (s.size() >= 3 && s[1] == '-') {
      for (int a = 0; a < 3; ++a)
        if (s[0] == kAxes[a]) axis = a;
      const std::string tail = s.substr(2);
      side = tail == "low" ? 0 : tail == "high" ? 1 : -1;
    }
  } else if (nb::isinstance<nb::tuple>(key) && nb::len(key) == 2) {
    try {
      axis = nb::cast<int>(key[0]);
      side = nb::cast<int>(key[1]);
    } catch (const nb::cast_error&) {
      axis = -1;
    }
    if (side != 0 && side != 1) side = -1;
  }
  if (axis < 0 || axis >= g.dim || side < 0)
    throw InvalidArgument(name + ": " + nb::cast<std::string>(nb::repr(key)) +
                          " is not a side of a " + std::to_string(g.dim) +
                          "D grid; expected one of " + sides_of(g) +
                          " (or a tuple (axis, 0 = low / 1 = high))");
  return {axis, side};
}

std::vector<size_t> side_shape(const Grid& g, int axis) {
  std::vector<size_t> s;
  for (int a = g.dim - 1; a >= 0; --a)
    if (a != axis) s.push_back(size_t(g.n[a]));
  return s;
}

namespace {

/// A side's inflow profile: a float32/float64 array of side_shape (a 1D grid's side: one
/// value, shape () or (1,)), as doubles.
std::vector<double> profile_from(nb::handle obj, const Grid& g, int axis, const std::string& name) {
  std::vector<size_t> want = side_shape(g, axis);
  nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu> a;
  if (!nb::try_cast(obj, a, false))
    throw InvalidArgument(name +
                          ": expected a C-contiguous CPU array (numpy, or torch/jax on the "
                          "CPU) of shape " +
                          shape_string(want) + ", got an object of type " +
                          nb::type_name(obj.type()).c_str());
  const bool f64 = a.dtype() == nb::dtype<double>(), f32 = a.dtype() == nb::dtype<float>();
  if (!f64 && !f32)
    throw InvalidArgument(name + ": expected float32 or float64 values (an inflow velocity)");
  std::vector<size_t> got(a.shape_ptr(), a.shape_ptr() + a.ndim());
  if (got != want && !(want.empty() && got == std::vector<size_t>{1}))
    throw InvalidArgument(name + ": shape " + shape_string(got) + ", expected shape " +
                          shape_string(want) + " (one value per face of side " +
                          side_name(axis, 0).substr(0, 1) +
                          ", the normal axis dropped, C order: x fastest)");
  std::vector<double> v(a.size());
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = f64 ? static_cast<const double*>(a.data())[i]
               : double(static_cast<const float*>(a.data())[i]);
  return v;
}

void expect_dict(nb::handle h, const char* name, const char* what) {
  if (!nb::isinstance<nb::dict>(h))
    throw InvalidArgument(std::string(name) + ": expected a dict side -> " + what +
                          " (sides 'x-low', 'y-high', ...), got " +
                          nb::type_name(h.type()).c_str());
}

}  // namespace

VelocityBoundary velocity_boundary_from(nb::handle inflow, nb::handle wall, const Grid& g,
                                        nb::handle outflow_speed) {
  VelocityBoundary vb;
  if (outflow_speed.is_valid() && !outflow_speed.is_none()) {
    expect_dict(outflow_speed, "outflow_speed", "speed U_c (a number > 0)");
    for (auto [k, v] : nb::borrow<nb::dict>(outflow_speed)) {
      const std::string name = "outflow_speed[" + nb::cast<std::string>(nb::repr(k)) + "]";
      auto [axis, side] = parse_side(k, g, "outflow_speed");
      double uc = 0;
      if (!nb::try_cast(v, uc))
        throw InvalidArgument(name + ": expected a number (U_c > 0 of a convective-outflow side)");
      vb.outflow_speed[size_t(axis)][size_t(side)] = uc;
    }
  }
  if (inflow.is_valid() && !inflow.is_none()) {
    expect_dict(inflow, "inflow", "profile array");
    for (auto [k, v] : nb::borrow<nb::dict>(inflow)) {
      const std::string name = "inflow[" + nb::cast<std::string>(nb::repr(k)) + "]";
      auto [axis, side] = parse_side(k, g, "inflow");
      vb.inflow[size_t(axis)][size_t(side)] = profile_from(v, g, axis, name);
    }
  }
  if (wall.is_valid() && !wall.is_none()) {
    expect_dict(wall, "wall", "velocity (one number per axis)");
    for (auto [k, v] : nb::borrow<nb::dict>(wall)) {
      const std::string name = "wall[" + nb::cast<std::string>(nb::repr(k)) + "]";
      auto [axis, side] = parse_side(k, g, "wall");
      std::vector<double> u;
      if (!nb::try_cast(v, u) || u.size() != size_t(g.dim))
        throw InvalidArgument(name + ": expected " + std::to_string(g.dim) +
                              " numbers (the wall's velocity, x first; the component normal to "
                              "the side is ignored)");
      for (int c = 0; c < g.dim; ++c)
        vb.wall.v[size_t(axis)][size_t(side)][size_t(c)] = u[size_t(c)];
    }
  }
  return vb;
}

std::array<double, 3> force_direction(nb::handle dir, const Grid& g, const std::string& name) {
  std::vector<double> d;
  if (!nb::try_cast(dir, d) || (d.size() != size_t(g.dim) && d.size() != 3))
    throw InvalidArgument(name + ": expected " + std::to_string(g.dim) +
                          " numbers (the force component to take, x first; drag: the mean "
                          "flow's direction)");
  std::array<double, 3> out{0, 0, 0};
  for (size_t c = 0; c < d.size(); ++c)
    out[c] = d[c];
  return out;
}

void bind_boundary(nb::module_& m) {
  nb::class_<PyBoundaryGradient>(
      m, "BoundaryGradient",
      "d loss / d the velocity boundary (VelocityBoundaryGradient): ``inflow`` maps each "
      "Inflow side to the gradient of its profile (an array viewing this object's memory), "
      "``wall`` each MovingWall side to the gradient of its velocity. "
      "Simulation.step_adjoint(grad_boundary=...) accumulates into it; "
      "RolloutResult.grad_boundary is one.")
      .def(
          "__init__",
          [](PyBoundaryGradient* self, const Grid& g) {
            new (self) PyBoundaryGradient{g, {}};
          },
          nb::arg("grid"), "A zero gradient (its profiles are sized by the first adjoint).")
      .def_prop_ro(
          "inflow",
          [](nb::handle self) {
            auto& p = nb::cast<PyBoundaryGradient&>(self);
            nb::dict d;
            for (int a = 0; a < p.grid.dim; ++a)
              for (int s = 0; s < 2; ++s) {
                std::vector<double>& v = p.g.inflow[size_t(a)][size_t(s)];
                if (v.empty()) continue;
                std::vector<size_t> shape = side_shape(p.grid, a);
                if (shape.empty()) shape.push_back(1);
                d[side_name(a, s).c_str()] =
                    nb::ndarray<nb::numpy, double>(v.data(), shape.size(), shape.data(), self)
                        .cast();
              }
            return d;
          },
          "dict side -> d loss / d its inflow profile (Inflow sides; shape as the profile).")
      .def_prop_ro(
          "wall",
          [](const PyBoundaryGradient& p) {
            nb::dict d;
            for (int a = 0; a < p.grid.dim; ++a)
              for (int s = 0; s < 2; ++s) {
                if (p.grid.boundary[size_t(a)][size_t(s)] != BoundaryKind::MovingWall) continue;
                nb::list l;
                for (int c = 0; c < p.grid.dim; ++c)
                  l.append(p.g.wall.v[size_t(a)][size_t(s)][size_t(c)]);
                d[side_name(a, s).c_str()] = nb::tuple(l);
              }
            return d;
          },
          "dict side -> d loss / d its wall velocity (MovingWall sides; dim numbers, the "
          "normal component 0).");

  m.def(
      "side_shape",
      [](const Grid& g, nb::handle side) {
        auto [axis, s] = parse_side(side, g, "side");
        (void)s;
        return nb::tuple(nb::cast(side_shape(g, axis)));
      },
      nb::arg("grid"), nb::arg("side"),
      "The shape of an inflow profile of `side` ('x-low', ...): the side's faces with the "
      "normal axis dropped, C order (x fastest).");
}

}  // namespace dfluid::py
