// dfluid-burgers: reconstructs the initial state u0 of a 1D Burgers flow from its state at
// t = 0.5 with a differentiable-physics gradient and plain gradient descent.
//
// The published problem (Physics-Based Deep Learning book, "Burgers optimization with a
// differentiable physics gradient"; summarized in shared/reference/README.md §2):
//   N = 128 cells on [-1, 1], periodic, dx = 2/N; dt = 1/32; nu = 0.01 / (N pi);
//   one step = explicit diffusion, then semi-Lagrangian self-advection (linear interpolation);
//   loss = 1/2 sum_i (u16_i - ref_i)^2 * 2/N, ref = the state after 16 steps from -sin(pi x);
//   u0 starts from zeros, gradient descent with learning rate 5.
// The gradient is the hand-written backward pass over the 16 stored states: per step, last to
// first, the self-advection adjoint and the explicit-diffusion adjoint (both from the library).
//
// Iteration k of the table is the loss at u0 after k updates (iteration 0: u0 = 0), as the
// book counts them. Ctrl-C finishes the iteration, writes state.json (u0 and the history) and
// exits with 130; --resume state.json continues bitwise identically to an uninterrupted run.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/image.hpp"
#include "common/output.hpp"
#include "common/progress.hpp"
#include "common/stop_signal.hpp"
#include "dfluid/dfluid.hpp"

using namespace dfluid;
namespace app = dfluid::app;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kName = "dfluid-burgers";
constexpr const char* kStateFormat = "dfluid-burgers-state";
constexpr double kPi = 3.14159265358979323846;
constexpr int kCells = 128;
constexpr int kTargetSteps = 16;      // the reference is the state at t = 0.5
constexpr int kTrajectorySteps = 32;  // t = 1: the span of the trajectory error
constexpr double kDt = 1.0 / 32;
const double kViscosity = 0.01 / (kCells * kPi);

// Published losses by iteration (shared/reference/README.md §2).
const std::map<int, double> kPublished = {{0, 0.382915},  {1, 0.326882},  {4, 0.210666},
                                          {10, 0.096224}, {20, 0.032819}, {30, 0.012852},
                                          {45, 0.003263}};
constexpr double kPublishedTrajectoryMae = 0.0638;

struct Options {
  app::CommonOptions common;
  int iterations = 50;
  double learning_rate = 5;
  std::string reference = std::string(DFLUID_REFERENCE_DIR) + "/burgers_reference_t0.5.txt";
  int stop_after = -1;  ///< hidden (tests): behave as if Ctrl-C came during this iteration
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The 128 reference values (one per line, '#' comments). Throws InvalidArgument naming the
/// file and the option when it is missing or malformed.
std::vector<double> read_reference(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw InvalidArgument("cannot read the reference file '" + path +
                          "' (burgers_reference_t0.5.txt); pass its path with --reference FILE");
  std::vector<double> v;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(line, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || !std::isfinite(x))
      throw InvalidArgument("reference file '" + path + "', line " + std::to_string(lineno) +
                            ": expected a number (--reference)");
    v.push_back(x);
  }
  if (int(v.size()) != kCells)
    throw InvalidArgument("reference file '" + path + "' holds " + std::to_string(v.size()) +
                          " values, expected " + std::to_string(kCells) + " (--reference)");
  return v;
}

double cell_centre(int i) {
  return -1.0 + (i + 0.5) * 2.0 / kCells;
}

/// The Burgers rollout and its hand-written backward pass.
template <class T>
class Burgers {
 public:
  Burgers(const Context& ctx, const std::vector<double>& reference)
      : ctx_(ctx), grid_(make_grid()), reference_(reference), gu_(ctx, grid_), gd_(ctx, grid_) {
    for (int k = 0; k <= kTargetSteps; ++k) {
      u_.emplace_back(ctx, grid_);
      d_.emplace_back(ctx, grid_);
    }
    advection_.scheme = AdvectionScheme::SemiLagrangian;
    advection_.backtrace = Backtrace::Euler;
  }

