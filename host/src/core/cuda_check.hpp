// The one checker of CUDA runtime calls, and the scoped device switch. Private to the
// library: included by host/src (plain C++ against the CUDA runtime API) and by cuda/
// (nvcc). Everything here exists only when the CUDA path is built.
#pragma once

#include "dfluid/config.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

#include "dfluid/error.hpp"

namespace dfluid::detail {

/// Throws CudaError("<what>: <CUDA's message>") unless e is cudaSuccess. Every CUDA runtime
/// call of the library goes through this (or cuda_warn where throwing is not allowed).
inline void cuda_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  // Clear a non-sticky error, so that the next checked call does not report it again.
  cudaGetLastError();
  throw CudaError(std::string(what) + ": " + cudaGetErrorString(e));
}
inline void cuda_check(cudaError_t e, const std::string& what) {
  cuda_check(e, what.c_str());
}

/// For destructors and cleanup paths, which must not throw: prints one line to stderr.
inline void cuda_warn(cudaError_t e, const char* what) noexcept {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  std::fprintf(stderr, "dfluid: %s: %s\n", what, cudaGetErrorString(e));
}

/// Makes `device` current for its lifetime and restores the caller's device afterwards,
/// so that work for a context on another GPU neither lands on the wrong device nor leaves
/// the caller's thread switched. Costs one cudaGetDevice when the device is already
/// current. A negative device (a CPU context) does nothing.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (device < 0) return;
    cuda_check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ == device) return;
    cuda_check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    switched_ = true;
  }
  ~DeviceGuard() {
    if (switched_)
      cuda_warn(cudaSetDevice(previous_), "cudaSetDevice (restoring the caller's device)");
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace dfluid::detail
#endif
