// One smoke simulation step composed from the operators, in a configurable order.
//
// The default order is the usual smoke step:
//   advect scalars (MacCormack) -> advect velocity (semi-Lagrangian)
//   -> forces and sources (buoyancy, user force field, scalar sources)
//   -> diffusion (off by default) -> pressure projection (MGPCG).
// Simulation owns the pressure solver and scratch fields and its operators take their
// temporaries from the context's pool, so a warm step() or step_adjoint() allocates nothing.
// Host waits inside a step: the pressure solver's convergence checks (every
// SolverOptions::check_every iterations) and nothing else.
// NaN/Inf checks (StepConfig::check_finite for the inputs; the projection's velocity
// always) run on the device and are read for free at the pressure solve's host wait:
// step() and step_adjoint() throw NonFiniteValue before they return, naming the first
// non-finite input (state.velocity, a state scalar, controls.force, controls.sources) or,
// for a velocity that became non-finite within the step, the parts that ran before the
// projection. The error comes once the solve has read the checks, so the state may
// already hold the step's advected (non-finite) values when it is thrown. A step order
// without a Project part has no solve to read them: then the step waits once at its end
// (only when checks are pending).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "dfluid/advection.hpp"
#include "dfluid/field.hpp"
#include "dfluid/linear_solver.hpp"
#include "dfluid/obstacle.hpp"
#include "dfluid/projection.hpp"

namespace dfluid {

enum class StepPart { AdvectScalars, AdvectVelocity, Forces, Diffuse, Project };
const char* to_string(StepPart p);
StepPart parse_step_part(const std::string& s);

enum class DiffusionMode { None, Explicit, Implicit };
const char* to_string(DiffusionMode m);
DiffusionMode parse_diffusion_mode(const std::string& s);

/// How the implicit viscous step and the projection share the pressure (README "Numerics",
/// time splitting).
///  NonIncremental: the viscous step sees no pressure; the projection finds it. A steady
///                  state then depends on dt next to no-slip walls (nu L u = grad p -
///                  dt nu L grad p).
///  Incremental:    the viscous step of the velocity runs on u - dt G p (p: the state's
///                  pressure, the previous step's) and adds dt G p back; the projection
///                  (warm-started from p) then only changes p by the increment. Steady
///                  states satisfy nu L u = grad p whatever dt. Applies to implicit
///                  diffusion of the velocity only (explicit diffusion's steady state is
///                  already exact); the state's pressure then feeds the next step, so
///                  step_adjoint needs grad.pressure (its cotangent) and Rollout carries it
///                  (RolloutResult::grad_initial.pressure: the initial pressure's gradient).
enum class PressureCorrection { NonIncremental, Incremental };
const char* to_string(PressureCorrection m);
PressureCorrection parse_pressure_correction(const std::string& s);

struct StepConfig {
  double dt = 1.0;
  AdvectionOptions scalar_advection{AdvectionScheme::MacCormack, Backtrace::Euler, {}, true, {},
                                    Interpolation::Linear};
  AdvectionOptions velocity_advection{
      AdvectionScheme::SemiLagrangian, Backtrace::Euler, {}, true, {}, Interpolation::Linear};
  double buoyancy = 0.0;    ///< coefficient of the buoyancy force (0: none)
  int buoyancy_scalar = 0;  ///< index of the scalar that drives buoyancy
  int up_axis = 1;          ///< axis the buoyancy pushes along (default y)
  DiffusionMode diffusion = DiffusionMode::None;
  double viscosity = 0.0;           ///< kinematic viscosity of the velocity
  double scalar_diffusivity = 0.0;  ///< diffusivity of every scalar
  /// Pressure solve (MGPCG); warm-started from the state's last pressure by default.
  SolverOptions pressure = [] {
    SolverOptions o;
    o.warm_start = true;
    return o;
  }();
  SolverOptions diffusion_solver{};  ///< implicit diffusion solves
  PressureCorrection pressure_correction = PressureCorrection::NonIncremental;
  bool check_finite = true;  ///< NaN/Inf check of the inputs (one kernel per field, no wait)
  std::vector<StepPart> order{StepPart::AdvectScalars, StepPart::AdvectVelocity, StepPart::Forces,
                              StepPart::Diffuse, StepPart::Project};
  /// Throws InvalidArgument naming the bad member.
  void validate(const Grid& g, int num_scalars) const;
  /// True when the Diffuse part moves the velocity with the incremental pressure correction
  /// (Incremental, implicit diffusion, viscosity > 0, a Project part in the order).
  bool incremental_pressure() const;
};

/// The state one step advances: MAC velocity, any number of cell-centred
/// scalars (smoke density, temperature, ...) and the last pressure (warm start).
template <class T>
struct SmokeState {
  SmokeState() = default;
  SmokeState(const Context& ctx, const Grid& g,
             std::vector<std::string> scalar_names = {"density"});
  const Grid& grid() const { return velocity.grid(); }
  /// Index of the scalar called `name`; throws InvalidArgument listing the names otherwise.
  int scalar_index(const std::string& name) const;

