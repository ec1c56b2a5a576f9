// dfluid._xla: a dfluid Simulation's step and its adjoint as XLA FFI handlers, so that
// dfluid.jax runs them inside XLA's own computation on XLA's buffers (no host callback, no
// copies into Python arrays). Built against the XLA FFI headers jaxlib ships (api.h, ffi.h),
// only where jax is importable when CMake configures (host/python/CMakeLists.txt).
//
// Calls:
//   dfluid_step_f32 / dfluid_step_f64
//     operands: velocity (dim face buffers), scalars (num_scalars cell buffers),
//               force (dim face buffers, only with has_force)
//     results:  velocity, scalars after the step, and the step's pressure (a cell buffer)
//   dfluid_step_adjoint_f32 / dfluid_step_adjoint_f64
//     operands: the step's input velocity, scalars, force (as above), then the cotangents of
//               the output velocity and scalars
//     results:  the cotangents of the input velocity and scalars, of the force (with
//               has_force), and a cell buffer the adjoint uses as the input's (zero) pressure
//   attributes: handle (int64, from register_simulation), num_scalars (int64), has_force (bool)
//
// Every buffer is XLA's, wrapped as a dfluid Field (Field::wrap, no copy): the results are
// written by dfluid itself (the input state is copied into the result buffers by dfluid's
// copy and stepped in place there, since XLA's operands are read-only).
//
// Lifetime: a handle names a Simulation that register_simulation took by address; the
// caller (dfluid.jax.Simulator) keeps the Simulation alive as long as the handle is
// registered and unregisters it when it goes away. A call with a handle that is not (or no
// longer) registered fails with an XLA error naming it, instead of touching freed memory.
// Calls on one Simulation are serialized (XLA may run two computations at once), and
// unregistering waits for a running call. Stepping the Simulation from Python (or through the
// callback path) while an FFI computation is in flight is not covered: wait for its results.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "xla/ffi/api/ffi.h"

#ifdef DFLUID_XLA_CUDA
#include <cuda_runtime.h>
#endif

namespace ffi = xla::ffi;
namespace nb = nanobind;

namespace dfluid::xla_ffi {
namespace {

// ----------------------------------------------------------------------------- registry ----

// The buffer addresses the last call wrapped (operands, results): what the tests compare
// with the addresses of the arrays JAX passes and returns (no copy on either side).
std::mutex last_call_mutex;
std::vector<std::uintptr_t> last_operands, last_results;

template <class A, class B>
void record_call(const A& in, const B& out) {
  std::lock_guard<std::mutex> lock(last_call_mutex);
  last_operands = in.seen;
  last_results = out.seen;
}

// A registration. Calls on one Simulation are serialized by its mutex (shared by every
// handle of that Simulation: XLA may run two computations at once, and a Simulation's
// workspace is not reentrant). `alive` turns false under that mutex when the handle is
// unregistered, so once unregister_simulation returns no call is running on it or will start.
struct Entry {
  void* simulation = nullptr;  // Simulation<float> or Simulation<double>
  bool f64 = false;
  bool alive = true;
  std::shared_ptr<std::mutex> mutex;
};

std::mutex registry_mutex;
std::unordered_map<int64_t, std::shared_ptr<Entry>> registry;
std::unordered_map<void*, std::weak_ptr<std::mutex>> simulation_mutexes;
int64_t next_handle = 1;

int64_t register_simulation(std::uintptr_t address, const std::string& dtype) {
  if (address == 0) throw InvalidArgument("register_simulation: address 0 (no Simulation)");
  if (dtype != "float32" && dtype != "float64")
    throw InvalidArgument("register_simulation: dtype '" + dtype +
                          "', expected 'float32' or 'float64'");
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto e = std::make_shared<Entry>();
  e->simulation = reinterpret_cast<void*>(address);
  e->f64 = dtype == "float64";
  e->mutex = simulation_mutexes[e->simulation].lock();
  if (!e->mutex) {
    e->mutex = std::make_shared<std::mutex>();
    simulation_mutexes[e->simulation] = e->mutex;
  }
  const int64_t h = next_handle++;
  registry[h] = std::move(e);
  return h;
}

/// Forgets `handle`, waiting for a call running on it to finish (the Simulation may be
/// freed right after).
void unregister_simulation(int64_t handle) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry.find(handle);
    if (it == registry.end()) return;
    e = std::move(it->second);
    registry.erase(it);
  }
  std::lock_guard<std::mutex> lock(*e->mutex);
  e->alive = false;
}

