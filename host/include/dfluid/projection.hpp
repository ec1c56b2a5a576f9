// Pressure projection: makes a MAC velocity discretely divergence-free with a
// multigrid-preconditioned conjugate gradient (MGPCG) solve.
//
// Discretization. A face is FREE when it lies between two fluid cells (periodic
// wrap included) or on an Open box side next to a fluid cell; every other face
// (Wall sides, faces touching a solid obstacle cell) is FIXED. With F the 0/1
// diagonal of free faces and D the cell divergence (sum of outward face fluxes
// / dx), the projection is
//     solve  A x = D F u   with  A = D F D^T   (the negative Laplacian "-lap",
//                                               p = 0 outside Open sides),
//     u  <-  F (u - D^T x),
// so fixed faces end at 0 and free faces get u + grad(x), grad(x) = (x_R - x_L)/dx
// across each face (x = 0 outside an Open side). As a matrix P = F - F D^T A^+ D F:
// symmetric and idempotent, so the adjoint of the projection is the projection.
// Pressure convention: u_new = u - dt * grad(p), i.e. p = -x / dt.
//
// Face fractions (opt-in, dfluid/face_fractions.hpp): built with open fractions W in
// [0, 1] per face instead of a mask, the solver weights both the divergence and the
// operator by them: solve A x = D W u with A = D W D^T, u <- F (u - D^T x) with F the faces
// with W > 0. Then D W u_new = 0: the flux through the fluid part of each face is
// divergence-free (divergence_weighted reports it). As a matrix P = F - F D^T A^+ D W, no
// longer symmetric; its adjoint P^T = F - W D^T A^+ D F is the same solve with the
// right-hand side D F g (unweighted) and the gradient step weighted by W (project_adjoint).
// A 0/1 W (face_open_fractions_from_mask) is the staircase, bitwise. A moving solid adds
// its flux through the closed face parts, D (1 - W) U, to the right-hand side
// (project_moving_solid); the solid at rest (project) has none.
//
// Null space: where a connected fluid region touches no Open face (closed or
// periodic boxes, pockets walled off by obstacles) the pressure is defined up to
// a constant on that region; the solver keeps the residual and the preconditioned
// residual free of those constants and returns the zero-mean pressure on each such
// region. Solid cells (and fluid cells with no free face) get pressure 0.
//
// Solver: CG preconditioned by a symmetric multigrid V-cycle (aggregation of up
// to 2 cells per axis, rediscretized coarse faces, red-black Gauss-Seidel), or
// Jacobi / none (SolverOptions::preconditioner). Inner products are deterministic
// double sums; float solves with |b| outside [1e-12, 1e12] run on b/|b|.
//
// Costs: the constructor builds the multigrid hierarchy and all scratch (through
// the allocator hook); project() and solve() allocate nothing. A solver owns
// scratch, so one solver must not run two solves at once (use one per thread/stream). Each
// convergence check is a host wait (SolverOptions::check_every), the only one of an
// iteration (the null-space means of floating regions are reduced on the device); so are
// the finiteness checks of the inputs and the initial and final residual norms.
#pragma once

#include <array>
#include <memory>

#include "dfluid/field.hpp"
#include "dfluid/linear_solver.hpp"

namespace dfluid {

template <class T>
class Simulation;

template <class T>
class PressureSolver {
 public:
  /// Builds the operator for `grid` and optional solid cells (a Cell field on
  /// `grid`; read once here, later changes to the mask are not seen).
  PressureSolver(const Context& ctx, const Grid& grid, const ObstacleMask* obstacles = nullptr);
  /// Builds the face-fraction operator (header comment): open_fractions on grid's faces, each
  /// value in [0, 1] (face_open_fractions); read once here. Throws ShapeMismatch when they
  /// are not on grid's faces and InvalidArgument for a value outside [0, 1] (one host read).
  PressureSolver(const Context& ctx, const Grid& grid, const MacVelocity<T>& open_fractions);
  ~PressureSolver();
  PressureSolver(PressureSolver&&) noexcept;
  PressureSolver& operator=(PressureSolver&&) noexcept;

