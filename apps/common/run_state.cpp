#include "common/run_state.hpp"

#include <fstream>

#include "dfluid/error.hpp"

namespace dfluid::app {
namespace {

/// A setting's value as it would be typed after the option: strings without quotes.
std::string option_value(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

/// Throws InvalidArgument naming the first option whose value in the file (`have`) differs
/// from this run's (`want`).
void check_settings(const std::string& path, const nlohmann::json& have,
                    const nlohmann::json& want) {
  for (const auto& [key, value] : want.items())
    if (have.at(key) != value)
      throw InvalidArgument("--resume: '" + path + "' was written with --" + key + " " +
                            option_value(have.at(key)) + "; resume with the same setting");
}

}  // namespace

nlohmann::json history_json(const std::vector<HistoryRow>& rows) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : rows)
    a.push_back({r.iteration, r.loss, r.grad_norm, r.step, r.evaluations, r.seconds});
  return a;
}

std::vector<HistoryRow> history_from_json(const nlohmann::json& a) {
  std::vector<HistoryRow> rows;
  for (const auto& r : a) {
    HistoryRow h;
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

void save_run_state(const std::string& path, const StateFileKind& kind,
                    const nlohmann::json& settings, const RunState& state,
                    nlohmann::json app_keys) {
  nlohmann::json& j = app_keys;
  j["format"] = kind.format;
  j["format_version"] = 1;
  if (kind.settings_key.empty())
    j.update(settings);
  else
    j[kind.settings_key] = settings;
  j["next_iteration"] = state.next_iteration;
  j["history"] = history_json(state.history);
  write_json(path, j);
}

RunState load_run_state(const std::string& path, const StateFileKind& kind,
                        const nlohmann::json& settings, int iterations,
                        const ReadAppKeys& read_app_keys) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("--resume: cannot read the state file '" + path + "'");
  RunState s;
  std::string misfit;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("format").get<std::string>() != kind.format)
      throw InvalidArgument("--resume: '" + path + "' is not a " + kind.app + " state file");
    check_settings(path, kind.settings_key.empty() ? j : j.at(kind.settings_key), settings);
    s.next_iteration = j.at("next_iteration").get<int>();
    s.history = history_from_json(j.at("history"));
    misfit = read_app_keys(j);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("--resume: '" + path + "' is not a valid state file (" + e.what() + ")");
  }
  if (!misfit.empty() || s.next_iteration < 0 || int(s.history.size()) != s.next_iteration)
    throw InvalidArgument("--resume: '" + path + "' is inconsistent (" +
                          (misfit.empty() ? "" : misfit + ", ") + std::to_string(s.history.size()) +
                          " history rows for iteration " + std::to_string(s.next_iteration) + ")");
  if (s.next_iteration > iterations)
    throw InvalidArgument("--resume: '" + path + "' continues at iteration " +
                          std::to_string(s.next_iteration) + ", beyond --iterations " +
                          std::to_string(iterations));
  return s;
}

}  // namespace dfluid::app