std::string not_registered(int64_t handle) {
  return "dfluid XLA call: Simulation handle " + std::to_string(handle) +
         " is not registered (its dfluid.jax.Simulator was freed): keep the Simulator alive "
         "while its functions run";
}

/// The Simulation behind `handle`, with its mutex locked into `lock`.
template <class T>
Simulation<T>* lookup(int64_t handle, std::unique_lock<std::mutex>& lock) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> registry_lock(registry_mutex);
    auto it = registry.find(handle);
    if (it == registry.end()) throw InvalidArgument(not_registered(handle));
    e = it->second;
  }
  if (e->f64 != std::is_same<T, double>::value)
    throw InvalidArgument("dfluid XLA call: handle " + std::to_string(handle) + " is a " +
                          (e->f64 ? "float64" : "float32") +
                          " Simulation, called with buffers of the other precision");
  lock = std::unique_lock<std::mutex>(*e->mutex);
  if (!e->alive) throw InvalidArgument(not_registered(handle));
  return static_cast<Simulation<T>*>(e->simulation);
}

// ------------------------------------------------------------------------------ buffers ----

template <class T>
constexpr ffi::DataType dtype_of() {
  return std::is_same<T, double>::value ? ffi::DataType::F64 : ffi::DataType::F32;
}

std::string extents_words(const std::array<int, 3>& e, int dim) {
  std::string s = "(";
  for (int a = dim - 1; a >= 0; --a)  // C order: x fastest, so reversed
    s += std::to_string(e[size_t(a)]) + (a > 0 ? ", " : ")");
  return s;
}

/// XLA's buffer as a Field at `loc` wrapping its memory, after checking dtype and size.
template <class T>
Field<T> wrap(const ffi::AnyBuffer& b, const Grid& g, Location loc, MemorySpace space,
              const std::string& name) {
  const std::array<int, 3> e = extents_of(g, loc);
  const size_t want = size_t(e[0]) * size_t(e[1]) * size_t(e[2]);
  if (b.element_type() != dtype_of<T>() || b.element_count() != want)
    throw InvalidArgument("dfluid XLA call: " + name + ": " + std::to_string(b.element_count()) +
                          " elements of XLA dtype " + std::to_string(int(b.element_type())) +
                          ", expected " + extents_words(e, g.dim) + " " +
                          (std::is_same<T, double>::value ? "float64" : "float32"));
  return Field<T>::wrap(g, loc, static_cast<T*>(b.untyped_data()), space);
}

/// Hands out the call's operands (or results) in order, wrapped as fields.
template <class T, class Seq>
struct Reader {
  const Seq& seq;
  const Grid& g;
  MemorySpace space;
  size_t next = 0;
  std::vector<std::uintptr_t> seen;  // the addresses handed out, in order

  ffi::AnyBuffer buffer(const std::string& name) {
    auto b = seq.template get<ffi::AnyBuffer>(next++);
    if (!b.has_value())
      throw InvalidArgument("dfluid XLA call: " + name + ": " + b.error().message());
    ffi::AnyBuffer buf = unwrap(*b);
    seen.push_back(reinterpret_cast<std::uintptr_t>(buf.untyped_data()));
    return buf;
  }
  static ffi::AnyBuffer unwrap(const ffi::AnyBuffer& b) { return b; }
  static ffi::AnyBuffer unwrap(ffi::Result<ffi::AnyBuffer> b) { return *b; }

  Field<T> field(Location loc, const std::string& name) {
    return wrap<T>(buffer(name), g, loc, space, name);
  }
  MacVelocity<T> velocity(const std::string& name) {
    MacVelocity<T> u;
    for (int a = 0; a < g.dim; ++a)
      u.comp[size_t(a)] = field(face_location(a), name + "[" + std::to_string(a) + "]");
    return u;
  }
  std::vector<Field<T>> scalars(int64_t n, const std::string& name) {
    std::vector<Field<T>> s;
    for (int64_t i = 0; i < n; ++i)
      s.push_back(field(Location::Cell, name + "[" + std::to_string(i) + "]"));
    return s;
  }
};

