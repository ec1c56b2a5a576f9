// Exceptions thrown by dfluid. Every message names the offending argument and,
// where there is one, the fix.
#pragma once

#include <stdexcept>
#include <string>

namespace dfluid {

/// Base of every dfluid exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A caller-supplied argument is invalid (bad dt, resolution, enum value, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Two fields (or a field and a grid) disagree in shape, precision or memory space.
class ShapeMismatch : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// NaN or Inf found in an input or produced by an operator.
class NonFiniteValue : public Error {
 public:
  using Error::Error;
};

/// An explicit time step would be unstable; carries the largest stable dt.
class UnstableTimeStep : public InvalidArgument {
 public:
  UnstableTimeStep(const std::string& what, double max_stable_dt)
      : InvalidArgument(what), max_stable_dt_(max_stable_dt) {}
  double max_stable_dt() const noexcept { return max_stable_dt_; }

 private:
  double max_stable_dt_;
};

/// An iterative solver hit its iteration cap before reaching its tolerance.
class SolverNotConverged : public Error {
 public:
  SolverNotConverged(const std::string& what, int iterations, double residual)
      : Error(what), iterations_(iterations), residual_(residual) {}
  int iterations() const noexcept { return iterations_; }
  double residual() const noexcept { return residual_; }

 private:
  int iterations_;
  double residual_;
};

/// The CUDA runtime reported an error, or the CUDA path was requested but is unavailable.
class CudaError : public Error {
 public:
  using Error::Error;
};

}  // namespace dfluid
