#include "common/output.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "dfluid/error.hpp"

namespace fs = std::filesystem;

namespace dfluid::app {

std::string prepare_output_dir(const std::string& dir) {
  if (dir.empty()) throw InvalidArgument("--output: the output folder name is empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw InvalidArgument("--output: cannot create the folder '" + dir + "' (" +
                          (ec ? ec.message() : std::string("a file of that name exists")) +
                          "); choose another --output");
  // Probe that the folder is writable, so that the run fails now and not after an hour.
  const std::string probe = join(dir, ".dfluid-write-test");
  {
    std::ofstream f(probe);
    if (!f)
      throw InvalidArgument("--output: the folder '" + dir +
                            "' is not writable; choose another --output");
  }
  fs::remove(probe, ec);
  return dir;
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