  static Grid make_grid() {
    Grid g = Grid::make_1d(kCells, 2.0 / kCells, -1.0);
    g.set_boundary(BoundaryKind::Periodic);
    return g;
  }
  const Grid& grid() const { return grid_; }

  /// One step: d = explicit diffusion of u, out = semi-Lagrangian self-advection of d.
  void step(const CellVector<T>& u, CellVector<T>& d, CellVector<T>& out) {
    diffuse_explicit(ctx_, u, T(kViscosity), T(kDt), d);
    advect(ctx_, d, d, kDt, out, advection_);
  }

  /// The loss at u0 (the 16 states are kept); with `grad`, also d loss / d u0.
  double evaluate(const std::vector<T>& u0, std::vector<T>* grad) {
    u_[0][0].assign(ctx_, u0);
    for (int k = 0; k < kTargetSteps; ++k)
      step(u_[k], d_[k], u_[k + 1]);
    const std::vector<T> u16 = u_[kTargetSteps][0].to_vector(ctx_);
    double sum = 0;
    std::vector<T> g16(kCells);
    for (int i = 0; i < kCells; ++i) {
      const double diff = double(u16[i]) - reference_[i];
      sum += diff * diff;
      g16[i] = T(diff * 2.0 / kCells);
    }
    if (grad) {
      gu_[0].assign(ctx_, g16);
      for (int k = kTargetSteps - 1; k >= 0; --k) {
        fill(ctx_, gd_[0], T(0));
        advect_adjoint(ctx_, d_[k], kDt, gu_, gd_, advection_);  // u_{k+1} = A(d_k, d_k)
        fill(ctx_, gu_[0], T(0));
        diffuse_explicit_adjoint(ctx_, gd_, T(kViscosity), T(kDt), gu_);  // d_k = D(u_k)
      }
      *grad = gu_[0].to_vector(ctx_);
    }
    return 0.5 * sum * 2.0 / kCells;
  }

  /// States 0..steps from u0 (host copies).
  std::vector<std::vector<T>> trajectory(const std::vector<T>& u0, int steps) {
    CellVector<T> a(ctx_, grid_), d(ctx_, grid_), b(ctx_, grid_);
    a[0].assign(ctx_, u0);
    std::vector<std::vector<T>> states{u0};
    for (int k = 0; k < steps; ++k) {
      step(a, d, b);
      std::swap(a, b);
      states.push_back(a[0].to_vector(ctx_));
    }
    return states;
  }

 private:
  Context ctx_;
  Grid grid_;
  std::vector<double> reference_;
  std::vector<CellVector<T>> u_;  // u_0 .. u_16
  std::vector<CellVector<T>> d_;  // d_k = diffused u_k
  CellVector<T> gu_, gd_;
  AdvectionOptions advection_;
};

// ---- state file (--resume) ----

/// What an interrupted or finished run leaves for --resume: the current u0 (whose loss is
/// not yet in the history) and the history rows before it.
template <class T>
struct State {
  int next_iteration = 0;
  std::vector<T> u0;
  std::vector<app::HistoryRow> history;
};

nlohmann::json history_json(const std::vector<app::HistoryRow>& rows) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : rows)
    a.push_back({r.iteration, r.loss, r.grad_norm, r.step, r.evaluations, r.seconds});
  return a;
}

std::vector<app::HistoryRow> history_from_json(const nlohmann::json& a) {
  std::vector<app::HistoryRow> rows;
  for (const auto& r : a) {
    app::HistoryRow h;
    h.iteration = r.at(0).get<int>();
    h.loss = r.at(1).get<double>();
    h.grad_norm = r.at(2).get<double>();
    h.step = r.at(3).get<double>();
    h.evaluations = r.at(4).get<int>();
    h.seconds = r.at(5).get<double>();
    rows.push_back(h);
  }
  return rows;
}