void check_count(const char* what, size_t got, size_t want) {
  if (got != want)
    throw InvalidArgument(std::string("dfluid XLA call: ") + std::to_string(got) + " " + what +
                          ", expected " + std::to_string(want) +
                          " (the attributes num_scalars / has_force disagree with the buffers)");
}

template <class T>
MacVelocity<T> alias_of(const MacVelocity<T>& u) {
  MacVelocity<T> v;
  for (int a = 0; a < u.dim(); ++a)
    v.comp[size_t(a)] = u[a].alias();
  return v;
}

// A state over `v` and `s` whose `pressure` is zero-filled (a cold start of the solve, as on
// dfluid.jax's callback path): for the forward the result buffers the step works in place
// in, for the adjoint the step's input operands.
template <class T>
SmokeState<T> state_in(const Context& ctx, const MacVelocity<T>& v, std::vector<Field<T>> s,
                       Field<T> pressure) {
  SmokeState<T> st;
  st.velocity = alias_of(v);
  st.scalars = std::move(s);
  for (size_t i = 0; i < st.scalars.size(); ++i)
    st.scalar_names.push_back("scalar" + std::to_string(i));
  st.pressure = std::move(pressure);
  fill(ctx, st.pressure, T(0));
  return st;
}

// ----------------------------------------------------------------------- the two calls ----

/// One step: results = step(operands); written by dfluid into XLA's result buffers.
template <class T>
void step_forward(Simulation<T>& sim, int64_t num_scalars, bool has_force,
                  const ffi::RemainingArgs& args, const ffi::RemainingRets& rets) {
  const Context& ctx = sim.context();
  const Grid& g = sim.grid();
  const int dim = g.dim;
  check_count("operands", args.size(), size_t(dim + num_scalars + (has_force ? dim : 0)));
  check_count("results", rets.size(), size_t(dim + num_scalars + 1));
  Reader<T, ffi::RemainingArgs> in{args, g, ctx.memory_space()};
  Reader<T, ffi::RemainingRets> out{rets, g, ctx.memory_space()};
  const MacVelocity<T> v0 = in.velocity("velocity");
  const std::vector<Field<T>> s0 = in.scalars(num_scalars, "scalars");
  MacVelocity<T> force;
  if (has_force) force = in.velocity("force");

  MacVelocity<T> v = out.velocity("result velocity");
  std::vector<Field<T>> s = out.scalars(num_scalars, "result scalars");
  copy(ctx, v0, v);
  for (size_t i = 0; i < s.size(); ++i)
    copy(ctx, s0[i], s[i]);
  SmokeState<T> state = state_in(ctx, v, std::move(s), out.field(Location::Cell, "pressure"));
  StepControls<T> c;
  if (has_force) c.force = &force;
  sim.step(state, c);
  record_call(in, out);
}

/// The step's adjoint: the cotangents of the inputs from those of the outputs.
template <class T>
void step_backward(Simulation<T>& sim, int64_t num_scalars, bool has_force,
                   const ffi::RemainingArgs& args, const ffi::RemainingRets& rets) {
  const Context& ctx = sim.context();
  const Grid& g = sim.grid();
  const int dim = g.dim;
  const int nf = has_force ? dim : 0;
  check_count("operands", args.size(), size_t(2 * (dim + num_scalars) + nf));
  check_count("results", rets.size(), size_t(dim + num_scalars + nf + 1));
  Reader<T, ffi::RemainingArgs> in{args, g, ctx.memory_space()};
  Reader<T, ffi::RemainingRets> out{rets, g, ctx.memory_space()};
  // dfluid reads the step's input without writing it (step_adjoint takes it const).
  const MacVelocity<T> v0 = in.velocity("velocity");
  std::vector<Field<T>> s0 = in.scalars(num_scalars, "scalars");
  MacVelocity<T> force;
  if (has_force) force = in.velocity("force");
  const MacVelocity<T> gv_out = in.velocity("cotangent velocity");
  const std::vector<Field<T>> gs_out = in.scalars(num_scalars, "cotangent scalars");

  SmokeGradient<T> grad;
  grad.velocity = out.velocity("velocity cotangent");
  grad.scalars = out.scalars(num_scalars, "scalars cotangent");
  MacVelocity<T> grad_force;
  if (has_force) grad_force = out.velocity("force cotangent");
  const SmokeState<T> input =
      state_in(ctx, v0, std::move(s0), out.field(Location::Cell, "pressure"));
  // step_adjoint overwrites the output's cotangent with the input's: start from a copy.
  copy(ctx, gv_out, grad.velocity);
  for (size_t i = 0; i < gs_out.size(); ++i)
    copy(ctx, gs_out[i], grad.scalars[i]);
  StepControls<T> c;
  StepControlGradient<T> cg;
  if (has_force) {
    c.force = &force;
    fill(ctx, grad_force, T(0));  // accumulated into
    cg.force = &grad_force;
  }
  sim.step_adjoint(input, c, grad, has_force ? &cg : nullptr);
  record_call(in, out);
}

