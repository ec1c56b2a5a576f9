// Optimizer<T> over a flat parameter array the caller owns (wrapped, not copied): L-BFGS,
// Adam, gradient descent, one iteration per step() call, the objective written in Python.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <memory>

#include "bindings.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::py {

namespace {

template <class T>
struct PyOptimizer {
  Context ctx;
  Grid grid;  // Grid::make_1d(P, 1): the parameter vector's grid
  std::unique_ptr<Optimizer<T>> opt;
};

nb::dict report_dict(const IterationReport& r) {
  nb::dict d;
  d["iteration"] = r.iteration;
  d["loss_before"] = r.loss_before;
  d["loss_after"] = r.loss_after;
  d["gradient_norm"] = r.gradient_norm;
  d["gradient_norm_after"] = r.gradient_norm_after;
  d["step_size"] = r.step_size;
  d["step_length"] = r.step_length;
  d["evaluations"] = r.evaluations;
  d["backtracks"] = r.backtracks;
  d["restarted"] = r.restarted;
  d["failed"] = r.failed;
  d["converged"] = r.converged;
  return d;
}

}  // namespace

template <class T>
void bind_optimizer(nb::module_& m, const char* suffix) {
  using O = PyOptimizer<T>;
  nb::class_<O>(m, (std::string("Optimizer") + suffix).c_str(),
                "Gradient-based optimizer on a flat parameter array (Optimizer<T>): one "
                "iteration per step(); the array is updated in place (no copy).")
      .def(
          "__init__",
          [](O* self, const Context& ctx, Index size, const std::string& kind, double learning_rate,
             int lbfgs_history, double gradient_tolerance) {
            OptimizerOptions o;
            o.kind = parse_optimizer_kind(kind);
            o.learning_rate = learning_rate;
            o.lbfgs_history = lbfgs_history;
            o.gradient_tolerance = gradient_tolerance;
            if (size < 2)
              throw InvalidArgument("size: " + std::to_string(size) + ", expected >= 2");
            new (self)
                O{ctx, Grid::make_1d(int(size), 1.0), std::make_unique<Optimizer<T>>(ctx, size, o)};
          },
          nb::arg("ctx"), nb::arg("size"), nb::arg("kind") = "lbfgs",
          nb::arg("learning_rate") = 1e-3, nb::arg("lbfgs_history") = 8,
          nb::arg("gradient_tolerance") = 0.0)
      .def(
          "step",
          [](O& o, nb::handle x, nb::callable objective) {
            Field<T> xf = wrap_field<T>(o.ctx, x, "x", o.grid, Location::Cell, true);
            Context c = o.ctx;
            Objective<T> f = [&objective, c](const Field<T>& xs, Field<T>& grad) {
              // x is the caller's own array (trial points are written into it); grad is the
              // optimizer's buffer, viewed for the duration of the call.
              nb::object g = view_array(grad, nb::none(), c.cuda_device());
              nb::object xv = view_array(xs, nb::none(), c.cuda_device());
              return nb::cast<double>(objective(xv, g));
            };
            return report_dict(o.opt->step(xf, f));
          },
          nb::arg("x"), nb::arg("objective"),
          "One iteration from x (a 1-D array of `size` values, updated in place). "
          "objective(x, grad) returns the loss and writes d loss / d x into grad.")
      .def_prop_ro("iteration", [](const O& o) { return o.opt->iteration(); })
      .def_prop_ro("evaluations", [](const O& o) { return o.opt->evaluations(); })
      .def("reset", [](O& o) { o.opt->reset(); });
}

template void bind_optimizer<float>(nb::module_&, const char*);
template void bind_optimizer<double>(nb::module_&, const char*);

}  // namespace dfluid::py
