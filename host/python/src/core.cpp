// dfluid._dfluid: exceptions, Grid, Context and the step configuration (the parts that do not
// depend on the precision). simulation.cpp binds the float and double classes, io.cpp HDF5.
#include <nanobind/nanobind.h>
#include <nanobind/operators.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/io/hdf5.hpp"

namespace dfluid::py {

namespace {

// Python classes of dfluid's exceptions (filled by bind_errors). InvalidArgument is also a
// ValueError and NonFiniteValue a FloatingPointError, so ordinary `except` clauses work.
nb::object g_error, g_invalid, g_shape, g_nonfinite, g_unstable, g_notconverged, g_cuda, g_io;

nb::object make_exception(nb::module_& m, const char* name, nb::handle base1, nb::handle base2,
                          const char* doc) {
  nb::object type = nb::module_::import_("builtins").attr("type");
  nb::dict ns;
  ns["__doc__"] = doc;
  ns["__module__"] = "dfluid";
  nb::object bases = base2.is_valid() ? nb::make_tuple(base1, base2) : nb::make_tuple(base1);
  nb::object cls = type(name, bases, ns);
  m.attr(name) = cls;
  return cls;
}

void bind_errors(nb::module_& m) {
  g_error = make_exception(m, "Error", PyExc_RuntimeError, nb::handle(),
                           "Base of every dfluid exception.");
  g_invalid = make_exception(m, "InvalidArgument", g_error, PyExc_ValueError,
                             "An argument is invalid; the message names it and the fix.");
  g_shape = make_exception(m, "ShapeMismatch", g_invalid, nb::handle(),
                           "Fields (or a field and a grid) disagree in shape or location.");
  g_nonfinite = make_exception(m, "NonFiniteValue", g_error, PyExc_FloatingPointError,
                               "NaN or Inf in an input or produced by an operator.");
  g_unstable = make_exception(m, "UnstableTimeStep", g_invalid, nb::handle(),
                              "An explicit time step would be unstable.");
  g_notconverged = make_exception(m, "SolverNotConverged", g_error, nb::handle(),
                                  "An iterative solver reached its iteration cap.");
  g_cuda = make_exception(m, "CudaError", g_error, nb::handle(),
                          "The CUDA runtime failed, or the CUDA path is unavailable.");
  g_io = make_exception(m, "IoError", g_error, nb::handle(),
                        "An HDF5 file could not be written or read.");
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    auto raise = [](const nb::object& cls, const char* what) { PyErr_SetString(cls.ptr(), what); };
    try {
      std::rethrow_exception(p);
    } catch (const ShapeMismatch& e) {
      raise(g_shape, e.what());
    } catch (const UnstableTimeStep& e) {
      raise(g_unstable, e.what());
    } catch (const InvalidArgument& e) {
      raise(g_invalid, e.what());
    } catch (const NonFiniteValue& e) {
      raise(g_nonfinite, e.what());
    } catch (const SolverNotConverged& e) {
      raise(g_notconverged, e.what());
    } catch (const CudaError& e) {
      raise(g_cuda, e.what());
    } catch (const io::IoError& e) {
      raise(g_io, e.what());
    } catch (const Error& e) {
      raise(g_error, e.what());
    }
  });
}

BoundaryKind boundary_of(nb::handle h, const char* name) {
  if (nb::isinstance<BoundaryKind>(h)) return nb::cast<BoundaryKind>(h);
  if (nb::isinstance<nb::str>(h)) {
    try {
      return parse_boundary_kind(nb::cast<std::string>(h));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string(name) + ": " + e.what());
    }
  }
  throw InvalidArgument(std::string(name) +
                        ": expected 'wall' (free-slip), 'no-slip', 'moving-wall', 'inflow', "
                        "'outflow', 'convective-outflow', 'open', 'periodic' or a "
                        "dfluid.BoundaryKind");
}

