// HDF5 snapshots: round trips (bitwise), attributes, interval, field filter, async copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "test_io_util.hpp"

using namespace dfluid;
using namespace dfluid::io;
using namespace dfluid::iotest;

namespace {

template <class T>
struct RunState {
  RunState(const Context& ctx, const Grid& g) : density(ctx, g), pressure(ctx, g), u(ctx, g) {}
  void set(const Context& ctx, std::uint32_t seed) {
    fill_pattern(ctx, density, seed);
    fill_pattern(ctx, pressure, seed + 100);
    for (int a = 0; a < u.dim(); ++a)
      fill_pattern(ctx, u[a], seed + 200 + a);
  }
  std::vector<NamedField> named() const {
    std::vector<NamedField> f;
    f.emplace_back("density", density, FieldKind::Scalar);
    f.emplace_back("pressure", pressure, FieldKind::Pressure);
    add_vector(f, "velocity", u);
    return f;
  }
  Field<T> density, pressure;
  MacVelocity<T> u;
};

template <class T>
void round_trip(int dim) {
  const std::string dir = scratch_dir("rt" + std::to_string(dim) + "_" + std::to_string(sizeof(T)));
  const std::string path = dir + "/run.h5";
  Context ctx = Context::cpu();
  Grid g = test_grid(dim);
  RunState<T> s(ctx, g);
  const std::vector<std::int64_t> steps{0, 3, 6};
  {
    WriterOptions o;
    o.interval = 3;
    SnapshotWriter w(path, g, o);
    w.set_run_attribute("viscosity", 1e-3);
    w.set_run_attribute("resolution", 128);
    w.set_run_attribute("advection", "maccormack");
    for (std::int64_t step = 0; step <= 7; ++step) {
      s.set(ctx, std::uint32_t(step));
      bool wrote = w.write(ctx, step, 0.1 * double(step), 0.1, s.named());
      EXPECT_EQ(wrote, step % 3 == 0) << step;
    }
    w.close();
  }
  EXPECT_EQ(read_grid(path), g);
  std::vector<SnapshotInfo> list = list_snapshots(path);
  ASSERT_EQ(list.size(), steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(list[i].step, steps[i]);
    EXPECT_EQ(list[i].time, 0.1 * double(steps[i]));  // bitwise
    EXPECT_EQ(list[i].dt, 0.1);
    std::vector<std::string> expect{"density", "pressure", "velocity_cell", "velocity_x",
                                    "velocity_y"};
    if (dim == 3) expect.push_back("velocity_z");
    std::sort(expect.begin(), expect.end());
    EXPECT_EQ(list[i].fields, expect);
  }
  for (std::int64_t step : steps) {
    s.set(ctx, std::uint32_t(step));
    Field<T> d = read_field<T>(path, step, "density", g);
    EXPECT_EQ(d.location(), Location::Cell);
    EXPECT_TRUE(bitwise_equal(d.to_vector(ctx), s.density.to_vector(ctx))) << step;
    Field<T> p(ctx, g);
    read_field_into(ctx, path, step, "pressure", p);
    EXPECT_TRUE(bitwise_equal(p.to_vector(ctx), s.pressure.to_vector(ctx))) << step;
    MacVelocity<T> u(ctx, g);
    read_vector_into(ctx, path, step, "velocity", u);
    for (int a = 0; a < dim; ++a)
      EXPECT_TRUE(bitwise_equal(u[a].to_vector(ctx), s.u[a].to_vector(ctx))) << step << " " << a;
  }
  // kLatestStep reads the last snapshot.
  EXPECT_TRUE(bitwise_equal(read_field<T>(path, kLatestStep, "density", g).to_vector(ctx),
                            s.density.to_vector(ctx)));
  auto run = read_run_attributes(path);
  std::map<std::string, std::string> attrs(run.begin(), run.end());
  EXPECT_EQ(attrs["viscosity"], "0.001");
  EXPECT_EQ(attrs["resolution"], "128");
  EXPECT_EQ(attrs["advection"], "maccormack");
  // The sidecar exists and names every snapshot; no temporary file is left.
  std::ifstream x(dir + "/run.xmf");
  ASSERT_TRUE(x.good());
  std::stringstream ss;
  ss << x.rdbuf();
  for (std::int64_t step : steps)
    EXPECT_NE(ss.str().find("run.h5:/snapshots/0000000" + std::to_string(step) + "/density"),
              std::string::npos);
  EXPECT_FALSE(std::ifstream(dir + "/run.xmf.tmp").good());
  remove_dir(dir);
}

}  // namespace