// ------------------------------------------------------------------------------ handlers ----

/// Runs `body` for the Simulation behind `handle`; dfluid's exceptions become XLA errors.
/// On CUDA, `stream` is XLA's stream: when the Simulation computes on another stream, that
/// stream waits for XLA's work before the call and XLA's stream for dfluid's after it (stream
/// events, no host wait).
template <class T, class Body>
ffi::Error guarded(bool cuda_platform, void* stream, int64_t handle, Body body) {
  try {
    std::unique_lock<std::mutex> lock;
    Simulation<T>& sim = *lookup<T>(handle, lock);
    // The buffers live where XLA's platform keeps them: a Simulation on the other device
    // would read them as the wrong kind of memory.
    if (cuda_platform != sim.context().on_gpu())
      throw InvalidArgument(std::string("dfluid XLA call: a ") +
                            (cuda_platform ? "CPU Simulation called with CUDA arrays"
                                           : "CUDA Simulation called with CPU arrays") +
                            ": make the Simulation with dfluid.Context('" +
                            (cuda_platform ? "cuda" : "cpu") + "') for these arrays");
#ifdef DFLUID_XLA_CUDA
    cudaStream_t xla_stream = static_cast<cudaStream_t>(stream);
    cudaStream_t own = static_cast<cudaStream_t>(sim.context().stream());
    const bool bridge = cuda_platform && own != xla_stream;
    if (bridge) {
      cudaEvent_t e;
      cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
      cudaEventRecord(e, xla_stream);
      cudaStreamWaitEvent(own, e, 0);
      cudaEventDestroy(e);
    }
#else
    (void)stream;
#endif
    body(sim);
#ifdef DFLUID_XLA_CUDA
    if (bridge) {
      cudaEvent_t e;
      cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
      cudaEventRecord(e, own);
      cudaStreamWaitEvent(xla_stream, e, 0);
      cudaEventDestroy(e);
    }
#endif
    return ffi::Error::Success();
  } catch (const InvalidArgument& e) {
    return ffi::Error::InvalidArgument(e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("dfluid: ") + e.what());
  }
}

template <class T>
ffi::Error step_impl(bool cuda_platform, void* stream, int64_t handle, int64_t num_scalars,
                     bool has_force, ffi::RemainingArgs args, ffi::RemainingRets rets) {
  return guarded<T>(cuda_platform, stream, handle, [&](Simulation<T>& sim) {
    step_forward(sim, num_scalars, has_force, args, rets);
  });
}

template <class T>
ffi::Error adjoint_impl(bool cuda_platform, void* stream, int64_t handle, int64_t num_scalars,
                        bool has_force, ffi::RemainingArgs args, ffi::RemainingRets rets) {
  return guarded<T>(cuda_platform, stream, handle, [&](Simulation<T>& sim) {
    step_backward(sim, num_scalars, has_force, args, rets);
  });
}

// CPU: no stream.
template <class T>
ffi::Error step_cpu(int64_t h, int64_t n, bool f, ffi::RemainingArgs a, ffi::RemainingRets r) {
  return step_impl<T>(false, nullptr, h, n, f, a, r);
}
template <class T>
ffi::Error adjoint_cpu(int64_t h, int64_t n, bool f, ffi::RemainingArgs a, ffi::RemainingRets r) {
  return adjoint_impl<T>(false, nullptr, h, n, f, a, r);
}

#define DFLUID_CPU_BINDING          \
  ffi::Ffi::Bind()                  \
      .Attr<int64_t>("handle")      \
      .Attr<int64_t>("num_scalars") \
      .Attr<bool>("has_force")      \
      .RemainingArgs()              \
      .RemainingRets()