  MacVelocity<T> velocity;
  std::vector<Field<T>> scalars;
  std::vector<std::string> scalar_names;
  Field<T> pressure;
};

/// Per-step inputs (the controls of inverse problems). Null means "none".
template <class T>
struct StepControls {
  const MacVelocity<T>* force = nullptr;  ///< force field, u += dt * f
  std::vector<const Field<T>*> sources;  ///< per scalar (may be shorter or hold nulls), q += dt * s
};

/// Cotangent of a SmokeState. The pressure is a by-product of the step (the next step only
/// warm-starts from it), so its cotangent is optional: empty (the default) means zero. A loss
/// that reads the state's pressure (the pressure force on an obstacle) puts its cotangent
/// there; step_adjoint carries it through the step's last projection solve (one more solve,
/// A y = grad.pressure, then grad.velocity += -(1/dt) (free faces) D^T y, the transpose of
/// p = -(1/dt) A^+ D u) and leaves it zero: the output pressure does not depend on the input
/// pressure (a warm start only).
template <class T>
struct SmokeGradient {
  SmokeGradient() = default;
  /// Zero-filled velocity and `num_scalars` cell fields on g (pressure left empty).
  SmokeGradient(const Context& ctx, const Grid& g, int num_scalars);
  MacVelocity<T> velocity;
  std::vector<Field<T>> scalars;
  Field<T> pressure;  ///< optional (empty: zero)
};

/// Where step_adjoint accumulates the gradients of the step controls (null:
/// not wanted). The gradient of a control is accumulated even where that
/// control is absent from StepControls (the step is linear in it; the
/// gradient at zero).
template <class T>
struct StepControlGradient {
  MacVelocity<T>* force = nullptr;  ///< += d loss / d force
  std::vector<Field<T>*> sources;   ///< per scalar (may be shorter or hold nulls)
  /// += d loss / d StepConfig::buoyancy, one double in the context's memory space (e.g. a
  /// Buffer<double> element), added on the device: no host wait (unlike step_adjoint's
  /// grad_buoyancy, a host double, which costs one). Read it with read_doubles.
  double* buoyancy = nullptr;
  /// += d loss / d StepConfig::viscosity (and d loss / d StepConfig::scalar_diffusivity,
  /// summed over every scalar), one double each in the context's memory space, added on the
  /// device: no host wait. Explicit diffusion u' = u + dt nu lap(u) adds dt <lambda, lap(u)>,
  /// implicit (I - dt nu L) u' = u + dt nu c adds dt <mu, lap(u')> with mu the adjoint solve's
  /// (I - dt nu L)^-1 lambda; lap includes the boundary terms (MovingWall wall velocities,
  /// held wall-normal faces, Fixed scalar sides, no-slip obstacles' ghosts and wall velocity).
  /// Needs StepConfig::diffusion Explicit or Implicit and a Diffuse part (InvalidArgument
  /// otherwise); the derivative holds at a zero coefficient too. Costs a snapshot of the velocity
  /// (the scalars) per Diffuse part, taken by the replay and allocated on the first call that asks
  /// (estimate_memory does not count it: Rollout::state_size does), and with implicit diffusion the
  /// replay runs the Diffuse part's forward solves once more.
  double* viscosity = nullptr;
  double* scalar_diffusivity = nullptr;
  /// += d loss / d (the Simulation's VelocityBoundary): the inflow profiles of Inflow sides
  /// (through the projection, which sets them) and the wall velocity of MovingWall sides
  /// (through velocity advection and diffusion). Host values: gathered on the device like
  /// boundary_slots, then read with one host wait per step_adjoint (none on a grid without
  /// Inflow or MovingWall sides). Empty inflow vectors are sized on the first call. The wall
  /// velocity's gradient through advection needs semi-Lagrangian velocity advection
  /// (InvalidArgument otherwise).
  VelocityBoundaryGradient* boundary = nullptr;
  /// The same gradient left in the context's memory space, no host wait: += into
  /// VelocityBoundaryGradient::slots(grid) doubles (e.g. a Buffer<double> made with
  /// ctx.memory_space(), zeroed by the caller; layout in VelocityBoundaryGradient), in double
  /// and in a fixed order (deterministic). Read them once at the end (read_doubles, then
  /// VelocityBoundaryGradient::add_slots): Rollout does. Give boundary or boundary_slots, not
  /// both (InvalidArgument).
  double* boundary_slots = nullptr;
  /// += d loss / d ObstacleWall::wall_velocity of no-slip obstacles (through velocity
  /// advection's ghost fill and diffusion's ghosts); on the device, no host wait.
  MacVelocity<T>* obstacle_wall_velocity = nullptr;
};

struct StepReport {
  SolveReport pressure;   ///< the projection's solve (iterations 0 when not run)
  SolveReport diffusion;  ///< the last implicit diffusion solve (if any)
};

/// Bytes a simulation allocates through the allocator hook (dfluid/memory.hpp), all in the
/// context's memory space: see Simulation<T>::estimate_memory().
struct SimulationMemory {
  std::size_t state = 0;      ///< one SmokeState<T>: velocity, scalars, pressure
  std::size_t workspace = 0;  ///< the Simulation<T>: scratch fields, the pressure solver with
                              ///< its multigrid hierarchy, the pool blocks of a step
  std::size_t adjoint = 0;    ///< what the first step_adjoint() (or reserve_adjoint()) adds:
                              ///< its replay state and snapshots and the further pool blocks
                              ///< of its temporaries (not the caller's gradients or input)
  /// The context's pool of temporaries once step() and step_adjoint() have run (part of
  /// workspace + adjoint): implicit diffusion solves, MacCormack's q^ and its cotangent, the
  /// deterministic scatter's fixed-point accumulators. Kept between calls, so warm calls
  /// allocate nothing.
  std::size_t pool = 0;
  /// A forward run: one state and the simulation (what dfluid-smoke allocates).
  std::size_t forward() const { return state + workspace; }
  /// Bounds the peak of a run that alternates step() and step_adjoint() on one state.
  std::size_t with_adjoint() const { return state + workspace + adjoint; }
};

/// What a Simulation's obstacles add to its memory (estimate_memory's last argument); the
/// ObstacleMask itself is the caller's.
struct ObstacleMemory {
  /// NoSlip: set_obstacle_wall's scratch, velocity advection's ghost-filled input (one
  /// velocity) and the face classes diffusion reads (one byte a face).
  ObstacleWallKind wall = ObstacleWallKind::FreeSlip;
  /// The force coefficient sets built (obstacle_force, a Rollout force loss: one per body
  /// the losses name, body_force_coefficients), two velocities and dim cell fields each; with
  /// any, the adjoint's pressure-cotangent solve holds one more cell field.
  int force_bodies = 0;
  /// set_obstacle_fractions: the Simulation's copy of the open fractions (one velocity; the
  /// pressure solver built with them holds what a solver without obstacles does).
  bool face_fractions = false;
  /// set_obstacle_fractions with a face distance: its copy (one velocity). A no-slip
  /// face-fraction body holds nothing else (`wall` = NoSlip adds the staircase's scratch only
  /// without face_fractions).
  bool face_distance = false;
};

template <class T>
class Simulation {
 public:
  Simulation(const Context& ctx, const Grid& grid, StepConfig config,
             const ObstacleMask* obstacles = nullptr);

