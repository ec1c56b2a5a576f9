// Downstream consumer of an installed dfluid: builds fields, wraps caller
// memory, reduces, and (on a GPU) wraps a cudaMalloc'ed buffer.
#include <cstdio>
#include <vector>

#include <dfluid/dfluid.hpp>

#ifdef DOWNSTREAM_WITH_CUDA
int run_device_wrap_check();  // device_buffers.cu
#endif

int main() {
  using namespace dfluid;
  Context ctx = Context::create(Device::Auto);
  Grid g = Grid::make_2d(16, 8, 0.5);
  std::vector<double> mine(g.cells(), 1.5);
  Field<double> wrapped = Field<double>::wrap(g, Location::Cell, mine.data(), MemorySpace::Host);
  Context cpu = Context::cpu();
  scale(cpu, wrapped, 2.0);
  const double total = sum(cpu, wrapped);
  std::printf("dfluid %s, device %s, sum %.1f\n", DFLUID_VERSION_STRING, ctx.description().c_str(),
              total);
  if (total != 3.0 * g.cells()) return 1;

  // A few smoke steps through the installed headers and library.
  Grid box = Grid::make_2d(16, 16, 1.0);
  StepConfig cfg;
  cfg.buoyancy = 1.0;
  Simulation<float> sim(ctx, box, cfg);
  SmokeState<float> state(ctx, box);
  fill(ctx, state.scalars[0], 0.5f);
  for (int k = 0; k < 3; ++k) {
    StepReport r = sim.step(state);
    std::printf("step %d: %d pressure iterations, residual %.2e\n", k, r.pressure.iterations,
                r.pressure.residual);
  }
  if (max_abs_divergence(ctx, state.velocity) > 1e-3) return 1;
#ifdef DOWNSTREAM_WITH_CUDA
  if (ctx.on_gpu() && run_device_wrap_check() != 0) return 1;
#endif
  std::printf("downstream OK\n");
  return 0;
}