  /// Projects u in place and writes the pressure (u_new = u - dt grad p).
  /// With options.warm_start the solve starts from `pressure` (e.g. the last step's).
  /// The report's residuals are 2-norms of D F u_new (divergence units, 1/time).
  /// Throws NonFiniteValue if u (or a warm-start pressure) holds NaN/Inf (checked on the
  /// device, read after the solve's host wait: u and pressure are left unchanged), and also
  /// for checks enqueued earlier on ctx and still pending (flag_nonfinite, field_ops.hpp),
  /// ShapeMismatch if u or pressure is not on the solver's grid, InvalidArgument
  /// for dt <= 0 or bad options, SolverNotConverged (see SolverOptions).
  /// On a closed box (no Open/Outflow side) with Inflow sides, u's faces on those sides must
  /// carry no net inflow (relative to the sum of their magnitudes: 1e-9, float 64 epsilon):
  /// otherwise InvalidArgument names the sides, their fluxes and the fix, before any work.
  /// That check costs two host waits per Inflow side (none on other grids, none in a
  /// Simulation's steps: it checks its VelocityBoundary on the host).
  SolveReport project(const Context& ctx, MacVelocity<T>& u, Field<T>& pressure, T dt,
                      const SolverOptions& options = {});

  /// Solves A x = rhs with the projection's operator A = D F D^T (physical units,
  /// 1/dx^2): the building block of the projection's adjoint. On floating regions
  /// the compatible part of rhs is solved and x has zero mean; rhs in solid cells
  /// is ignored and x is 0 there. options.warm_start starts from x.
  /// Adjoint of project(): grad_u <- P^T grad_u = P grad_u (the projection is
  /// symmetric), solved from a zero start with the same MGPCG. Returns the adjoint
  /// solve's report (iterations, residual). Host waits as in project().
  SolveReport project_adjoint(const Context& ctx, MacVelocity<T>& grad_u,
                              const SolverOptions& options = {});
  /// project_adjoint() that keeps its solve's solution y (A y = D F grad_u: the adjoint
  /// pressure, in the solver's units) in `adjoint_pressure`, a Cell field on the grid, and
  /// with options.warm_start starts the solve from it instead of zero. In a backward pass
  /// the cotangents change little from one step to the next, so the previous step's y is a
  /// close start (Simulation::set_adjoint_warm_start, which Rollout uses). The result then
  /// depends on that start within the solver's tolerance; without warm_start it is bitwise
  /// the result of the overload above. Throws as that overload, and ShapeMismatch when
  /// adjoint_pressure is not a Cell field on the grid, NonFiniteValue when a warm start holds
  /// NaN/Inf.
  SolveReport project_adjoint(const Context& ctx, MacVelocity<T>& grad_u,
                              Field<T>& adjoint_pressure, const SolverOptions& options);
  SolveReport solve(const Context& ctx, const Field<T>& rhs, Field<T>& x,
                    const SolverOptions& options = {});

  /// out = A x (A = D F D^T, physical units). For tests and adjoint checks.
  void apply(const Context& ctx, const Field<T>& x, Field<T>& out) const;

  /// z = M^-1 r for preconditioner p (physical units, an approximation of A^-1).
  /// Symmetric in r; exposed for tests and for adjoint checks. Host waits: none.
  void precondition(const Context& ctx, const Field<T>& r, Field<T>& z,
                    Preconditioner p = Preconditioner::Multigrid);

  /// u += scale * G p on the free faces, those project() moves (between fluid cells, on
  /// Open/Outflow sides with p = 0 outside, across periodic sides); the faces it holds
  /// (walls, inflow, faces touching solids) keep their values. With scale = -dt this is
  /// project()'s own velocity update for a given pressure: the old-pressure step of the
  /// incremental pressure correction (StepConfig::pressure_correction). Host waits: none.
  void add_pressure_gradient(const Context& ctx, const Field<T>& p, T scale,
                             MacVelocity<T>& u) const;
  /// Its adjoint: grad_p += scale * G^T grad_u over the same faces (a gather per cell,
  /// deterministic). Host waits: none.
  void add_pressure_gradient_adjoint(const Context& ctx, const MacVelocity<T>& grad_u, T scale,
                                     Field<T>& grad_p) const;