  /// The memory a Simulation<T>(ctx, grid, config) and one SmokeState<T> with `num_scalars`
  /// scalars will allocate, computed from the fields the code allocates (nothing is
  /// allocated here: call it first, then check_memory_available() in dfluid/memory.hpp).
  /// About 100 bytes a cell in float for a forward run (2.5 GiB state + 9.9 GiB workspace
  /// at 512³). On the CPU path it matches memory_stats() to the byte in the tests; one
  /// assumption: a grid without Open sides counts the pressure solver's labels of its
  /// floating region (4 bytes a cell), a grid with Open sides does not (obstacles that wall
  /// off pockets add them). Host memory the solver's setup uses briefly (its region
  /// labelling, about 40 bytes a cell, freed before the Simulation is complete) is not
  /// counted: it stays below the total. With obstacles, `obstacles` says what their wall kind
  /// and force coefficients add (ObstacleMemory; the default: free-slip, no force). Throws
  /// InvalidArgument for a grid Grid::validate() refuses, num_scalars < 0 or
  /// obstacles.force_bodies < 0.
  static SimulationMemory estimate_memory(const Context& ctx, const Grid& grid,
                                          const StepConfig& config, int num_scalars = 1,
                                          const ObstacleMemory& obstacles = {});

  /// Allocates, before the first step_adjoint() for states with `num_scalars` scalars, what
  /// it needs: its replay buffers, and the context's pool sized to the temporaries step() and
  /// step_adjoint() take (estimate_memory().pool; the fixed-point accumulators of the GPU's
  /// deterministic scatter are reserved on the CPU path too, so that its counters hold what
  /// the GPU holds). A pool holding another amount (blocks of other operators) is trimmed
  /// first. step_adjoint() calls it; calling it earlier moves the allocations out of the
  /// first adjoint. Nothing is allocated when all of it is in place.
  void reserve_adjoint(int num_scalars);

