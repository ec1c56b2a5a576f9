// Core types: grids, fields, memory hook, reductions, contexts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dfluid/dfluid.hpp"

using namespace dfluid;

TEST(Grid, ValidatesEveryMember) {
  EXPECT_THROW(Grid::make_2d(1, 8, 1.0), InvalidArgument);
  EXPECT_THROW(Grid::make_2d(8, 8, 0.0), InvalidArgument);
  EXPECT_THROW(Grid::make_2d(8, 8, -1.0), InvalidArgument);
  EXPECT_THROW(Grid::make_3d(8, 8, 8, std::nan("")), InvalidArgument);
  Grid g = Grid::make_2d(8, 8, 1.0);
  g.boundary[0] = {BoundaryKind::Periodic, BoundaryKind::Wall};
  try {
    g.validate();
    FAIL() << "half-periodic axis accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("periodic"), std::string::npos);
  }
}

TEST(Grid, FaceExtentsDependOnPeriodicity) {
  Grid g = Grid::make_3d(4, 5, 6, 0.5);
  EXPECT_EQ(g.face_extents(0), (std::array<int, 3>{5, 5, 6}));
  g.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  EXPECT_EQ(g.face_extents(1), (std::array<int, 3>{4, 5, 6}));
  EXPECT_TRUE(g.pressure_has_null_space());
  g.set_boundary(2, BoundaryKind::Open, BoundaryKind::Wall);
  EXPECT_FALSE(g.pressure_has_null_space());
}

TEST(Field, RoundTripAndShapeChecks) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 4, 1.0);
  Field<double> f(ctx, g);
  EXPECT_EQ(f.size(), 12);
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i)
    v[i] = i * 0.5;
  f.assign(ctx, v);
  EXPECT_EQ(f.to_vector(ctx), v);
  EXPECT_THROW(f.assign(ctx, std::vector<double>(11)), ShapeMismatch);
  Field<double> u(ctx, g, Location::FaceX);
  EXPECT_EQ(u.extents(), (std::array<int, 3>{4, 4, 1}));
  EXPECT_THROW(axpy(ctx, 1.0, f, u), ShapeMismatch);
}

TEST(Field, WrapsCallerMemoryWithStrides) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_2d(3, 2, 1.0);
  std::vector<float> mem(2 * 5, -1.0f);  // rows padded to 5
  Field<float> f = Field<float>::wrap(g, Location::Cell, mem.data(), MemorySpace::Host, 5);
  fill(ctx, f, 2.0f);
  EXPECT_EQ(mem[0], 2.0f);
  EXPECT_EQ(mem[3], -1.0f);  // padding untouched
  EXPECT_EQ(mem[7], 2.0f);
  EXPECT_DOUBLE_EQ(sum(ctx, f), 12.0);
  EXPECT_THROW(Field<float>::wrap(g, Location::Cell, mem.data(), MemorySpace::Host, 2),
               InvalidArgument);
}

TEST(FieldOps, ReductionsAreExactAndFlagNonFinite) {
  Context ctx = Context::cpu();
  Grid g = Grid::make_3d(17, 9, 40, 1.0);  // more than one reduction chunk
  Field<double> a(ctx, g), b(ctx, g);
  std::vector<double> va(a.size()), vb(a.size());
  double expect = 0;
  for (Index i = 0; i < a.size(); ++i) {
    va[i] = double(i % 7) - 3.0;
    vb[i] = double(i % 5);
    expect += va[i] * vb[i];
  }
  a.assign(ctx, va);
  b.assign(ctx, vb);
  EXPECT_EQ(dot(ctx, a, b), expect);  // small integers: exact in any order
  EXPECT_EQ(max_abs(ctx, a), 3.0);
  EXPECT_TRUE(all_finite(ctx, a));
  va[100] = std::numeric_limits<double>::quiet_NaN();
  a.assign(ctx, va);
  EXPECT_FALSE(all_finite(ctx, a));
  EXPECT_THROW(check_finite(ctx, a, "density"), NonFiniteValue);
}

namespace {
int g_allocs = 0;
void* counting_alloc(std::size_t bytes, MemorySpace s, void* user) {
  ++g_allocs;
  return default_allocator().allocate(bytes, s, user);
}
void counting_free(void* p, std::size_t bytes, MemorySpace s, void* user) {
  --g_allocs;
  default_allocator().deallocate(p, bytes, s, user);
}
}  // namespace

TEST(Memory, AllocatorHookSeesEveryFieldAllocation) {
  Allocator saved = current_allocator();
  set_allocator(Allocator{&counting_alloc, &counting_free, nullptr});
  {
    Context ctx = Context::cpu();
    Grid g = Grid::make_2d(8, 8, 1.0);
    MacVelocity<float> u(ctx, g);
    EXPECT_EQ(g_allocs, 2);
    EXPECT_GE(memory_stats().host_bytes, 2 * 9 * 8 * sizeof(float));
  }
  EXPECT_EQ(g_allocs, 0);
  set_allocator(saved);
  EXPECT_THROW(set_allocator(Allocator{}), InvalidArgument);
}

TEST(Context, ParsesDevicesAndFallsBack) {
  EXPECT_EQ(parse_device("cpu"), Device::Cpu);
  EXPECT_EQ(parse_device("auto"), Device::Auto);
  EXPECT_THROW(parse_device("tpu"), InvalidArgument);
  Context c = Context::create(Device::Auto);
  EXPECT_EQ(c.on_gpu(), cuda_available());
  if (!cuda_available()) EXPECT_THROW(Context::create(Device::Cuda), CudaError);
}

TEST(Memory, TempBuffersComeFromTheContextPool) {
  Allocator saved = current_allocator();
  set_allocator(Allocator{&counting_alloc, &counting_free, nullptr});
  {
    Context ctx = Context::cpu();
    void* first = nullptr;
    {
      detail::TempBuffer a(ctx, 1000);
      first = a.as<void>();
      EXPECT_EQ(g_allocs, 1);
    }
    {
      detail::TempBuffer b(ctx, 800);  // fits the returned block: reused, no allocation
      EXPECT_EQ(b.as<void>(), first);
      detail::TempBuffer c(ctx, 800);  // the block is taken: a second one
      EXPECT_NE(c.as<void>(), first);
      EXPECT_EQ(g_allocs, 2);
    }
    detail::TempBuffer d(ctx, 4000);  // larger than both: a third
    EXPECT_EQ(g_allocs, 3);
  }
  EXPECT_EQ(g_allocs, 0);  // blocks are freed with the context
  set_allocator(saved);
}