  /// Sets the fixed faces of u (Wall sides, faces touching solids) to 0.
  void zero_fixed_faces(const Context& ctx, MacVelocity<T>& u) const;

  /// div = D W u (physical units, 1/time): per cell the sum of the outward face velocities
  /// times the faces' weights (the open fractions, or 1 on free and 0 on fixed faces), over
  /// dx; Inflow side faces count with weight 1. What project() makes 0. Host waits: none.
  void divergence_weighted(const Context& ctx, const MacVelocity<T>& u, Field<T>& div) const;
  /// True when built with open fractions.
  bool face_fractions() const;
  /// project() with a moving solid (face fractions only): the solid's velocity U (a MAC
  /// velocity on the grid, read on the faces' closed parts) adds its flux D (1 - W) U to the
  /// divergence, so D W u_new + D (1 - W) U = 0 (box-side faces count no solid flux). U's
  /// flux through the body's surface must be compatible (a rigid motion's is 0).
  /// InvalidArgument on a staircase solver.
  SolveReport project_moving_solid(const Context& ctx, MacVelocity<T>& u,
                                   const MacVelocity<T>& solid_velocity, Field<T>& pressure, T dt,
                                   const SolverOptions& options = {});
  /// Its adjoint: grad_u as project_adjoint, and grad_solid_velocity += (d u_new / d U)^T
  /// grad_u = (1 - W) grad y on the faces between two cells (y the adjoint's solve).
  SolveReport project_moving_solid_adjoint(const Context& ctx, MacVelocity<T>& grad_u,
                                           MacVelocity<T>& grad_solid_velocity,
                                           const SolverOptions& options = {});
  /// grad_u += scale * (D W)^T y: per face scale * w * (y_below - y_above) / dx (y = 0
  /// outside the box; Inflow side faces with w = 1), the transpose of divergence_weighted.
  /// With y = A^+ grad_p and scale = -1/dt it is the transpose of the pressure project()
  /// writes, p = -(1/dt) A^+ D W u: how a Simulation carries a pressure cotangent under face
  /// fractions (add_divergence_transpose of dfluid/obstacle.hpp is the staircase's). Host
  /// waits: none.
  void add_divergence_transpose(const Context& ctx, const Field<T>& y, T scale,
                                MacVelocity<T>& grad_u) const;
  /// grad_solid += scale * (D (1 - W))^T y: per face between two cells scale * (1 - w) *
  /// (y_below - y_above) / dx (box-side faces: nothing), the transpose of the moving solid's
  /// flux (project_moving_solid). With y = A^+ grad_p and scale = -1/dt: how the pressure's
  /// cotangent reaches the solid's velocity. Face fractions only (InvalidArgument otherwise).
  void add_solid_divergence_transpose(const Context& ctx, const Field<T>& y, T scale,
                                      MacVelocity<T>& grad_solid) const;

  const Grid& grid() const;
  int multigrid_levels() const;
  /// Connected fluid regions that touch no Open face (each has a constant null vector).
  int floating_regions() const;