  /// Advances `state` by one step of config().dt.
  StepReport step(SmokeState<T>& state, const StepControls<T>& controls = {});

  /// Adjoint (vector-Jacobian product) of step(). `input` is the step's INPUT
  /// state (pressure included: the replay warm-starts from it like the forward)
  /// and `controls` its controls. On entry `grad` holds the cotangent of the
  /// step's output (velocity and every scalar); on return the cotangent of the
  /// step's input (overwritten). Control gradients (control_grad) and the
  /// buoyancy-coefficient gradient (grad_buoyancy) are ACCUMULATED.
  /// The forward parts are replayed from `input` into step-local buffers owned by
  /// the Simulation (allocated on the first call), then the part adjoints run in
  /// reverse config().order. The report holds the adjoint solves (projection,
  /// last implicit diffusion). Host waits as in step() (the adjoint solve's), plus one
  /// when grad_buoyancy is given and one for control_grad->boundary (when given; none for
  /// control_grad->boundary_slots); throws as step()
  /// for bad input, ShapeMismatch for gradients of the wrong shape.
  StepReport step_adjoint(const SmokeState<T>& input, const StepControls<T>& controls,
                          SmokeGradient<T>& grad,
                          const StepControlGradient<T>* control_grad = nullptr,
                          double* grad_buoyancy = nullptr);

  /// Warm-started adjoint projections from now on (on) or cold ones (off, the default).
  /// Cold, each step_adjoint() solves its projection's adjoint from zero, so its result
  /// depends only on its arguments. Warm (config().pressure.warm_start must be on too), the
  /// solve starts from the adjoint pressure the previous step_adjoint() left (one Cell field
  /// per Project part, kept in the adjoint scratch and counted by estimate_memory): the
  /// cotangents of consecutive steps of a backward pass are close, so fewer iterations reach
  /// the tolerance, and the result depends on the earlier calls within that tolerance.
  /// Switching on clears the kept pressures, so a backward pass that switches on before its
  /// first step_adjoint() is a function of its own inputs (Rollout does this for every run:
  /// RolloutOptions::warm_adjoint_solves).
  void set_adjoint_warm_start(bool on);
  bool adjoint_warm_start() const { return adjoint_warm_start_; }