XLA_FFI_DEFINE_HANDLER(StepCpuF32, step_cpu<float>, DFLUID_CPU_BINDING);
XLA_FFI_DEFINE_HANDLER(StepCpuF64, step_cpu<double>, DFLUID_CPU_BINDING);
XLA_FFI_DEFINE_HANDLER(AdjointCpuF32, adjoint_cpu<float>, DFLUID_CPU_BINDING);
XLA_FFI_DEFINE_HANDLER(AdjointCpuF64, adjoint_cpu<double>, DFLUID_CPU_BINDING);

#ifdef DFLUID_XLA_CUDA
// CUDA: the same code on XLA's stream (compiled where dfluid is built with CUDA).
template <class T>
ffi::Error step_cuda(cudaStream_t s, int64_t h, int64_t n, bool f, ffi::RemainingArgs a,
                     ffi::RemainingRets r) {
  return step_impl<T>(true, s, h, n, f, a, r);
}
template <class T>
ffi::Error adjoint_cuda(cudaStream_t s, int64_t h, int64_t n, bool f, ffi::RemainingArgs a,
                        ffi::RemainingRets r) {
  return adjoint_impl<T>(true, s, h, n, f, a, r);
}

#define DFLUID_CUDA_BINDING                     \
  ffi::Ffi::Bind()                              \
      .Ctx<ffi::PlatformStream<cudaStream_t>>() \
      .Attr<int64_t>("handle")                  \
      .Attr<int64_t>("num_scalars")             \
      .Attr<bool>("has_force")                  \
      .RemainingArgs()                          \
      .RemainingRets()

XLA_FFI_DEFINE_HANDLER(StepCudaF32, step_cuda<float>, DFLUID_CUDA_BINDING);
XLA_FFI_DEFINE_HANDLER(StepCudaF64, step_cuda<double>, DFLUID_CUDA_BINDING);
XLA_FFI_DEFINE_HANDLER(AdjointCudaF32, adjoint_cuda<float>, DFLUID_CUDA_BINDING);
XLA_FFI_DEFINE_HANDLER(AdjointCudaF64, adjoint_cuda<double>, DFLUID_CUDA_BINDING);
#endif

template <class Fn>
nb::capsule capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

nb::dict handlers(bool cuda) {
  nb::dict d;
  if (!cuda) {
    d["dfluid_step_f32"] = capsule(StepCpuF32);
    d["dfluid_step_f64"] = capsule(StepCpuF64);
    d["dfluid_step_adjoint_f32"] = capsule(AdjointCpuF32);
    d["dfluid_step_adjoint_f64"] = capsule(AdjointCpuF64);
  }
#ifdef DFLUID_XLA_CUDA
  if (cuda) {
    d["dfluid_step_f32"] = capsule(StepCudaF32);
    d["dfluid_step_f64"] = capsule(StepCudaF64);
    d["dfluid_step_adjoint_f32"] = capsule(AdjointCudaF32);
    d["dfluid_step_adjoint_f64"] = capsule(AdjointCudaF64);
  }
#endif
  return d;
}

}  // namespace
}  // namespace dfluid::xla_ffi

NB_MODULE(_xla, m) {
  using namespace dfluid::xla_ffi;
  m.doc() = "dfluid's step and step adjoint as XLA FFI handlers (used by dfluid.jax).";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const dfluid::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("register_simulation", &register_simulation, nb::arg("address"), nb::arg("dtype"),
        "Registers the Simulation at `address` (Simulation._address) of `dtype`; returns the "
        "handle the FFI calls take. The Simulation must stay alive until unregister_simulation.");
  m.def("unregister_simulation", &unregister_simulation, nb::arg("handle"),
        "Forgets a handle: later calls with it fail with an error naming it.");
  m.def(
      "_last_call",
      [] {
        std::lock_guard<std::mutex> lock(last_call_mutex);
        return nb::make_tuple(nb::cast(last_operands), nb::cast(last_results));
      },
      "For the tests: the data addresses of the operands and results the last call wrapped.");
  m.def("handlers", &handlers, nb::arg("cuda") = false,
        "The FFI handlers (name -> PyCapsule) for jax.ffi.register_ffi_target: the CPU ones, "
        "or with cuda=True the CUDA ones (an empty dict where dfluid is built without CUDA).");
#ifdef DFLUID_XLA_CUDA
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
}