template <class T>
void save_state(const std::string& path, const Options& o, const State<T>& s) {
  nlohmann::json j;
  j["format"] = kStateFormat;
  j["format_version"] = 1;
  j["precision"] = o.common.precision;
  j["learning_rate"] = o.learning_rate;
  j["next_iteration"] = s.next_iteration;
  // Doubles are written with round-trip precision, floats are exact doubles: the resumed run
  // reads back the same bits.
  std::vector<double> u(s.u0.begin(), s.u0.end());
  j["u0"] = u;
  j["history"] = history_json(s.history);
  app::write_json(path, j);
}

template <class T>
State<T> load_state(const std::string& path, const Options& o) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("--resume: cannot read the state file '" + path + "'");
  State<T> s;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("format").get<std::string>() != kStateFormat)
      throw InvalidArgument("--resume: '" + path + "' is not a " + kName + " state file");
    const std::string precision = j.at("precision").get<std::string>();
    if (precision != o.common.precision)
      throw InvalidArgument("--resume: '" + path + "' was written with --precision " + precision +
                            "; resume with the same precision");
    s.next_iteration = j.at("next_iteration").get<int>();
    for (double v : j.at("u0").get<std::vector<double>>())
      s.u0.push_back(T(v));
    s.history = history_from_json(j.at("history"));
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("--resume: '" + path + "' is not a valid state file (" + e.what() + ")");
  }
  if (int(s.u0.size()) != kCells || s.next_iteration < 0 ||
      int(s.history.size()) != s.next_iteration)
    throw InvalidArgument("--resume: '" + path + "' is inconsistent (u0 has " +
                          std::to_string(s.u0.size()) + " values, " +
                          std::to_string(s.history.size()) + " history rows for iteration " +
                          std::to_string(s.next_iteration) + ")");
  if (s.next_iteration > o.iterations)
    throw InvalidArgument("--resume: '" + path + "' continues at iteration " +
                          std::to_string(s.next_iteration) + ", beyond --iterations " +
                          std::to_string(o.iterations));
  return s;
}

// ---- outputs ----

std::string format_row(const app::HistoryRow& r) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%9d  %14.8f  %12.4e  %9.4f", r.iteration, r.loss, r.grad_norm,
                r.seconds);
  return buf;
}

void write_history_files(const std::string& dir, const std::vector<app::HistoryRow>& history) {
  app::write_history_csv(app::join(dir, "history.csv"), history);
  std::vector<double> losses;
  for (const auto& r : history)
    losses.push_back(r.loss);
  app::write_png(app::join(dir, "loss.png"),
                 app::plot_curve(losses, "Burgers reconstruction: loss (log)", true));
}

/// reconstruction.h5: the reconstructed trajectory (u) and the ground truth from -sin(pi x)
/// (u_ground_truth) at steps 0..32, and the reference data at step 16.
template <class T>
void write_reconstruction(const Context& ctx, const std::string& path, const Grid& g,
                          const std::vector<std::vector<T>>& u,
                          const std::vector<std::vector<T>>& truth,
                          const std::vector<double>& reference, const Options& o, double loss) {
  io::SnapshotWriter w(path, g);
  w.set_run_attribute("app", kName);
  w.set_run_attribute("problem", "PBDL Burgers reconstruction (shared/reference/README.md 2)");
  w.set_run_attribute("viscosity", kViscosity);
  w.set_run_attribute("learning_rate", o.learning_rate);
  w.set_run_attribute("iterations", o.iterations);
  w.set_run_attribute("final_loss", loss);
  Field<T> fu(ctx, g), ft(ctx, g), fr(ctx, g);
  fr.assign(ctx, std::vector<T>(reference.begin(), reference.end()));
  for (std::size_t k = 0; k < u.size(); ++k) {
    fu.assign(ctx, u[k]);
    ft.assign(ctx, truth[k]);
    std::vector<io::NamedField> fields{{"u", fu, io::FieldKind::Velocity},
                                       {"u_ground_truth", ft, io::FieldKind::Velocity}};
    if (int(k) == kTargetSteps) fields.emplace_back("reference", fr, io::FieldKind::Velocity);
    w.write(ctx, std::int64_t(k), k * kDt, kDt, fields);
  }
  w.close();
}