  const Grid& grid() const { return grid_; }
  const StepConfig& config() const { return config_; }
  /// Changes StepConfig::buoyancy between steps (a parameter being optimized, e.g. from
  /// Python's autograd). Old and new values must be finite and non-zero: switching buoyancy
  /// on or off changes what step() and step_adjoint() hold; throws InvalidArgument then.
  void set_buoyancy(double b) {
    if (!std::isfinite(b) || b == 0 || config_.buoyancy == 0)
      throw InvalidArgument("Simulation::set_buoyancy(" + std::to_string(b) +
                            "): the coefficient must stay finite and non-zero (it is " +
                            std::to_string(config_.buoyancy) +
                            "); make a Simulation whose StepConfig.buoyancy is non-zero");
    config_.buoyancy = b;
  }
  /// Change StepConfig::viscosity and StepConfig::scalar_diffusivity between steps (a
  /// parameter being optimized). Values must be finite and >= 0, and stay zero or non-zero as
  /// they were (the implicit solves a step holds depend on it); InvalidArgument otherwise.
  /// An explicit step checks the stability of the new value when it runs.
  void set_viscosity(double nu) { set_diffusion_coefficient(config_.viscosity, nu, "viscosity"); }
  void set_scalar_diffusivity(double kappa) {
    set_diffusion_coefficient(config_.scalar_diffusivity, kappa, "scalar_diffusivity");
  }
  const Context& context() const { return ctx_; }
  const ObstacleMask* obstacles() const { return obstacles_; }
  /// A face-fraction obstacle (dfluid/face_fractions.hpp) from now on: the steps' pressure
  /// projection (and its adjoint, the incremental pressure correction's gradient and the
  /// pressure's cotangent) uses these open fractions instead of a staircase. The obstacle is
  /// free-slip and at rest (the projection holds the faces with fraction 0, the rest of the
  /// step does not see the solid). Read once here (the solver is rebuilt). Throws
  /// InvalidArgument when the Simulation has an ObstacleMask (the rest of the step would still
  /// see its staircase: construct it without one), ShapeMismatch / InvalidArgument as
  /// PressureSolver's fraction constructor. The Simulation keeps a copy of the fractions (one
  /// MAC velocity: ObstacleMemory::face_fractions; Rollout counts it; the call itself builds
  /// the new pressure solver before it releases the old one, so a refused call leaves the
  /// Simulation as it was, and briefly holds two): obstacle_force and a
  /// Rollout's force losses then give the pressure force on the body
  /// (face_fraction_force_coefficients); a body mask
  /// (ObstacleForceLoss::body, obstacle_force_on) selects the cut cells where it is non-zero:
  /// masks that partition the cut cells partition the force.
  void set_obstacle_fractions(const MacVelocity<T>& open_fractions);
  /// The same with the body's signed distance at the face centres (face_center_distance of
  /// the node distance the fractions came from): the body can then be NO-SLIP
  /// (set_obstacle_wall with ObstacleWallKind::NoSlip, optionally a wall velocity) with its
  /// wall at its true distance in the viscous term (ghost fluid, NoSlipObstacle::face_distance;
  /// implicit diffusion only; use PressureCorrection::Incremental with it, whose wall slip
  /// vanishes at a steady state: the non-incremental splitting's slip of dt G p after each
  /// projection is read by the shear's 1/theta), and obstacle_force adds that wall's shear
  /// (face_fraction_force_coefficients). Faces with distance > 0 must be open (W > 0): refused
  /// otherwise, naming the count. Faces with distance <= 0 (centre in the solid) are CLOSED
  /// (W = 0 from here on): the viscous step holds them, so open they would carry a velocity
  /// nothing damps; next to a no-slip wall their flux is second order small. The Simulation
  /// keeps a copy of the distance (one more MAC velocity: ObstacleMemory::face_distance).
  /// Without it (the overload above) a NoSlip wall is refused.
  void set_obstacle_fractions(const MacVelocity<T>& open_fractions,
                              const MacVelocity<T>& face_distance);
  bool has_obstacle_fractions() const { return solver_.face_fractions(); }
  bool has_obstacle_face_distance() const { return !face_distance_[0].empty(); }

  /// The prescribed boundary values (inflow profiles, wall velocities) the steps use from
  /// now on; the kinds are grid().boundary. Validated (VelocityBoundary::validate: a net
  /// inflow through a closed box is refused, naming the sides) and copied to the device (a
  /// host-to-device copy per Inflow side, no allocation). Default: all zero.
  void set_velocity_boundary(const VelocityBoundary& vb);
  const VelocityBoundary& velocity_boundary() const { return vb_; }