void bind_grid(nb::module_& m) {
  nb::enum_<BoundaryKind>(m, "BoundaryKind", "Velocity boundary of one side of the box.")
      .value("Wall", BoundaryKind::Wall,
             "free-slip wall ('wall'): no flow through the side, no tangential stress")
      .value("Open", BoundaryKind::Open, "pressure 0 outside, zero-gradient velocity")
      .value("Periodic", BoundaryKind::Periodic, "wraps to the opposite side (both sides)")
      .value("NoSlip", BoundaryKind::NoSlip, "no-slip wall ('no-slip'): velocity 0 on the side")
      .value("MovingWall", BoundaryKind::MovingWall,
             "no-slip wall moving tangentially ('moving-wall'; its velocity: "
             "Simulation.set_velocity_boundary(wall=...))")
      .value("Inflow", BoundaryKind::Inflow,
             "prescribed normal velocity ('inflow'; the profile: "
             "Simulation.set_velocity_boundary(inflow=...)), tangential velocity 0")
      .value("Outflow", BoundaryKind::Outflow,
             "pressure 0 outside, zero normal gradient of the velocity ('outflow')")
      .value("ConvectiveOutflow", BoundaryKind::ConvectiveOutflow,
             "du/dt + U_c du/dn = 0 on the normal faces ('convective-outflow'; U_c: "
             "Simulation.set_velocity_boundary(outflow_speed=...)), held by the projection");
  nb::enum_<Location>(m, "Location", "Where a field's values sit on the MAC grid.")
      .value("Cell", Location::Cell)
      .value("FaceX", Location::FaceX)
      .value("FaceY", Location::FaceY)
      .value("FaceZ", Location::FaceZ);

  nb::class_<Grid>(m, "Grid",
                   "A uniform 1D/2D/3D grid with its box boundaries.\n\n"
                   "``cells`` is the number of cells per axis in x, y, z order, like the C++ "
                   "Grid; arrays are in C order with x fastest, so a 2D cell field of "
                   "Grid((nx, ny)) has the shape (ny, nx) (see :meth:`shape`). Every side is a "
                   "wall unless ``boundary`` (one kind for every side) or "
                   ":meth:`set_boundary` says otherwise.")
      .def(
          "__init__",
          [](Grid* self, std::vector<int> cells, double dx, std::vector<double> origin,
             nb::handle boundary) {
            if (cells.empty() || cells.size() > 3)
              throw InvalidArgument("cells: expected 1 to 3 cell counts (nx[, ny[, nz]]), got " +
                                    std::to_string(cells.size()));
            if (!origin.empty() && origin.size() != cells.size())
              throw InvalidArgument("origin: expected " + std::to_string(cells.size()) +
                                    " coordinates (one per axis of cells), got " +
                                    std::to_string(origin.size()));
            Grid g;
            g.dim = int(cells.size());
            for (int a = 0; a < g.dim; ++a) {
              g.n[a] = cells[a];
              if (!origin.empty()) g.origin[a] = origin[a];
            }
            g.dx = dx;
            g.set_boundary(boundary_of(boundary, "boundary"));
            g.validate();
            new (self) Grid(g);
          },
          nb::arg("cells"), nb::arg("dx") = 1.0, nb::arg("origin") = std::vector<double>{},
          nb::arg("boundary") = "wall")
      .def_ro("dim", &Grid::dim, "1, 2 or 3")
      .def_prop_ro(
          "cells", [](const Grid& g) { return std::vector<int>(g.n.begin(), g.n.begin() + g.dim); },
          "cells per axis, x first")
      .def_ro("dx", &Grid::dx, "cell size (the same along every axis)")
      .def_prop_ro("origin",
                   [](const Grid& g) {
                     return std::vector<double>(g.origin.begin(), g.origin.begin() + g.dim);
                   })
      .def(
          "set_boundary",
          [](Grid& g, int axis, nb::handle low, nb::handle high) -> Grid& {
            if (axis < 0 || axis >= g.dim)
              throw InvalidArgument("axis: " + std::to_string(axis) + " is not an axis of a " +
                                    std::to_string(g.dim) + "D grid (0.." +
                                    std::to_string(g.dim - 1) + ")");
            g.set_boundary(axis, boundary_of(low, "low"), boundary_of(high, "high"));
            g.validate();
            return g;
          },
          nb::arg("axis"), nb::arg("low"), nb::arg("high"), nb::rv_policy::reference,
          "Sets both sides of `axis` (0 = x) to 'wall' (free-slip), 'no-slip', 'moving-wall', "
          "'inflow', 'outflow', 'open' or 'periodic' (or BoundaryKind values); returns the grid.")
      .def(
          "boundary",
          [](const Grid& g, int axis) {
            if (axis < 0 || axis >= g.dim)
              throw InvalidArgument("axis: " + std::to_string(axis) + " is not an axis of a " +
                                    std::to_string(g.dim) + "D grid");
            return std::vector<std::string>{to_string(g.boundary[axis][0]),
                                            to_string(g.boundary[axis][1])};
          },
          nb::arg("axis"), "The (low, high) boundary kinds of `axis` as strings.")
      .def(
          "shape",
          [](const Grid& g, Location loc) {
            if (loc != Location::Cell && int(loc) > g.dim)
              throw InvalidArgument("location: " + std::string(to_string(loc)) +
                                    " does not exist on a " + std::to_string(g.dim) + "D grid");
            std::vector<size_t> s = array_shape(g, loc);
            return nb::tuple(nb::cast(s));
          },
          nb::arg("location") = Location::Cell,
          "Array shape (C order) of values at `location`: cells, or the faces normal to an "
          "axis (n + 1 along it, n when periodic).")
      .def_prop_ro(
          "velocity_shapes",
          [](const Grid& g) {
            nb::list l;
            for (int a = 0; a < g.dim; ++a)
              l.append(nb::tuple(nb::cast(array_shape(g, face_location(a)))));
            return nb::tuple(l);
          },
          "The shapes of the MAC velocity components (x first).")
      .def("describe", &Grid::describe)
      .def("__repr__", [](const Grid& g) { return "dfluid.Grid(" + g.describe() + ")"; })
      .def(nb::self == nb::self);
}