 private:
  template <class>
  friend class Simulation;
  // check_inflow = false: a Simulation checks its VelocityBoundary on the host
  // (set_velocity_boundary) and writes those faces itself; solid: a moving solid's velocity.
  SolveReport project_impl(const Context& ctx, MacVelocity<T>& u, Field<T>& pressure, T dt,
                           const SolverOptions& options, bool check_inflow,
                           const MacVelocity<T>* solid = nullptr);
  SolveReport project_adjoint_impl(const Context& ctx, MacVelocity<T>& grad_u,
                                   const SolverOptions& options, MacVelocity<T>* grad_solid,
                                   Field<T>* adjoint_pressure = nullptr);
  void check_moving_solid(const Context& ctx, const MacVelocity<T>& v, const char* what) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// div = D u: per cell, the sum of outward face velocities / dx (periodic wrap
/// included); 0 in solid cells when `obstacles` is given.
template <class T>
void divergence(const Context& ctx, const MacVelocity<T>& u, Field<T>& div,
                const ObstacleMask* obstacles = nullptr);

/// Host wait. max over fluid cells of |D u| (computed on the fly, no allocation).
template <class T>
double max_abs_divergence(const Context& ctx, const MacVelocity<T>& u,
                          const ObstacleMask* obstacles = nullptr);

/// Sets the fixed faces of u (Wall sides, faces touching solid cells) to 0.
template <class T>
void zero_fixed_faces(const Context& ctx, MacVelocity<T>& u,
                      const ObstacleMask* obstacles = nullptr);

/// Writes `values` (in the context's memory space, VelocityBoundary::side_faces(grid, axis)
/// entries in the side's face order) into the boundary faces of side (axis, side) of the
/// normal component u[axis]: how a Simulation sets an Inflow side's prescribed velocity
/// before the projection (which keeps those faces). Throws InvalidArgument for a periodic
/// side or one that is not on the grid. Enqueued; no host wait.
template <class T>
void set_side_faces(const Context& ctx, MacVelocity<T>& u, int axis, int side, const T* values);

/// The adjoint of set_side_faces: values += the faces' cotangents, which are then set to 0
/// (the forward overwrote them).
template <class T>
void take_side_faces(const Context& ctx, MacVelocity<T>& u, int axis, int side, T* values);
/// The same, accumulated in double: acc[f] += double(face f's cotangent) (acc: side_faces
/// doubles in the context's memory space, e.g. slots of a VelocityBoundaryGradient), then the
/// faces are set to 0. A null acc only zeroes the faces. One launch, no host wait.
template <class T>
void take_side_faces_into(const Context& ctx, MacVelocity<T>& u, int axis, int side, double* acc);

/// The ConvectiveOutflow sides of a step (see BoundaryKind::ConvectiveOutflow), for
/// convective_outflow_values and its adjoint. Buffers in the context's memory space, each of
/// VelocityBoundary::side_faces(grid, axis) values in the side's face order.
template <class T>
struct ConvectiveOutflowSides {
  /// c = U_c dt / dx of each side to update (> 0); 0 on every other side.
  std::array<std::array<double, 2>, 3> courant{};
  /// Per updated side: its faces' new values (forward: written; adjoint: their cotangent,
  /// read and overwritten).
  std::array<std::array<T*, 2>, 3> values{};
  /// Per Inflow side (null: none or a zero profile): its profile (forward: read, its flux
  /// enters the mass balance) or the profile's cotangent (adjoint: accumulated).
  std::array<std::array<T*, 2>, 3> inflow{};
};

/// The normal velocity the faces of the updated sides take in a step from the step's input
/// velocity u: u_b <- (1 - c) u_b + c u_i for c <= 1, (u_b + c u_i) / (1 + c) for c > 1 (u_i:
/// the next face inward; upwind, stable at every c), then one outward
/// shift of every updated face that makes the net outward flux of the updated and the Inflow
/// faces 0. Linear in (u, the profiles); enqueued, no host wait (the sums run serially in one
/// thread). Throws InvalidArgument for a side with courant < 0, without a buffer, on a
/// periodic axis, or when no side is updated.
template <class T>
void convective_outflow_values(const Context& ctx, const MacVelocity<T>& u,
                               const ConvectiveOutflowSides<T>& sides);

/// Its exact adjoint: from the values' cotangent (sides.values, overwritten), grad_u += (d
/// values / d u)^T and sides.inflow[a][s] += (d values / d profile)^T.
template <class T>
void convective_outflow_values_adjoint(const Context& ctx, const ConvectiveOutflowSides<T>& sides,
                                       MacVelocity<T>& grad_u);

}  // namespace dfluid