  /// How the obstacles meet the fluid from now on (dfluid/obstacle.hpp): FreeSlip (the
  /// default) or NoSlip, with an optional wall velocity (a MAC velocity on the grid, which
  /// must outlive its use; NoSlip only: it is the tangential velocity the no-slip ghosts
  /// prescribe, the wall-normal faces stay 0 since the mask does not move). Throws
  /// InvalidArgument for NoSlip without an ObstacleMask or a wall velocity with FreeSlip,
  /// ShapeMismatch for a wall velocity not on the grid.
  void set_obstacle_wall(const ObstacleWall<T>& wall);
  const ObstacleWall<T>& obstacle_wall() const { return obstacle_wall_; }
  /// The force the fluid exerts on all solid cells (dfluid/obstacle.hpp; per unit depth in
  /// 2D; 0 on unused axes) in the state: pressure on the wall faces and, with NoSlip walls and
  /// diffusion on, the viscous shear of the no-slip ghosts. Host waits (one reduction per
  /// term). Throws InvalidArgument without an ObstacleMask.
  std::array<double, 3> obstacle_force(const SmokeState<T>& state) const;
  /// The coefficients behind obstacle_force (built on first use; rebuilt when the wall kind
  /// changes). Rollout reduces its force losses with them on the device.
  const ObstacleForceCoefficients<T>& obstacle_force_coefficients() const;
  /// grad += weight * d (direction · obstacle_force(state)) / d state: velocity, and pressure
  /// (allocated zero-filled when empty). Linear, so no state is needed.
  void obstacle_force_adjoint(const std::array<double, 3>& direction, double weight,
                              SmokeGradient<T>& grad) const;
  /// grad_wall += weight * d (direction · obstacle_force) / d wall velocity (NoSlip).
  void obstacle_force_wall_gradient(const std::array<double, 3>& direction, double weight,
                                    MacVelocity<T>& grad_wall) const;
  /// The same four for the force on one body: the solid cells where `body` (a cell field on
  /// the grid, read once when first used, kept by pointer: it must outlive the Simulation's
  /// use) is non-zero (obstacle_body_force_coefficients: forces on masks that partition the
  /// solid cells sum to obstacle_force). Null body: every solid cell, as above. Each body's
  /// coefficients (two velocities and dim cell fields) are built on its first use.
  const ObstacleForceCoefficients<T>& body_force_coefficients(const ObstacleMask* body) const;
  std::array<double, 3> obstacle_force_on(const SmokeState<T>& state,
                                          const ObstacleMask* body) const;
  void obstacle_force_adjoint_on(const std::array<double, 3>& direction, double weight,
                                 SmokeGradient<T>& grad, const ObstacleMask* body) const;
  void obstacle_force_wall_gradient_on(const std::array<double, 3>& direction, double weight,
                                       MacVelocity<T>& grad_wall, const ObstacleMask* body) const;
  PressureSolver<T>& pressure_solver() { return solver_; }

