// HDF5 snapshots: a writer killed mid-run leaves every completed snapshot readable.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "test_io_util.hpp"

using namespace dfluid;
using namespace dfluid::io;
using namespace dfluid::iotest;

namespace {

constexpr std::uint32_t kSeedStride = 7;

/// The child: writes snapshots forever, reporting each step once it is flushed.
[[noreturn]] void child_writer(const std::string& path, int fd) {
  try {
    Context ctx = Context::cpu();
    Grid g = Grid::make_3d(24, 20, 16, 0.1);
    Field<float> density(ctx, g);
    MacVelocity<float> u(ctx, g);
    WriterOptions o;
    o.interval = 2;
    SnapshotWriter w(path, g, o);
    w.set_run_attribute("purpose", "killed-writer test");
    for (std::int64_t step = 0;; ++step) {
      if (!w.due(step)) continue;
      fill_pattern(ctx, density, std::uint32_t(step) * kSeedStride);
      for (int a = 0; a < 3; ++a)
        fill_pattern(ctx, u[a], std::uint32_t(step) * kSeedStride + 1 + a);
      std::vector<NamedField> f{NamedField("density", density)};
      add_vector(f, "velocity", u);
      w.write(ctx, step, 0.01 * double(step), 0.01, f);
      w.flush();
      if (::write(fd, &step, sizeof step) != sizeof step) ::_exit(3);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child writer: %s\n", e.what());
  }
  ::_exit(2);
}

/// Reads one reported step; false on EOF or after `timeout_ms`.
bool read_step(int fd, std::int64_t& step, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  return ::read(fd, &step, sizeof step) == sizeof step;
}

/// Kills the child `delay_us` after its third report: somewhere inside a later snapshot.
void killed_writer(int delay_us) {
  const std::string dir = scratch_dir("kill" + std::to_string(delay_us));
  const std::string path = dir + "/killed.h5";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    child_writer(path, fds[1]);
  }
  ::close(fds[1]);
  std::vector<std::int64_t> done;
  std::int64_t step = 0;
  while (done.size() < 3 && read_step(fds[0], step, 20000))
    done.push_back(step);
  if (delay_us > 0) ::usleep(useconds_t(delay_us));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  while (read_step(fds[0], step, 0))
    done.push_back(step);  // reported before the kill
  ::close(fds[0]);
  ASSERT_GE(done.size(), 3u) << "the child did not report three snapshots";
  EXPECT_TRUE(WIFSIGNALED(status));

  Context ctx = Context::cpu();
  Grid g = read_grid(path);
  EXPECT_EQ(g, Grid::make_3d(24, 20, 16, 0.1));
  std::vector<SnapshotInfo> list = list_snapshots(path);
  ASSERT_GE(list.size(), done.size());
  std::ifstream x(dir + "/killed.xmf");
  std::stringstream xmf;
  xmf << x.rdbuf();
  for (std::size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(list[i].step, done[i]);
    const auto seed = std::uint32_t(done[i]) * kSeedStride;
    Field<float> d = read_field<float>(path, done[i], "density", g);
    EXPECT_TRUE(bitwise_equal(d.to_vector(ctx), pattern<float>(std::size_t(d.size()), seed)));
    MacVelocity<float> u(ctx, g);
    read_vector_into(ctx, path, done[i], "velocity", u);
    for (int a = 0; a < 3; ++a)
      EXPECT_TRUE(bitwise_equal(u[a].to_vector(ctx),
                                pattern<float>(std::size_t(u[a].size()), seed + 1 + a)));
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(done[i]));
    EXPECT_NE(xmf.str().find(name), std::string::npos) << name;
  }
  remove_dir(dir);
}

}  // namespace

TEST(IoKilledWriter, CompletedSnapshotsStayReadable) {
  const char* env = std::getenv("DFLUID_IO_KILL_DELAYS");  // e.g. "0 50 100 ..." for stress runs
  std::vector<int> delays{0, 800, 2500};
  if (env && *env) {
    delays.clear();
    std::istringstream in(env);
    for (int d; in >> d;)
      delays.push_back(d);
  }
  for (int d : delays) {
    SCOPED_TRACE("kill " + std::to_string(d) + " us after the third snapshot");
    killed_writer(d);
  }
}
