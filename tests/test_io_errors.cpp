// HDF5 snapshots: every failure is a clear exception naming the file and dataset, never a crash.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "test_io_util.hpp"

using namespace dfluid;
using namespace dfluid::io;
using namespace dfluid::iotest;

namespace {

/// Runs f, expects E, and checks that the message contains every piece.
template <class E, class F>
void expect_error(F&& f, std::vector<std::string> pieces) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << pieces.at(0) << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : pieces)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

struct IoErrors : ::testing::Test {
  void SetUp() override {
    dir = scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    path = dir + "/run.h5";
    g = Grid::make_2d(16, 8, 0.5);
    Field<float> d(ctx, g);
    fill_pattern(ctx, d, 3);
    MacVelocity<float> u(ctx, g);
    std::vector<NamedField> f{NamedField("density", d)};
    add_vector(f, "velocity", u);
    SnapshotWriter w(path, g);
    w.write(ctx, 0, 0.0, 0.1, f);
    w.write(ctx, 10, 1.0, 0.1, f);
  }
  void TearDown() override { remove_dir(dir); }
  Context ctx = Context::cpu();
  Grid g;
  std::string dir, path;
};

}  // namespace

TEST_F(IoErrors, MissingFile) {
  expect_error<IoError>([&] { read_grid(dir + "/nope.h5"); }, {dir + "/nope.h5", "HDF5"});
  expect_error<IoError>([&] { read_field<float>(dir + "/nope.h5", 0, "density", g); }, {"nope.h5"});
}

TEST_F(IoErrors, TruncatedAndForeignFiles) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 4096u);
  for (std::size_t keep : {bytes.size() / 2, std::size_t(1000), std::size_t(10)}) {
    const std::string cut = dir + "/cut.h5";
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(bytes.data(), long(keep));
    expect_error<IoError>([&] { list_snapshots(cut); }, {cut});
    expect_error<IoError>([&] { read_field<float>(cut, 10, "density", g); }, {cut});
  }
  const std::string text = dir + "/text.h5";
  std::ofstream(text) << "not an HDF5 file\n";
  expect_error<IoError>([&] { read_grid(text); }, {text, "HDF5"});
  // An HDF5 file that dfluid did not write.
  expect_error<IoError>([&] { read_grid(dir + "/run.xmf"); }, {"run.xmf"});
}

TEST_F(IoErrors, WrongDatasetOrStep) {
  expect_error<IoError>([&] { read_field<float>(path, 10, "densty", g); },
                        {path, "/snapshots/00000010", "'densty'", "density, velocity_cell"});
  expect_error<IoError>([&] { read_field<float>(path, 5, "density", g); },
                        {path, "step 5", "0, 10"});
  expect_error<IoError>([&] { read_field<float>(path, 0, "velocity_cell", g); },
                        {"velocity_cell", "expected shape (8, 16)", "found shape (8, 16, 3)"});
}

TEST_F(IoErrors, WrongShapeGridOrType) {
  Grid big = Grid::make_2d(32, 8, 0.5);
  expect_error<IoError>(
      [&] { read_field<float>(path, 10, "density", big); },
      {path, "/snapshots/00000010/density", "expected shape (8, 32)", "found shape (8, 16)"});
  Grid g3 = Grid::make_3d(16, 8, 2, 0.5);
  expect_error<IoError>([&] { read_field<float>(path, 10, "density", g3); },
                        {"expected shape (2, 8, 16)", "found shape (8, 16)"});
  Grid other_dx = Grid::make_2d(16, 8, 0.25);
  expect_error<IoError>([&] { read_field<float>(path, 10, "density", other_dx); },
                        {path, "differs", "no resampling"});
  expect_error<IoError>([&] { read_field<double>(path, 10, "density", g); },
                        {"/snapshots/00000010/density", "expected type float64", "found float32"});
  Field<float> cell(ctx, g);
  expect_error<IoError>([&] { read_field_into(ctx, path, 10, "velocity_x", cell); },
                        {"velocity_x", "x-faces", "expected cell"});
  // Periodic x: the face arrays have n faces, not n + 1.
  Grid per = g;
  per.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
  MacVelocity<float> u(ctx, per);
  expect_error<IoError>([&] { read_vector_into(ctx, path, 10, "velocity", u); },
                        {"velocity_x", "expected shape (8, 16)", "found shape (8, 17)"});
}

TEST_F(IoErrors, UnwritablePaths) {
  expect_error<IoError>([&] { SnapshotWriter w(dir + "/no/such/dir/run.h5", g); },
                        {dir + "/no/such/dir/run.h5", "HDF5", "No such file or directory"});
  expect_error<IoError>([&] { SnapshotWriter w(path + "/inside.h5", g); },
                        {path + "/inside.h5", "HDF5"});
}

TEST_F(IoErrors, WriterThreadErrorIsRethrown) {
  Field<float> d(ctx, g);
  const std::string p = dir + "/t.h5";
  SnapshotWriter w(p, g);
  // The sidecar's temporary file cannot be created: the thread fails, flush() reports it.
  ASSERT_EQ(::mkdir((dir + "/t.xmf.tmp").c_str(), 0755), 0);
  w.write(ctx, 0, 0, 1, {NamedField("density", d)});
  expect_error<IoError>([&] { w.flush(); }, {"t.xmf.tmp"});
  expect_error<IoError>([&] { w.write(ctx, 1, 0, 1, {NamedField("density", d)}); }, {"t.xmf.tmp"});
  expect_error<IoError>([&] { w.close(); }, {"t.xmf.tmp"});
  // The snapshot itself was flushed before the sidecar failed.
  EXPECT_EQ(list_snapshots(p).size(), 1u);
}

TEST_F(IoErrors, BadWriterArguments) {
  Field<float> d(ctx, g);
  Field<float> other(ctx, Grid::make_2d(8, 8, 0.5));
  SnapshotWriter w(dir + "/w.h5", g);
  expect_error<ShapeMismatch>([&] { w.write(ctx, 0, 0, 1, {NamedField("x", other)}); },
                              {"'x'", "8x8"});
  expect_error<InvalidArgument>([&] { w.write(ctx, 0, 0, 1, {NamedField("a/b", d)}); }, {"'a/b'"});
  expect_error<InvalidArgument>(
      [&] {
        w.write(ctx, 0, 0, 1, {NamedField("d", d), NamedField("d", d)});
      },
      {"twice"});
  expect_error<InvalidArgument>([&] { w.write(ctx, -1, 0, 1, {NamedField("d", d)}); }, {"step"});
  w.write(ctx, 0, 0, 1, {NamedField("d", d)});
  expect_error<InvalidArgument>([&] { w.write(ctx, 0, 0, 1, {NamedField("d", d)}); },
                                {"already written"});
  expect_error<InvalidArgument>([&] { w.set_run_attribute("late", 1.0); }, {"before the first"});
  WriterOptions bad;
  bad.gzip_level = 12;
  expect_error<InvalidArgument>([&] { SnapshotWriter x(dir + "/b.h5", g, bad); }, {"gzip_level"});
  w.close();
  expect_error<IoError>([&] { w.write(ctx, 1, 0, 1, {NamedField("d", d)}); }, {"after close"});
}
