// Options and report shared by dfluid's iterative linear solvers (the pressure
// projection's MGPCG, implicit diffusion's CG).
//
// Residuals are 2-norms of b - A x over the unknowns, accumulated in double.
// A solve converges when residual <= max(rel_tol * |b|, abs_tol).
// The iteration's scalars (inner products, step lengths) stay on the device;
// checking convergence reads them on the host (a host wait on the GPU path),
// and is the only host wait of an iteration: check_every = k checks only
// every k-th iteration (and at the cap), at the cost of up to k - 1 extra
// iterations past convergence.
#pragma once

#include <string>

#include "dfluid/error.hpp"

namespace dfluid {

/// Preconditioner of a conjugate-gradient solve. Multigrid is only meaningful
/// for the pressure solve; other solvers may map it to their best available one.
enum class Preconditioner { Multigrid, Jacobi, None };

struct SolverOptions {
  double rel_tol = 1e-6;     ///< relative to the 2-norm of the right-hand side
  double abs_tol = 0;        ///< absolute floor on the residual 2-norm
  int max_iterations = 500;  ///< cap; see throw_on_failure
  Preconditioner preconditioner = Preconditioner::Multigrid;
  int check_every = 1;           ///< host waits for convergence every k iterations
  bool warm_start = false;       ///< start from the x passed in instead of 0
  bool throw_on_failure = true;  ///< throw SolverNotConverged at the cap, else return the report
};

struct SolveReport {
  int iterations = 0;
  double initial_residual = 0;  ///< |b - A x0|
  double residual = 0;          ///< |b - A x| at exit, recomputed from x (not the recursion)
  bool converged = false;
};

inline const char* to_string(Preconditioner p) {
  switch (p) {
    case Preconditioner::Multigrid:
      return "multigrid";
    case Preconditioner::Jacobi:
      return "jacobi";
    case Preconditioner::None:
      return "none";
  }
  return "?";
}

/// Throws InvalidArgument naming the bad member of `o`.
inline void validate(const SolverOptions& o, const char* where = "SolverOptions") {
  auto bad = [&](const std::string& m) { throw InvalidArgument(std::string(where) + ": " + m); };
  if (!(o.rel_tol >= 0) || !(o.abs_tol >= 0)) bad("rel_tol and abs_tol must be finite and >= 0");
  if (o.rel_tol == 0 && o.abs_tol == 0) bad("rel_tol and abs_tol are both 0: set one of them > 0");
  if (o.max_iterations < 1) bad("max_iterations must be >= 1");
  if (o.check_every < 1) bad("check_every must be >= 1");
}

}  // namespace dfluid