nb::dict counters_dict(const ContextCounters& c) {
  nb::dict d;
  d["launches"] = c.launches;
  d["host_waits"] = c.host_waits;
  d["allocations"] = c.allocations;
  d["frees"] = c.frees;
  d["bytes_to_device"] = c.bytes_to_device;
  d["bytes_to_host"] = c.bytes_to_host;
  d["bytes_held"] = c.bytes_held;
  d["peak_bytes"] = c.peak_bytes;
  return d;
}

void bind_context(nb::module_& m) {
  m.def("cuda_available", &cuda_available,
        "True when this build has its CUDA path and a CUDA device is visible.");
  m.def("cpu_threads", &cpu_threads, "Threads of the CPU path's per-cell loops.");
  m.def("set_cpu_threads", &set_cpu_threads, nb::arg("n"),
        "Sets the CPU path's thread count for the process (results are bitwise the same).");
  m.def(
      "build_has_cuda", [] { return bool(DFLUID_WITH_CUDA); },
      "True when this build has the CUDA path (whether or not a GPU is visible).");

  nb::class_<Context>(m, "Context",
                      "Where work runs: the CUDA path on a stream, or the CPU path.\n\n"
                      "``Context('auto')`` picks the GPU when present, ``'cpu'`` the CPU path, "
                      "``'cuda'`` the GPU (CudaError without one). :meth:`cuda` runs on a stream "
                      "the caller owns, e.g. ``torch.cuda.current_stream().cuda_stream``, so "
                      "dfluid's work is ordered with the caller's without extra waits.")
      .def(
          "__init__",
          [](Context* self, const std::string& device, int cuda_device) {
            new (self) Context(Context::create(parse_device(device), cuda_device));
          },
          nb::arg("device") = "auto", nb::arg("cuda_device") = 0)
      .def_static("cpu", &Context::cpu, "The CPU path.")
      .def_static(
          "cuda",
          [](uintptr_t stream, int cuda_device) {
            return Context::cuda(reinterpret_cast<void*>(stream), cuda_device);
          },
          nb::arg("stream") = 0, nb::arg("cuda_device") = 0,
          "The CUDA path on the caller's cudaStream_t, given as an integer (0: the legacy "
          "default stream).")
      .def_prop_ro(
          "device", [](const Context& c) { return std::string(to_string(c.device())); },
          "'cuda' or 'cpu'")
      .def_prop_ro("on_gpu", &Context::on_gpu)
      .def_prop_ro("cuda_device", &Context::cuda_device)
      .def_prop_ro(
          "stream", [](const Context& c) { return reinterpret_cast<uintptr_t>(c.stream()); },
          "The cudaStream_t as an integer (0 on the CPU path).")
      .def("description", &Context::description)
      .def("synchronize", &Context::synchronize, "Host wait for the work enqueued so far.")
      .def(
          "counters", [](const Context& c) { return counters_dict(c.counters()); },
          "What the work on this context cost (dict: launches, host_waits, allocations, frees, "
          "bytes_to_device, bytes_to_host, bytes_held, peak_bytes); see ContextCounters.")
      .def("reset_counters", &Context::reset_counters)
      .def("__repr__", [](const Context& c) { return "dfluid.Context(" + c.description() + ")"; });
}

