// The driver interface with real state payloads: a toy nonlinear rollout with a hand-written
// adjoint implements CheckpointDriver, and its gradient is bitwise identical under every
// plan (store-all, recompute-from-start, Revolve, multi-level with host and disk slots).
// This is the shape the adjoint rollout's driver takes: the state is the simulation state,
// reverse(n−1) evaluates the last step forward for the loss (the "first turn").
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "dfluid/checkpoint.hpp"

namespace ck = dfluid::checkpoint;

namespace {

using State = std::array<double, 3>;

State step_forward(const State& x, std::int64_t i) {
  const double c = 0.3 * (1.0 + 0.01 * static_cast<double>(i));
  State y;
  for (int k = 0; k < 3; ++k)
    y[k] = x[k] + c * std::sin(x[(k + 1) % 3]);
  return y;
}

// λ_i = J_i(x_i)ᵀ λ_{i+1}, where y[j] depends on x[j] and x[j+1].
State step_adjoint(const State& x, const State& lambda, std::int64_t i) {
  const double c = 0.3 * (1.0 + 0.01 * static_cast<double>(i));
  State g;
  for (int k = 0; k < 3; ++k)
    g[k] = lambda[k] + c * std::cos(x[k]) * lambda[(k + 2) % 3];
  return g;
}

// Loss ½|x_n|²: its gradient with respect to x_n is x_n.
class ToyRollout : public ck::CheckpointDriver {
 public:
  ToyRollout(std::int64_t steps, State x0) : steps_(steps), current_(x0) {}
  void advance(std::int64_t step) override { current_ = step_forward(current_, step); }
  void store(ck::Level level, std::int32_t slot, std::int64_t) override {
    slots_[{static_cast<int>(level), slot}] = current_;
  }
  void restore(ck::Level level, std::int32_t slot, std::int64_t) override {
    current_ = slots_.at({static_cast<int>(level), slot});
  }
  void release(ck::Level level, std::int32_t slot) override {
    slots_.erase({static_cast<int>(level), slot});
  }
  void reverse(std::int64_t step) override {
    if (step == steps_ - 1) lambda_ = step_forward(current_, step);  // first turn: x_n
    lambda_ = step_adjoint(current_, lambda_, step);
    current_.fill(std::nan(""));  // the current state is undefined after a reverse
  }
  const State& gradient() const { return lambda_; }
  bool slots_empty() const { return slots_.empty(); }

 private:
  std::int64_t steps_;
  State current_;
  State lambda_{};
  std::map<std::pair<int, std::int32_t>, State> slots_;
};

State gradient_with(const ck::PlanRequest& request, State x0) {
  const ck::Plan plan = ck::make_plan(request);
  ToyRollout rollout(request.steps, x0);
  ck::execute_plan(plan, rollout);
  EXPECT_TRUE(rollout.slots_empty());
  return rollout.gradient();
}

}  // namespace

TEST(CheckpointDriver, GradientsBitwiseIdenticalUnderAllPlans) {
  const State x0{0.3, -1.2, 2.0};
  for (std::int64_t n : {1, 2, 7, 64, 300}) {
    // Reference: a plain taped reverse pass.
    std::vector<State> xs{x0};
    for (std::int64_t i = 0; i < n; ++i)
      xs.push_back(step_forward(xs.back(), i));
    State reference = xs.back();
    for (std::int64_t i = n - 1; i >= 0; --i) {
      reference = step_adjoint(xs[static_cast<std::size_t>(i)], reference, i);
    }

    ck::PlanRequest r;
    r.steps = n;
    r.slots.device = std::max<std::int64_t>(1, n - 1);
    r.strategy = ck::Strategy::StoreAll;
    EXPECT_EQ(gradient_with(r, x0), reference) << "store-all n=" << n;
    r.strategy = ck::Strategy::RecomputeFromStart;
    EXPECT_EQ(gradient_with(r, x0), reference) << "recompute n=" << n;
    r.strategy = ck::Strategy::Revolve;
    r.slots.device = 3;
    EXPECT_EQ(gradient_with(r, x0), reference) << "revolve n=" << n;
    if (n >= 2) {
      r.strategy = ck::Strategy::MultiLevel;
      r.slots.host = 5;
      r.slots.disk = 4;
      r.size.state_bytes = sizeof(State);
      EXPECT_EQ(gradient_with(r, x0), reference) << "multi-level n=" << n;
      r.slots.device = 2;
      r.slots.host = n;
      r.slots.disk = 0;
      r.strategy = ck::Strategy::Auto;
      EXPECT_EQ(gradient_with(r, x0), reference) << "host holds all, n=" << n;
    }
  }
}
