// Progress display for long runs. On a terminal (mode Bar, or Auto when stderr is a tty) a
// one-line bar is redrawn on stderr; log() lines go to stdout above it. Otherwise (CI, pipes,
// mode Lines) log() prints plain lines and the bar is never drawn; mode None prints neither.
#pragma once

#include <chrono>
#include <string>

namespace dfluid::app {

class Progress {
 public:
  enum class Mode { Auto, Bar, Lines, None };
  static Mode parse_mode(const std::string& s);  ///< auto|bar|lines|none

  Progress(std::string label, long total, Mode mode = Mode::Auto);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// `done` of `total` units finished; `status` is shown after the bar (e.g. "loss 1.2e-3").
  void update(long done, const std::string& status = "");
  /// Prints one line (a newline is added) on stdout, keeping the bar below it.
  void log(const std::string& line);
  /// Removes the bar (called by the destructor too).
  void finish();

 private:
  void draw();
  void clear();

  std::string label_;
  long total_;
  long done_ = 0;
  std::string status_;
  bool bar_ = false;
  bool quiet_ = false;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dfluid::app
