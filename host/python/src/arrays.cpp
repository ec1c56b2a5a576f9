#include "arrays.hpp"

#include <cstdint>

#include "dfluid/error.hpp"

namespace dfluid::py {

std::vector<size_t> array_shape(const Grid& g, Location loc) {
  const std::array<int, 3> e = extents_of(g, loc);
  std::vector<size_t> s;
  for (int a = g.dim - 1; a >= 0; --a)
    s.push_back(size_t(e[a]));
  return s;
}

std::string shape_string(const std::vector<size_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string location_words(const Grid& g, Location loc) {
  std::string grid = std::to_string(g.dim) + "D ";
  for (int a = 0; a < g.dim; ++a)
    grid += (a ? "x" : "") + std::to_string(g.n[a]);
  const char* axis[] = {"x", "y", "z"};
  if (loc == Location::Cell) return "cell centres of a " + grid + " grid";
  return std::string("faces normal to ") + axis[int(loc) - 1] + " of a " + grid + " grid";
}

namespace {

std::string dtype_name(nb::dlpack::dtype d) {
  const char* kind = d.code == uint8_t(nb::dlpack::dtype_code::Float)  ? "float"
                     : d.code == uint8_t(nb::dlpack::dtype_code::Int)  ? "int"
                     : d.code == uint8_t(nb::dlpack::dtype_code::UInt) ? "uint"
                     : d.code == uint8_t(nb::dlpack::dtype_code::Bool) ? "bool"
                                                                       : "other";
  return std::string(kind) + std::to_string(int(d.bits));
}

const char* device_name(int type) {
  switch (type) {
    case nb::device::cpu::value:
      return "CPU";
    case nb::device::cuda::value:
      return "CUDA";
    case nb::device::cuda_host::value:
      return "CUDA pinned host";
    case nb::device::cuda_managed::value:
      return "CUDA managed";
    default:
      return "a non-CPU, non-CUDA device";
  }
}

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw InvalidArgument(name + ": " + what);
}

}  // namespace

template <class T>
std::vector<Field<T>> wrap_array(const Context& ctx, nb::handle obj, const std::string& name,
                                 const Grid& g, Location loc, ArrayRules rules) {
  std::vector<size_t> want = array_shape(g, loc);
  if (rules.batch >= 0) want.insert(want.begin(), size_t(rules.batch));
  const std::string expected = "expected shape " + shape_string(want) +
                               (rules.batch >= 0 ? " (one entry per step, then the " : " (the ") +
                               location_words(g, loc) + ", C order: x fastest)";
  if (obj.is_none()) bad(name, "got None, " + expected);

  // Writable arrays first; a read-only one is accepted only where dfluid does not write.
  nb::ndarray<> rw;
  nb::ndarray<nb::ro> ro;
  const void* data = nullptr;
  size_t ndim = 0;
  const int64_t* stride = nullptr;
  const int64_t* shape = nullptr;
  nb::dlpack::dtype dt{};
  int dev = 0, dev_id = 0;
  if (nb::try_cast(obj, rw, false)) {
    data = rw.data(), ndim = rw.ndim(), stride = rw.stride_ptr(), shape = rw.shape_ptr();
    dt = rw.dtype(), dev = rw.device_type(), dev_id = rw.device_id();
  } else if (nb::try_cast(obj, ro, false)) {
    if (rules.writable)
      bad(name,
          "the array is read-only, but dfluid writes into it: pass a writable array "
          "(e.g. numpy's x.copy())");
    data = ro.data(), ndim = ro.ndim(), stride = ro.stride_ptr(), shape = ro.shape_ptr();
    dt = ro.dtype(), dev = ro.device_type(), dev_id = ro.device_id();
  } else {
    bad(name, std::string("expected an array (numpy, torch, jax, cupy: the buffer protocol or "
                          "DLPack), got an object of type ") +
                  nb::type_name(obj.type()).c_str());
  }

  if (dt != nb::dtype<T>())
    bad(name, "dtype " + dtype_name(dt) + ", expected " + dtype_name(nb::dtype<T>()) +
                  " (the precision of the simulation; convert with x.astype / x.to)");
  std::vector<size_t> got(shape, shape + ndim);  // int64 extents, never negative
  if (got != want) bad(name, "shape " + shape_string(got) + ", " + expected);
  // C-contiguous: every axis of length > 1 has the stride of a dense C-order array.
  if (stride) {
    int64_t dense = 1;
    for (size_t i = ndim; i-- > 0;) {
      if (shape[i] > 1 && stride[i] != dense) {
        std::string s = "(";
        for (size_t k = 0; k < ndim; ++k)
          s += (k ? ", " : "") + std::to_string(stride[k]);
        bad(name, "not C-contiguous (strides " + s + (ndim == 1 ? ",)" : ")") +
                      " in elements), expected a contiguous array: pass "
                      "numpy.ascontiguousarray(x) or x.contiguous()");
      }
      dense *= int64_t(shape[i]);
    }
  }
  if (ctx.on_gpu()) {
    if (dev != nb::device::cuda::value && dev != nb::device::cuda_managed::value)
      bad(name, std::string("the array is in ") + device_name(dev) +
                    " memory, expected CUDA memory of device " + std::to_string(ctx.cuda_device()) +
                    " (the context runs on the GPU)");
    if (dev_id != ctx.cuda_device())
      bad(name, "the array is on CUDA device " + std::to_string(dev_id) + ", expected device " +
                    std::to_string(ctx.cuda_device()) + " (the context's)");
  } else if (dev != nb::device::cpu::value) {
    bad(name, std::string("the array is in ") + device_name(dev) +
                  " memory, expected CPU memory (the context runs on the CPU path; move it "
                  "with x.cpu() or numpy.asarray, or make a CUDA context)");
  }

  T* p = static_cast<T*>(const_cast<void*>(data));
  std::vector<Field<T>> out;
  const int count = rules.batch >= 0 ? rules.batch : 1;
  const Index per = Index(Field<T>::wrap(g, loc, p, ctx.memory_space()).size());
  for (int k = 0; k < count; ++k)
    out.push_back(Field<T>::wrap(g, loc, p + per * k, ctx.memory_space()));
  return out;
}

template <class T>
nb::object view_array(const Field<T>& f, nb::handle owner, int device_id) {
  const Grid& g = f.grid();
  std::vector<size_t> shape = array_shape(g, f.location());
  if (f.space() == MemorySpace::Device) {
    nb::ndarray<T> a(f.data(), shape.size(), shape.data(), owner, nullptr, nb::dtype<T>(),
                     nb::device::cuda::value, device_id);
    return a.cast();
  }
  nb::ndarray<nb::numpy, T> a(f.data(), shape.size(), shape.data(), owner);
  return a.cast();
}

#define DFLUID_PY_INSTANTIATE(T)                                                               \
  template std::vector<Field<T>> wrap_array<T>(const Context&, nb::handle, const std::string&, \
                                               const Grid&, Location, ArrayRules);             \
  template nb::object view_array<T>(const Field<T>&, nb::handle, int);
DFLUID_PY_INSTANTIATE(float)
DFLUID_PY_INSTANTIATE(double)
DFLUID_PY_INSTANTIATE(std::uint8_t)

}  // namespace dfluid::py
