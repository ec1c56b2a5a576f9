// Sample snapshot files for the external checks (tests/io_check_h5py.py, h5dump),
// written to $DFLUID_IO_SAMPLE_DIR by the ctest fixture IoSampleFiles; and the
// GPU path of the writer against the CPU path.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test_io_util.hpp"

using namespace dfluid;
using namespace dfluid::io;
using namespace dfluid::iotest;

namespace {

std::string sample_dir() {
  const char* d = std::getenv("DFLUID_IO_SAMPLE_DIR");
  if (d && *d) {
    std::string cmd = std::string("mkdir -p '") + d + "'";
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }
  return scratch_dir("sample");
}

template <class T>
void write_sample(const Context& ctx, const std::string& path, const Grid& g, int gzip) {
  Field<T> density(ctx, g), pressure(ctx, g), grad(ctx, g);
  MacVelocity<T> u(ctx, g), force(ctx, g);
  WriterOptions o;
  o.gzip_level = gzip;
  o.chunk_bytes = 4096;
  SnapshotWriter w(path, g, o);
  w.set_run_attribute("viscosity", 0.001);
  w.set_run_attribute("steps", 3);
  w.set_run_attribute("scheme", "maccormack");
  for (int step = 0; step < 3; ++step) {
    fill_pattern(ctx, density, step);
    fill_pattern(ctx, pressure, step + 10);
    fill_pattern(ctx, grad, step + 20);
    for (int a = 0; a < g.dim; ++a) {
      fill_pattern(ctx, u[a], step + 30 + a);
      fill_pattern(ctx, force[a], step + 40 + a);
    }
    std::vector<NamedField> f{NamedField("density", density, FieldKind::Scalar),
                              NamedField("pressure", pressure, FieldKind::Pressure),
                              NamedField("density_grad", grad, FieldKind::Gradient)};
    add_vector(f, "velocity", u);
    add_vector(f, "force", force, FieldKind::Force);
    w.write(ctx, step * 10, 0.25 * step, 0.025, f);
  }
  w.close();
}

}  // namespace

TEST(IoSample, WriteFilesForExternalChecks) {
  const std::string dir = sample_dir();
  Context ctx = Context::cpu();
  Grid g2 = test_grid(2);
  Grid g3 = test_grid(3);
  write_sample<float>(ctx, dir + "/sample2d.h5", g2, 0);
  write_sample<double>(ctx, dir + "/sample3d.h5", g3, 4);
  Grid g1 = Grid::make_1d(40, 0.05);
  write_sample<float>(ctx, dir + "/sample1d.h5", g1, 1);
  EXPECT_EQ(list_snapshots(dir + "/sample3d.h5").size(), 3u);
}

TEST(GpuIo, DeviceFieldsMatchTheCpuPath) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const std::string dir = scratch_dir("gpu");
  Context cpu = Context::cpu();
  Context gpu = Context::create(Device::Cuda);
  Grid g = test_grid(3);
  write_sample<float>(gpu, dir + "/gpu.h5", g, 0);
  write_sample<float>(cpu, dir + "/cpu.h5", g, 0);
  for (const char* name : {"density", "pressure", "velocity_x", "velocity_y", "velocity_z"}) {
    for (int step : {0, 10, 20}) {
      auto a = read_field<float>(dir + "/gpu.h5", step, name, g).to_vector(cpu);
      auto b = read_field<float>(dir + "/cpu.h5", step, name, g).to_vector(cpu);
      EXPECT_TRUE(bitwise_equal(a, b)) << name << " " << step;
    }
  }
  remove_dir(dir);
}