TEST(IoRoundTrip, Float2D) {
  round_trip<float>(2);
}
TEST(IoRoundTrip, Double2D) {
  round_trip<double>(2);
}
TEST(IoRoundTrip, Float3D) {
  round_trip<float>(3);
}
TEST(IoRoundTrip, Double3D) {
  round_trip<double>(3);
}

TEST(IoRoundTrip, OneDimensionalAndGzip) {
  const std::string dir = scratch_dir("gz");
  Context ctx = Context::cpu();
  Grid g = Grid::make_1d(300, 0.01, -1.5);
  Field<double> f(ctx, g);
  std::vector<double> smooth(300);
  for (int i = 0; i < 300; ++i)
    smooth[i] = std::sin(0.01 * i);
  f.assign(ctx, smooth);
  WriterOptions o;
  o.gzip_level = 6;
  o.chunk_bytes = 1024;  // several chunks
  {
    SnapshotWriter w(dir + "/a.hdf5", g, o);
    EXPECT_EQ(w.xdmf_path(), dir + "/a.xmf");
    w.write(ctx, 5, 0.5, 0.1, {NamedField("phi", f)});
  }
  Field<double> r = read_field<double>(dir + "/a.hdf5", 5, "phi", g);
  EXPECT_TRUE(bitwise_equal(r.to_vector(ctx), smooth));
  remove_dir(dir);
}

TEST(IoWriter, FieldFilterAndPrecision) {
  const std::string dir = scratch_dir("filter");
  Context ctx = Context::cpu();
  Grid g = test_grid(2);
  RunState<double> s(ctx, g);
  s.set(ctx, 1);
  WriterOptions o;
  o.fields = {"velocity", "pressure"};
  o.precision = Precision::Float32;
  o.cell_vectors = false;
  {
    SnapshotWriter w(dir + "/f.h5", g, o);
    w.write(ctx, 0, 0.0, 0.5, s.named());
  }
  EXPECT_EQ(read_snapshot_info(dir + "/f.h5", 0).fields,
            (std::vector<std::string>{"pressure", "velocity_x", "velocity_y"}));
  // Stored as float32: reading as double needs convert = true, and then equals the rounding.
  EXPECT_THROW(read_field<double>(dir + "/f.h5", 0, "pressure", g), IoError);
  Field<double> p = read_field<double>(dir + "/f.h5", 0, "pressure", g, true);
  std::vector<double> want = s.pressure.to_vector(ctx), got = p.to_vector(ctx);
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], double(float(want[i]))) << i;
  remove_dir(dir);
}

TEST(IoWriter, CopiesFieldsBeforeReturning) {
  // queue_depth 1 and fields changed right after write(): each snapshot keeps
  // the values it had when write() was called. 40 snapshots: the writer also
  // reopens the file on the way (every 32) to empty HDF5's metadata cache.
  const std::string dir = scratch_dir("async");
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(16, 16, 16, 1.0);
  Field<float> f(ctx, g);
  WriterOptions o;
  o.queue_depth = 1;
  {
    SnapshotWriter w(dir + "/q.h5", g, o);
    for (int step = 0; step < 40; ++step) {
      fill(ctx, f, float(step));
      w.write(ctx, step, step, 1.0, {NamedField("c", f)});
      fill(ctx, f, -1.0f);
    }
    w.flush();
    EXPECT_EQ(list_snapshots(dir + "/q.h5").size(), 40u);  // readable while open, after flush
  }
  for (int step = 0; step < 40; ++step) {
    Field<float> r = read_field<float>(dir + "/q.h5", step, "c", g);
    EXPECT_EQ(max_abs(ctx, r), double(step));
    EXPECT_EQ(sum(ctx, r), double(step) * 4096);
  }
  remove_dir(dir);
}

TEST(IoWriter, StridedFieldsAreWrittenContiguously) {
  const std::string dir = scratch_dir("strided");
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 2, 1.0);
  std::vector<float> mem{1, 2, 3, -9, -9, 4, 5, 6, -9, -9};
  Field<float> f = Field<float>::wrap(g, Location::Cell, mem.data(), MemorySpace::Host, 5);
  {
    SnapshotWriter w(dir + "/s.h5", g);
    w.write(ctx, 0, 0, 1, {NamedField("s", f)});
  }
  EXPECT_EQ(read_field<float>(dir + "/s.h5", 0, "s", g).to_vector(ctx),
            (std::vector<float>{1, 2, 3, 4, 5, 6}));
  remove_dir(dir);
}
