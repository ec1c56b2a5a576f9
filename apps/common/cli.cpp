#include "common/cli.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>

#include "common/output.hpp"
#include "dfluid/error.hpp"

namespace dfluid::app {

void add_common_options(CLI::App& app, CommonOptions& o, CommonOptionSet set) {
  app.option_defaults()->always_capture_default();
  app.set_config("--config", "",
                 "read options from a TOML or INI file (keys = long option names, no sections)");
  // A misspelt key must not leave its option at the default without a word.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--device", o.device, "where to run: auto (a CUDA GPU when present), cuda, cpu")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  app.add_option("--precision", o.precision, "floating-point precision of the simulation")
      ->check(CLI::IsMember({"float", "double"}));
  if (set == CommonOptionSet::DeviceOnly) return;
  app.add_option("--output", o.output, "output folder (created when missing)");
  app.add_option("--seed", o.seed, "seed of the random numbers the run uses")
      ->check(FiniteRange(0, 18446744073709551615.0));  // uint64: refuse "-1" (it would wrap)
  app.add_option("--progress", o.progress,
                 "progress display: auto (a bar on a terminal, lines otherwise), bar, lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  if (set == CommonOptionSet::All)
    app.add_option("--resume", o.resume,
                   "continue from the state file of an earlier run (written at the end or on "
                   "Ctrl-C)");
}

CLI::Option* add_stop_after_option(CLI::App& app, int& n, const std::string& meaning) {
  return app.add_option("--stop-after", n, meaning)->group("");  // group "": hidden
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

/// The --config file named on the command line ("" when none).
std::string config_file_argument(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) path = argv[i + 1];
    if (a.rfind("--config=", 0) == 0) path = a.substr(9);
  }
  return path;
}

/// Checks a --config file before CLI11 reads it, so that every problem is named with its
/// line: text only, no [sections] (CLI11 would read their keys as options of a subcommand and
/// ignore them), "key = value" lines whose keys are long options of `app`. Returns the error
/// message, or "" when the file is fine (or missing: CLI11 reports that).
std::string check_config_file(const CLI::App& app, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  const std::string where = "--config '" + shorten(path) + "'";
  std::string line;
  bool in_array = false;  // a TOML array spread over several lines
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string at = where + ", line " + std::to_string(n) + ": ";
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", c);
        return at + "not text (byte " + hex + "); give a TOML or INI file";
      }
    const std::string t = trim(line);
    if (in_array) {
      in_array = t.find(']') == std::string::npos;
      continue;
    }
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[')
      return at + "sections such as '" + shorten(t) +
             "' are not supported; put the keys at the top of the file";
    const auto eq = t.find('=');
    if (eq == std::string::npos) return at + "'" + shorten(t) + "' is not a 'key = value' line";
    std::string key = trim(t.substr(0, eq));
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front())
      key = key.substr(1, key.size() - 2);
    const CLI::Option* opt = app.get_option_no_throw("--" + key);
    if (key.empty() || key == "config" || opt == nullptr || opt->get_group().empty())
      return at + "'" + shorten(key) + "' is not an option of " + app.get_name() +
             " (keys are long option names without the dashes; see --help)";
    const std::string value = trim(t.substr(eq + 1));
    in_array = !value.empty() && value[0] == '[' && value.find(']') == std::string::npos;
  }
  return {};
}

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* name) {
  app.name(name);
  if (const std::string config = config_file_argument(argc, argv); !config.empty()) {
    const std::string err = check_config_file(app, config);
    if (!err.empty()) {
      std::fprintf(stderr, "%s: %s\n", name, err.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // CLI11 echoes whole values and config lines; keep the message one readable line.
    std::string what = shorten(e.what(), 240);
    for (char& c : what)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(stderr, "%s: %s (see --help)\n", name, what.c_str());
    return 2;
  }
  return std::nullopt;
}

int run_guarded(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const InvalidArgument& e) {
    remove_unused_output_dir();
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    remove_unused_output_dir();
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
}

Context make_context(const CommonOptions& o) {
  return Context::create(parse_device(o.device));
}

std::string shorten(const std::string& value, std::size_t max_chars) {
  if (value.size() <= max_chars) return value;
  return value.substr(0, max_chars) + "...";
}

namespace {

/// The number in `input` (the whole string), or an error message naming it.
std::string parse_finite(const std::string& input, double& x) {
  char* end = nullptr;
  x = std::strtod(input.c_str(), &end);
  if (input.empty() || end != input.c_str() + input.size())
    return "'" + shorten(input) + "' is not a number";
  if (!std::isfinite(x)) return shorten(input) + " is not a finite number";
  return {};
}

std::string g(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

}  // namespace

CLI::Validator Finite() {
  return CLI::Validator(
      [](std::string& input) {
        double x = 0;
        return parse_finite(input, x);
      },
      "FINITE");
}

CLI::Validator FiniteRange(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& input) {
        double x = 0;
        std::string err = parse_finite(input, x);
        if (err.empty() && !(x >= lo && x <= hi))
          err = shorten(input) + " is not in the range " + g(lo) + " to " + g(hi);
        return err;
      },
      "in [" + g(lo) + ", " + g(hi) + "]");
}

CLI::Validator FinitePositive() {
  return CLI::Validator(
      [](std::string& input) {
        double x = 0;
        std::string err = parse_finite(input, x);
        if (err.empty() && !(x > 0)) err = shorten(input) + " is not a positive number";
        return err;
      },
      "POSITIVE");
}

CLI::Validator NonNegativeSize() {
  return CLI::Validator(
      [](std::string& input) {
        const auto first = input.find_first_not_of(" \t");
        if (first != std::string::npos && input[first] == '-')
          return shorten(input) + " is negative; give a size in bytes (suffixes KiB, MiB, GiB)";
        return std::string();
      },
      "SIZE");
}

}  // namespace dfluid::app
