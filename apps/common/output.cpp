#include "common/output.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "dfluid/error.hpp"

namespace fs = std::filesystem;

namespace dfluid::app {

namespace {

constexpr const char* kLockName = ".dfluid-lock";

/// Folders created by prepare_output_dir, deepest first (remove_unused_output_dir's list).
std::vector<fs::path> g_created_dirs;

}  // namespace

std::string prepare_output_dir(const std::string& dir, OutputLock lock) {
  if (dir.empty()) throw InvalidArgument("--output: the output folder name is empty");
  // Remember which folders this call creates, deepest first.
  std::vector<fs::path> created;
  std::error_code ec;
  for (fs::path p = fs::absolute(dir, ec); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw InvalidArgument("--output: cannot create the folder '" + dir + "' (" +
                          (ec ? ec.message() : std::string("a file of that name exists")) +
                          "); choose another --output");
  g_created_dirs.insert(g_created_dirs.begin(), created.begin(), created.end());
  if (lock == OutputLock::Inside) return dir;

  // The lock file also proves that the folder is writable, so that the run fails now and not
  // after an hour. Its descriptor stays open (and locked) until the process ends; the file
  // stays, since removing it would let two later runs lock two different files.
  const std::string lock_path = join(dir, kLockName);
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw InvalidArgument("--output: the folder '" + dir + "' is not writable (" +
                          std::strerror(errno) + "); choose another --output");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;  // before close() may change it
    const bool busy = err == EWOULDBLOCK;
    ::close(fd);
    throw InvalidArgument(busy ? "--output: the folder '" + dir +
                                     "' is in use by another dfluid run (it holds " + lock_path +
                                     "); wait for that run to end or choose another --output"
                               : "--output: cannot lock '" + lock_path + "' (" +
                                     std::strerror(err) + "); choose another --output");
  }
  return dir;
}

void remove_unused_output_dir() {
  for (const fs::path& d : g_created_dirs) {
    std::error_code ec;
    bool only_lock = true;
    for (const auto& e : fs::directory_iterator(d, ec))
      only_lock = only_lock && e.path().filename() == kLockName;
    if (ec || !only_lock) continue;  // the run wrote something: leave it all
    fs::remove(d / kLockName, ec);
    fs::remove(d, ec);
  }
  g_created_dirs.clear();
}

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot open '" + tmp + "' for writing");
    f << content;
    f.flush();
    if (!f) throw Error("writing '" + tmp + "' failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error("cannot move '" + tmp + "' to '" + path + "': " + ec.message());
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

void write_history_csv(const std::string& path, const std::vector<HistoryRow>& rows) {
  std::ostringstream s;
  s << "iteration,loss,grad_norm,step,evaluations,seconds\n";
  s.precision(17);
  for (const HistoryRow& r : rows)
    s << r.iteration << ',' << r.loss << ',' << r.grad_norm << ',' << r.step << ',' << r.evaluations
      << ',' << r.seconds << '\n';
  write_file_atomic(path, s.str());
}

}  // namespace dfluid::app
