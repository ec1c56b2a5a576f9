// Command-line conventions shared by every dfluid app (CLI11):
//   --device auto|cuda|cpu, --precision float|double, --output DIR, --seed N,
//   --config FILE (TOML/INI with the same option names), --progress auto|bar|lines|none,
//   --resume FILE. A --config file may hold only keys that are options of the app.
// Exit codes: 0 success; 2 a bad flag or value (one line on stderr naming it); 1 any other
// failure (one line on stderr); 130 stopped by SIGINT/SIGTERM after saving (see stop_signal).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "dfluid/context.hpp"

namespace dfluid::app {

struct CommonOptions {
  std::string device = "auto";
  std::string precision = "float";
  std::string output;  ///< output folder (each app sets its default)
  std::uint64_t seed = 1;
  std::string progress = "auto";
  std::string resume;  ///< file written by an earlier (interrupted) run; empty: none
};

/// Which of the common options an app takes. --config, --device and --precision are always
/// there; a program that writes no files and has nothing to seed or resume (dfluid-smoke
/// prints a table) takes only those, rather than accept options it would ignore.
enum class CommonOptionSet {
  All,         ///< also --output, --seed, --progress and --resume
  NoResume,    ///< also --output, --seed and --progress
  DeviceOnly,  ///< --config, --device, --precision
};

/// Adds the common options of `set` to `app` (with their defaults shown in --help).
void add_common_options(CLI::App& app, CommonOptions& o,
                        CommonOptionSet set = CommonOptionSet::All);

/// Adds the hidden option --stop-after N (not listed in --help): a test aid that acts as if
/// Ctrl-C arrived at iteration N, so that tests of the stop and --resume path need no signal
/// timing. `meaning`: what N counts in this app (the option's description, hidden with it).
/// Returns the option, for checks on N.
CLI::Option* add_stop_after_option(CLI::App& app, int& n, const std::string& meaning);

/// Parses the command line. Returns an exit code when the program should stop now: 0 after
/// --help, 2 after a parse error (one line on stderr: "<name>: <what> (see --help)").
/// std::nullopt: parsed, go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* name);

/// Runs `body` and maps exceptions to exit codes: dfluid::InvalidArgument (a bad value that
/// passed the parser: a missing input file, an inconsistent setting) → 2; any other
/// std::exception → 1. Each prints one line "<name>: error: <what>" on stderr. When `body`
/// fails, an output folder that this run created and left empty is removed again
/// (see prepare_output_dir).
int run_guarded(const char* name, const std::function<int()>& body);

/// The compute context the options ask for (auto falls back to the CPU with one notice).
Context make_context(const CommonOptions& o);

// ---- checks of floating-point option values ----
// CLI::Range and CLI::PositiveNumber let NaN through (every comparison with NaN is false) and
// accept Inf, and CLI::Range prints its bounds with std::to_string (1e-14 becomes 0.000000).
// These refuse NaN and Inf and state their bounds as %g: "--tolerance: 0 is not in the range
// 1e-14 to 1".

/// Any finite number.
CLI::Validator Finite();
/// A finite number in [lo, hi].
CLI::Validator FiniteRange(double lo, double hi);
/// A finite number > 0.
CLI::Validator FinitePositive();
/// A byte count before CLI::AsSizeValue converts it: refuses negative values (AsSizeValue
/// would wrap "-5" to 2^64 - 5).
CLI::Validator NonNegativeSize();

/// `value` cut to a length that fits an error line (long values end in "...").
std::string shorten(const std::string& value, std::size_t max_chars = 40);

}  // namespace dfluid::app