 private:
  void advect_scalars(SmokeState<T>& s);
  void advect_velocity(SmokeState<T>& s);
  void add_forces(SmokeState<T>& s, const StepControls<T>& c);
  SolveReport diffuse(SmokeState<T>& s);
  void check_inputs(const SmokeState<T>& s, const StepControls<T>& c) const;
  // step_adjoint in its three jobs (simulation_adjoint.cpp): the shapes of the gradients,
  // the forward replay into the per-part snapshots, the part adjoints in reverse order.
  void check_adjoint_args(const SmokeState<T>& input, const StepControls<T>& c,
                          const SmokeGradient<T>& grad, const StepControlGradient<T>* cg) const;
  void replay_for_adjoint(const SmokeState<T>& input, const StepControls<T>& c,
                          const StepControlGradient<T>* cg, bool buoyancy_coef_gradient);
  void set_diffusion_coefficient(double& member, double v, const char* name);
  // boundary_acc: where the boundary gradient is accumulated (VelocityBoundaryGradient::slots
  // doubles on the device), null when not asked for.
  StepReport reverse_parts(SmokeGradient<T>& grad, const StepControlGradient<T>* cg,
                           double* grad_buoyancy, double* boundary_acc);
  void set_inflow_faces(MacVelocity<T>& u);
  void advection_wall_gradient(const MacVelocity<T>& u, const MacVelocity<T>& g, double* acc);
  void take_inflow_gradient(MacVelocity<T>& grad_u, double* acc);
  // ConvectiveOutflow sides (simulation_convective.cpp): the values their faces take this
  // step, from the step's input velocity, and the adjoint of that map (after the part
  // adjoints; the profiles' part into acc's inflow slots, on the device).
  bool has_convective_outflow() const;
  ConvectiveOutflowSides<T> convective_sides(bool gradient);
  void convective_outflow_update(const MacVelocity<T>& u);
  void convective_outflow_adjoint(MacVelocity<T>& grad_u, double* acc);
  NoSlipObstacle<T> no_slip() const {
    if (obstacle_wall_.kind != ObstacleWallKind::NoSlip) return NoSlipObstacle<T>{};
    if (!obstacles_)  // a face-fraction body: ghost fluid
      return NoSlipObstacle<T>{nullptr, obstacle_wall_.wall_velocity, nullptr, &face_distance_};
    return NoSlipObstacle<T>{obstacles_, obstacle_wall_.wall_velocity, &face_classes_};
  }
  // grad_wall: where the wall velocity's part goes (a moving face-fraction body), or null.
  void pressure_cotangent(SmokeGradient<T>& grad, MacVelocity<T>* grad_wall);
  // A no-slip face-fraction body with a wall velocity: the projection adds the solid's flux
  // through the faces' closed parts (PressureSolver::project_moving_solid), so the body may
  // translate as well as spin (its mask does not move).
  const MacVelocity<T>* moving_solid() const {
    const NoSlipObstacle<T> ns = no_slip();
    return ns.face_distance ? ns.wall_velocity : nullptr;
  }
  // Both set_obstacle_fractions: the solver built with these fractions, their copy, the
  // force coefficients reset (InvalidArgument with an ObstacleMask).
  void install_fractions(const MacVelocity<T>& open_fractions);
  // The steps' projection (forward and replay): with the moving solid's flux when there is one.
  SolveReport project_step(MacVelocity<T>& u, Field<T>& pressure) {
    return solver_.project_impl(ctx_, u, pressure, T(config_.dt), config_.pressure, false,
                                moving_solid());
  }
  std::string nonfinite_velocity_message(const SmokeState<T>& s,
                                         const std::vector<StepPart>& parts) const;

  Context ctx_;
  Grid grid_;
  StepConfig config_;
  const ObstacleMask* obstacles_;
  PressureSolver<T> solver_;
  Field<T> scalar_tmp_, scalar_scratch_;
  MacVelocity<T> velocity_tmp_, velocity_scratch_;
  VelocityBoundary vb_;
  // The inflow profile of each Inflow side in the context's memory space (allocated with the
  // Simulation; empty on other sides).
  std::array<std::array<Buffer<T>, 2>, 3> inflow_values_;
  // With a ConvectiveOutflow side: per Inflow side, the profile's cotangent through the
  // convective faces' mass balance (convective_outflow_adjoint), and per ConvectiveOutflow
  // side its faces' values this step and their cotangent.
  std::array<std::array<Buffer<T>, 2>, 3> inflow_grad_, convective_values_, convective_grad_;
  // With Inflow or MovingWall sides: kWallSlots doubles for one wall-velocity reduction of a
  // step adjoint, then VelocityBoundaryGradient::slots(grid) doubles where a step adjoint
  // that returns the boundary gradient on the host (StepControlGradient::boundary) gathers it.
  Buffer<double> boundary_scratch_;
  ObstacleWall<T> obstacle_wall_;
  MacVelocity<T> fractions_;       // set_obstacle_fractions' copy (the force coefficients read it)
  MacVelocity<T> face_distance_;   // its face-centre distance (ghost-fluid no-slip), when given
  MacVelocity<T> obstacle_ghost_;  // velocity advection's ghost-filled input (NoSlip only)
  std::array<Field<std::uint8_t>, 3> face_classes_;  // obstacle_face_classes (NoSlip only)
  mutable std::shared_ptr<ObstacleForceCoefficients<T>> force_coef_;  // built on first use
  // Per-body coefficients (body_force_coefficients), by the body mask's address.
  mutable std::vector<std::pair<const ObstacleMask*, std::shared_ptr<ObstacleForceCoefficients<T>>>>
      body_coef_;
  struct AdjointScratch;                 // step_adjoint's replay buffers (simulation_adjoint.cpp)
  std::shared_ptr<AdjointScratch> adj_;  // allocated on the first step_adjoint call
  bool adjoint_warm_start_ = false;      // set_adjoint_warm_start
};

}  // namespace dfluid
