// The table and the JSON of dfluid-bench's rollout-gradient mode (see rollout_bench.hpp).
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "common/counters.hpp"
#include "rollout_bench.hpp"

namespace dfluid::bench {

namespace {

double mib(std::size_t bytes) {
  return double(bytes) / (1 << 20);
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      o += buf;
    } else {
      o += ch;
    }
  }
  return o + "\"";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string hex(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

std::string agreement(const RolloutCase& c) {
  if (c.compared == 0) return "no plan ran";
  if (c.compared == 1) return "only one plan ran: nothing to compare";
  std::string s = c.losses_agree ? "losses agree bitwise" : "losses DIFFER";
  s += c.buoyancy_gradients_agree ? ", buoyancy gradients agree bitwise"
                                  : ", buoyancy gradients DIFFER";
  s += " (" + std::to_string(c.compared) + " plans)";
  return s;
}

}  // namespace

void print_rollouts(const Context& ctx, const std::string& precision,
                    const std::vector<RolloutCase>& cases) {
  std::printf("dfluid-bench rollout gradients on %s, %s\n", ctx.description().c_str(),
              precision.c_str());
  std::printf(
      "peak = memory_stats().%s during the gradient%s; rollout = peak minus the "
      "inputs held before (initial state, controls, target); predicted = the plan's "
      "working estimate + slots%s\n",
      memory_counter_name(ctx),
      ctx.on_gpu() ? " (pinned host slots are not counted)"
                   : " (CPU path: device and host levels are both host memory)",
      ctx.on_gpu() ? "" : " (device + host levels)");
  for (const RolloutCase& c : cases) {
    std::printf(
        "\n%s, %d steps: forward %.3f s (%.2f ms/step, Poisson iterations %.1f per step, max "
        "%d%s), adjoint/forward step %.2f; state %.2f MiB, working %.2f MiB + %.2f MiB force "
        "gradients; budget: device %.2f MiB (+ the gradients), host %.2f MiB\n",
        c.size.c_str(), c.steps, c.forward_s, 1e3 * c.forward_s / c.steps,
        double(c.pressure_iterations) / c.steps, c.max_pressure_iterations,
        c.unconverged_solves > 0
            ? (", " + std::to_string(c.unconverged_solves) + " not converged").c_str()
            : "",
        c.adjoint_step_ratio, mib(c.state_bytes), mib(c.working_bytes), mib(c.output_bytes),
        mib(c.device_budget), mib(c.host_budget));
    std::printf("%-12s %9s %17s %10s %7s %9s %10s %11s %10s  %s\n", "plan", "slots d/h",
                "advances plan/ran", "gradient s", "ratio", "predicted", "peak MiB", "rollout MiB",
                "pred. MiB", "loss");
    for (const RolloutPlanResult& r : c.plans) {
      if (!r.ran) {
        std::printf("%-12s skipped: %s\n", r.name.c_str(), r.note.c_str());
        continue;
      }
      const std::string slots = std::to_string(r.slots_device) + "/" + std::to_string(r.slots_host);
      const std::string adv =
          std::to_string(r.advances_planned) + "/" + std::to_string(r.advances_performed);
      std::printf("%-12s %9s %17s %10.3f %7.2f %9.2f %10.2f %11.2f %10.2f  %.9g (%s)\n",
                  r.name.c_str(), slots.c_str(), adv.c_str(), r.gradient_s, r.ratio,
                  r.predicted_ratio, mib(r.peak_bytes), mib(r.peak_bytes - r.held_before_bytes),
                  mib(r.predicted_peak_bytes), r.loss, hex(r.loss).c_str());
    }
    std::printf("%s, %d steps: %s\n", c.size.c_str(), c.steps, agreement(c).c_str());
    for (const RolloutPlanResult& r : c.plans)  // what each gradient evaluation cost the GPU
      if (r.ran)
        std::printf("%-12s events: %s\n", r.name.c_str(), app::counters_text(r.counters).c_str());
    for (const RolloutPlanResult& r : c.plans)  // the backward pass's pressure solves
      if (r.ran)
        std::printf("%-12s adjoint Poisson iterations %.2f per step, max %d (%s starts)\n",
                    r.name.c_str(), double(r.adjoint_pressure_iterations) / c.steps,
                    r.max_adjoint_pressure_iterations, c.warm_adjoint_solves ? "warm" : "cold");
  }
}

void write_rollouts_json(std::ostream& out, const std::vector<RolloutCase>& cases, int indent) {
  const std::string p0(indent, ' '), p1 = p0 + "  ", p2 = p1 + "  ", p3 = p2 + "  ";
  out << "[\n";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const RolloutCase& c = cases[i];
    out << p1 << "{\n";
    out << p2 << "\"size\": " << json_string(c.size) << ",\n";
    out << p2 << "\"steps\": " << c.steps << ",\n";
    out << p2 << "\"forward_s\": " << num(c.forward_s) << ",\n";
    out << p2 << "\"warm_adjoint_solves\": " << (c.warm_adjoint_solves ? "true" : "false") << ",\n";
    out << p2 << "\"pressure_iterations\": " << c.pressure_iterations << ",\n";
    out << p2 << "\"max_pressure_iterations\": " << c.max_pressure_iterations << ",\n";
    out << p2 << "\"unconverged_solves\": " << c.unconverged_solves << ",\n";
    out << p2 << "\"adjoint_step_ratio\": " << num(c.adjoint_step_ratio) << ",\n";
    out << p2 << "\"copy_bandwidth_bytes_per_s\": " << num(c.copy_bandwidth) << ",\n";
    out << p2 << "\"state_bytes\": " << c.state_bytes << ",\n";
    out << p2 << "\"working_bytes\": " << c.working_bytes << ",\n";
    out << p2 << "\"gradient_output_bytes\": " << c.output_bytes << ",\n";
    out << p2 << "\"device_budget_bytes\": " << c.device_budget << ",\n";
    out << p2 << "\"host_budget_bytes\": " << c.host_budget << ",\n";
    out << p2 << "\"plans_compared\": " << c.compared << ",\n";
    out << p2 << "\"losses_agree\": " << (c.losses_agree ? "true" : "false") << ",\n";
    out << p2 << "\"buoyancy_gradients_agree\": " << (c.buoyancy_gradients_agree ? "true" : "false")
        << ",\n";
    out << p2 << "\"plans\": [\n";
    for (std::size_t j = 0; j < c.plans.size(); ++j) {
      const RolloutPlanResult& r = c.plans[j];
      out << p3 << "{\"plan\": " << json_string(r.name)
          << ", \"ran\": " << (r.ran ? "true" : "false");
      if (!r.ran) {
        out << ", \"note\": " << json_string(r.note) << "}";
      } else {
        out << ", \"kind\": " << json_string(r.kind) << ", \"slots_device\": " << r.slots_device
            << ", \"slots_host\": " << r.slots_host
            << ", \"advances_planned\": " << r.advances_planned
            << ", \"advances_performed\": " << r.advances_performed
            << ", \"reverses_performed\": " << r.reverses_performed << ", \"stores\": ["
            << r.stores[0] << ", " << r.stores[1] << ", " << r.stores[2] << "], \"restores\": ["
            << r.restores[0] << ", " << r.restores[1] << ", " << r.restores[2] << "]"
            << ", \"adjoint_pressure_iterations\": " << r.adjoint_pressure_iterations
            << ", \"max_adjoint_pressure_iterations\": " << r.max_adjoint_pressure_iterations
            << ", \"gradient_s\": " << num(r.gradient_s) << ", \"ratio\": " << num(r.ratio)
            << ", \"predicted_ratio\": " << num(r.predicted_ratio)
            << ", \"peak_bytes\": " << r.peak_bytes
            << ", \"held_before_bytes\": " << r.held_before_bytes
            << ", \"predicted_peak_bytes\": " << r.predicted_peak_bytes
            << ", \"predicted_device_bytes\": " << r.predicted_device_bytes
            << ", \"predicted_host_bytes\": " << r.predicted_host_bytes
            << ", \"counters\": " << app::counters_json(r.counters).dump()
            << ", \"loss\": " << num(r.loss) << ", \"loss_hex\": " << json_string(hex(r.loss))
            << ", \"grad_buoyancy\": " << num(r.grad_buoyancy) << "}";
      }
      out << (j + 1 < c.plans.size() ? ",\n" : "\n");
    }
    out << p2 << "]\n";
    out << p1 << "}" << (i + 1 < cases.size() ? ",\n" : "\n");
  }
  out << p0 << "]";
}

}  // namespace dfluid::bench
