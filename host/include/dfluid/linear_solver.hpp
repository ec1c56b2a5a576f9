// Options and report shared by dfluid's iterative linear solvers (the pressure
// projection's MGPCG, implicit diffusion's CG).
//
// Residuals are 2-norms of b - A x over the unknowns, accumulated in double.
// A solve converges when residual <= max(rel_tol * |b|, abs_tol) (the residual of the
// CG recursion decides; the reported residual is recomputed from the returned x).
// Every scalar of the iteration (|b|, inner products, step lengths) stays on the device;
// checking convergence reads them on the host (a host wait on the GPU path), and is the
// only host wait of a solve: check_every = k checks every k-th iteration (and at the
// cap), so a solve of n iterations waits ceil(n / k) times. The updates stop on the
// device at the iteration whose residual meets the tolerance, so the returned x, the
// reported iterations and residual are the same for every k; what k costs is the work
// of up to k - 1 further iterations that is still launched before the host learns of
// it (and a right-hand side of 0, or a warm start that already meets the tolerance, is
// learned at the first check, after k iterations' launches).
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
  /// Host waits for convergence every k iterations. Default 1, from measured iteration
  /// counts (float MGPCG, smoke steps warm-started as Simulation runs them, and cold solves;
  /// closed box / open top side, 2D 64^2-256^2, 3D 32^3-128^3): rel_tol 1e-4: 1-3 warm,
  /// 3-6 cold; 1e-6: 3-6 warm, 5-8 cold. With so few iterations a check interval k saves
  /// n - ceil(n / k) host waits but launches up to k - 1 iterations for nothing (a V-cycle
  /// each; a wait is expected to cost the GPU far less than that, an estimate: no GPU has
  /// measured it yet), so 1 is the default; raise it where iterations are many and cheap.
  int check_every = 1;
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