void bind_config(nb::module_& m) {
  nb::class_<SolveReport>(m, "SolveReport", "What an iterative solve did.")
      .def_ro("iterations", &SolveReport::iterations)
      .def_ro("initial_residual", &SolveReport::initial_residual)
      .def_ro("residual", &SolveReport::residual)
      .def_ro("converged", &SolveReport::converged)
      .def("__repr__", [](const SolveReport& r) {
        return "SolveReport(iterations=" + std::to_string(r.iterations) +
               ", residual=" + std::to_string(r.residual) + ")";
      });
  nb::class_<StepReport>(m, "StepReport", "The solves of one step (or step adjoint).")
      .def_ro("pressure", &StepReport::pressure)
      .def_ro("diffusion", &StepReport::diffusion);

  nb::class_<StepConfig>(m, "StepConfig",
                         "One smoke step: advection (scalars MacCormack, velocity "
                         "semi-Lagrangian), buoyancy/forces/sources, optional diffusion, MGPCG "
                         "projection. Every argument is also a read-write attribute.")
      .def(
          "__init__",
          [](StepConfig* self, double dt, double buoyancy, int buoyancy_scalar, int up_axis,
             const std::string& scalar_advection, const std::string& velocity_advection,
             const std::string& backtrace, const std::string& diffusion, double viscosity,
             double scalar_diffusivity, double pressure_tolerance, int pressure_max_iterations,
             bool check_finite) {
            StepConfig c;
            c.dt = dt;
            c.buoyancy = buoyancy;
            c.buoyancy_scalar = buoyancy_scalar;
            c.up_axis = up_axis;
            c.scalar_advection.scheme = parse_advection_scheme(scalar_advection);
            c.velocity_advection.scheme = parse_advection_scheme(velocity_advection);
            c.scalar_advection.backtrace = c.velocity_advection.backtrace =
                parse_backtrace(backtrace);
            c.diffusion = parse_diffusion_mode(diffusion);
            c.viscosity = viscosity;
            c.scalar_diffusivity = scalar_diffusivity;
            c.pressure.rel_tol = pressure_tolerance;
            c.pressure.max_iterations = pressure_max_iterations;
            c.check_finite = check_finite;
            new (self) StepConfig(c);
          },
          nb::arg("dt") = 1.0, nb::arg("buoyancy") = 0.0, nb::arg("buoyancy_scalar") = 0,
          nb::arg("up_axis") = 1, nb::arg("scalar_advection") = "maccormack",
          nb::arg("velocity_advection") = "semi-lagrangian", nb::arg("backtrace") = "euler",
          nb::arg("diffusion") = "none", nb::arg("viscosity") = 0.0,
          nb::arg("scalar_diffusivity") = 0.0, nb::arg("pressure_tolerance") = 1e-6,
          nb::arg("pressure_max_iterations") = 500, nb::arg("check_finite") = true)
      .def_rw("dt", &StepConfig::dt)
      .def_rw("buoyancy", &StepConfig::buoyancy)
      .def_rw("buoyancy_scalar", &StepConfig::buoyancy_scalar)
      .def_rw("up_axis", &StepConfig::up_axis)
      .def_rw("viscosity", &StepConfig::viscosity)
      .def_rw("scalar_diffusivity", &StepConfig::scalar_diffusivity)
      .def_rw("check_finite", &StepConfig::check_finite)
      .def_prop_rw(
          "scalar_advection",
          [](const StepConfig& c) { return std::string(to_string(c.scalar_advection.scheme)); },
          [](StepConfig& c, const std::string& s) {
            c.scalar_advection.scheme = parse_advection_scheme(s);
          })
      .def_prop_rw(
          "velocity_advection",
          [](const StepConfig& c) { return std::string(to_string(c.velocity_advection.scheme)); },
          [](StepConfig& c, const std::string& s) {
            c.velocity_advection.scheme = parse_advection_scheme(s);
          })
      .def_prop_rw(
          "diffusion", [](const StepConfig& c) { return std::string(to_string(c.diffusion)); },
          [](StepConfig& c, const std::string& s) { c.diffusion = parse_diffusion_mode(s); })
      .def_prop_rw(
          "pressure_tolerance", [](const StepConfig& c) { return c.pressure.rel_tol; },
          [](StepConfig& c, double v) { c.pressure.rel_tol = v; })
      .def_prop_rw(
          "pressure_max_iterations", [](const StepConfig& c) { return c.pressure.max_iterations; },
          [](StepConfig& c, int v) { c.pressure.max_iterations = v; })
      .def_prop_rw(
          "diffusion_tolerance", [](const StepConfig& c) { return c.diffusion_solver.rel_tol; },
          [](StepConfig& c, double v) { c.diffusion_solver.rel_tol = v; },
          "Relative tolerance of the implicit diffusion solves (CG).")
      .def_prop_rw(
          "diffusion_max_iterations",
          [](const StepConfig& c) { return c.diffusion_solver.max_iterations; },
          [](StepConfig& c, int v) { c.diffusion_solver.max_iterations = v; })
      .def_prop_rw(
          "pressure_warm_start", [](const StepConfig& c) { return c.pressure.warm_start; },
          [](StepConfig& c, bool v) { c.pressure.warm_start = v; },
          "Warm-start the pressure solve from the state's pressure (default True).")
      .def_prop_rw(
          "pressure_correction",
          [](const StepConfig& c) { return std::string(to_string(c.pressure_correction)); },
          [](StepConfig& c, const std::string& s) {
            c.pressure_correction = parse_pressure_correction(s);
          },
          "'non-incremental' (default) or 'incremental': the implicit viscous step runs on "
          "u - dt grad p and adds it back, so steady states do not depend on dt; the state's "
          "pressure then feeds the next step (step_adjoint needs a pressure cotangent, "
          "Rollout.run returns the initial pressure's gradient).");
}

}  // namespace

void bind_core(nb::module_& m) {
  bind_errors(m);
  bind_grid(m);
  bind_context(m);
  bind_config(m);
}

}  // namespace dfluid::py

NB_MODULE(_dfluid, m) {
  m.doc() = "dfluid's C++ library (the binding; use the package dfluid).";
  m.attr("__version__") = DFLUID_VERSION_STRING;
  // Objects still referenced when the interpreter exits (e.g. held by a torch autograd graph
  // in a global variable) are torn down after nanobind's leak check and would be reported as
  // leaks; nothing leaks once they are released (the tests run clean either way).
  nanobind::set_leak_warnings(false);
  dfluid::py::bind_core(m);
  dfluid::py::bind_boundary(m);
  dfluid::py::bind_simulation<float>(m, "F32");
  dfluid::py::bind_simulation<double>(m, "F64");
  dfluid::py::bind_optimizer<float>(m, "F32");
  dfluid::py::bind_optimizer<double>(m, "F64");
  dfluid::py::bind_io(m);
  dfluid::py::bind_face_fraction_nodes(m);
  dfluid::py::bind_face_fractions<float>(m, "F32");
  dfluid::py::bind_face_fractions<double>(m, "F64");
}
