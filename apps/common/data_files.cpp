#include "common/data_files.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "dfluid/error.hpp"

namespace fs = std::filesystem;

namespace dfluid::app {
namespace {

/// Folder of the running binary ("" where the OS does not say).
fs::path binary_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // Linux
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

std::string find_data_file(const std::string& name, const std::string& option) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("DFLUID_DATA_DIR"); env && *env) dirs.emplace_back(env);
  if (const fs::path bin = binary_dir(); !bin.empty()) {
    dirs.push_back(bin);
    dirs.push_back(bin / ".." / "share" / "dfluid");
  }
  dirs.emplace_back(DFLUID_INSTALL_DATADIR);
  std::string tried;
  for (const fs::path& d : dirs) {
    const fs::path p = d / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
    tried += (tried.empty() ? "" : ", ") + d.lexically_normal().string();
  }
  throw InvalidArgument("cannot find the data file '" + name + "' (looked in " + tried +
                        "); install dfluid, set DFLUID_DATA_DIR, or pass " + option + " FILE");
}

}  // namespace dfluid::app