template <class T>
int run(const Options& o) {
  const auto t_start = Clock::now();
  app::install_stop_handlers();
  const std::vector<double> reference = read_reference(o.reference);
  State<T> state;
  state.u0.assign(kCells, T(0));
  if (!o.common.resume.empty()) state = load_state<T>(o.common.resume, o);
  const std::string out = app::prepare_output_dir(o.common.output);
  const Context ctx = app::make_context(o.common);
  const app::Progress::Mode mode = app::Progress::parse_mode(o.common.progress);
  Burgers<T> problem(ctx, reference);

  std::vector<T> u0 = state.u0;
  std::vector<app::HistoryRow> history = state.history;
  int it = state.next_iteration;
  app::Progress progress("burgers", o.iterations + 1, mode);
  progress.log(std::string(kName) + " " + DFLUID_VERSION_STRING + ": 1D Burgers, " +
               std::to_string(kCells) + " cells, " + o.common.precision + " precision, " +
               ctx.description() + "; reference " + o.reference);
  if (!o.common.resume.empty())
    progress.log("resuming at iteration " + std::to_string(it) + " from " + o.common.resume);
  progress.log("iteration            loss        |grad|    seconds");

  std::vector<T> grad;
  while (true) {
    const auto t0 = Clock::now();
    app::HistoryRow row;
    row.iteration = it;
    row.loss = problem.evaluate(u0, &grad);
    double g2 = 0;
    for (T g : grad)
      g2 += double(g) * double(g);
    row.grad_norm = std::sqrt(g2);
    row.step = it == 0 ? 0.0 : o.learning_rate;
    row.evaluations = 1;
    row.seconds = seconds_since(t0);
    if (!std::isfinite(row.loss) || !std::isfinite(row.grad_norm))
      throw NonFiniteValue("the loss or its gradient is not finite at iteration " +
                           std::to_string(it) + " (try a smaller --learning-rate)");
    history.push_back(row);
    progress.log(format_row(row));
    progress.update(it + 1, "loss " + std::to_string(row.loss));
    if (it == o.iterations) break;
    for (int i = 0; i < kCells; ++i)
      u0[i] -= T(o.learning_rate) * grad[i];
    ++it;
    if (o.stop_after >= 0 && it > o.stop_after) app::request_stop(SIGINT);
    if (app::stop_requested()) {
      progress.finish();
      save_state<T>(app::join(out, "state.json"), o, {it, u0, history});
      write_history_files(out, history);
      std::fprintf(stderr,
                   "%s: stopped after iteration %d; continue with --resume %s (and the same "
                   "options)\n",
                   kName, it - 1, app::join(out, "state.json").c_str());
      return app::kStoppedExitCode;
    }
  }
  progress.finish();

  // Outputs: state (u0 of the last row, so that --resume with more iterations continues),
  // history, loss plot, trajectories, summary.
  {
    std::vector<app::HistoryRow> before(history.begin(), history.end() - 1);
    save_state<T>(app::join(out, "state.json"), o, {it, u0, before});
  }
  write_history_files(out, history);
  std::vector<T> truth0(kCells);
  for (int i = 0; i < kCells; ++i)
    truth0[i] = T(-std::sin(kPi * cell_centre(i)));
  const auto u = problem.trajectory(u0, kTrajectorySteps);
  const auto truth = problem.trajectory(truth0, kTrajectorySteps);
  double mae = 0;
  for (int k = 0; k <= kTrajectorySteps; ++k)
    for (int i = 0; i < kCells; ++i)
      mae += std::abs(double(u[k][i]) - double(truth[k][i]));
  mae /= double(kTrajectorySteps + 1) * kCells;
  const double truth_loss = problem.evaluate(truth0, nullptr);
  write_reconstruction<T>(ctx, app::join(out, "reconstruction.h5"), problem.grid(), u, truth,
                          reference, o, history.back().loss);

  const bool published_setup = o.learning_rate == 5;  // the published losses belong to it
  if (!published_setup)
    std::printf("(no comparison with the published losses: they are for --learning-rate 5)\n");
  nlohmann::json published = nlohmann::json::array();
  for (const auto& [k, value] : kPublished) {
    if (!published_setup || k >= int(history.size())) continue;
    published.push_back({{"iteration", k}, {"loss", history[k].loss}, {"published", value}});
    std::printf("iteration %2d: loss %.8f (published %.6f)\n", k, history[k].loss, value);
  }
  nlohmann::json summary;
  summary["app"] = kName;
  summary["version"] = DFLUID_VERSION_STRING;
  summary["problem"] = "PBDL Burgers reconstruction (shared/reference/README.md section 2)";
  summary["device"] = ctx.description();
  summary["precision"] = o.common.precision;
  summary["reference"] = o.reference;
  summary["settings"] = {{"cells", kCells},
                         {"dt", kDt},
                         {"steps", kTargetSteps},
                         {"viscosity", kViscosity},
                         {"iterations", o.iterations},
                         {"learning_rate", o.learning_rate}};
  summary["resumed_from_iteration"] = state.next_iteration;
  summary["final_loss"] = history.back().loss;
  summary["losses_vs_published"] = published;
  summary["trajectory_mae"] = mae;
  summary["trajectory_mae_note"] =
      "mean |u - u_ground_truth| over steps 0..32 (t in [0, 1]) and all cells; the reference "
      "gives 0.0638 for the book's run without stating the span it averages over";
  summary["published_trajectory_mae"] = kPublishedTrajectoryMae;
  summary["ground_truth_loss"] = truth_loss;
  summary["seconds"] = seconds_since(t_start);
  summary["outputs"] = {"history.csv", "loss.png", "reconstruction.h5", "reconstruction.xmf",
                        "state.json"};
  app::write_json(app::join(out, "summary.json"), summary);
  std::printf(
      "done: final loss %.8f after %d iterations; trajectory MAE %.4f over t in [0, 1]; "
      "outputs in %s\n",
      history.back().loss, o.iterations, mae, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.common.precision = "double";
  o.common.output = "burgers-out";
  CLI::App cli{
      "dfluid-burgers: reconstructs the initial state of a 1D Burgers flow (128 cells, periodic, "
      "nu = 0.01/(128 pi)) from its state after 16 steps of dt = 1/32, by gradient descent with "
      "a differentiable-physics gradient (Physics-Based Deep Learning book; published losses "
      "0.382915, 0.326882, 0.096224, 0.003263 at iterations 0, 1, 10, 45). Writes history.csv, "
      "loss.png, reconstruction.h5 (+ .xmf), summary.json and state.json to --output. Ctrl-C "
      "stops after the current iteration (exit code 130); --resume state.json continues. The "
      "problem has no randomness: --seed is accepted for uniformity and unused."};
  app::add_common_options(cli, o.common);
  cli.add_option("--iterations", o.iterations,
                 "gradient-descent iterations (the table shows iterations 0..N)")
      ->check(CLI::Range(0, 1000000));
  cli.add_option("--learning-rate", o.learning_rate, "gradient-descent step size")
      ->check(CLI::PositiveNumber);
  cli.add_option("--reference", o.reference,
                 "reference state at t = 0.5: 128 values, one per line ('#' comments)");
  cli.add_option("--stop-after", o.stop_after)
      ->group("")  // hidden: for tests, acts like Ctrl-C during iteration N
      ->check(CLI::NonNegativeNumber);
  if (auto code = app::parse_command_line(cli, argc, argv, kName)) return *code;
  return app::run_guarded(
      kName, [&] { return o.common.precision == "float" ? run<float>(o) : run<double>(o); });
}
