#include "common/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "dfluid/error.hpp"

namespace dfluid::app {

Progress::Mode Progress::parse_mode(const std::string& s) {
  if (s == "auto") return Mode::Auto;
  if (s == "bar") return Mode::Bar;
  if (s == "lines") return Mode::Lines;
  if (s == "none") return Mode::None;
  throw InvalidArgument("progress mode '" + s + "' is not one of auto, bar, lines, none");
}

Progress::Progress(std::string label, long total, Mode mode)
    : label_(std::move(label)),
      total_(std::max(1L, total)),
      start_(std::chrono::steady_clock::now()) {
  quiet_ = mode == Mode::None;
  bar_ =
      mode == Mode::Bar || (mode == Mode::Auto && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO));
}

Progress::~Progress() {
  finish();
}

void Progress::update(long done, const std::string& status) {
  done_ = std::min(done, total_);
  status_ = status;
  if (bar_) draw();
}

void Progress::log(const std::string& line) {
  if (quiet_) return;
  clear();
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
  if (bar_) draw();
}

void Progress::finish() {
  clear();
  bar_ = false;
}

void Progress::clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::draw() {
  constexpr int kWidth = 30;
  const int filled = int(kWidth * double(done_) / double(total_));
  std::string barText(std::size_t(filled), '#');
  barText.append(std::size_t(kWidth - filled), '.');
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = done_ > 0 ? elapsed * double(total_ - done_) / double(done_) : 0.0;
  std::fprintf(stderr, "\r\033[K%s [%s] %ld/%ld  %.0fs, eta %.0fs  %s", label_.c_str(),
               barText.c_str(), done_, total_, elapsed, eta, status_.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace dfluid::app
