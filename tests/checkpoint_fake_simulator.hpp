// A counting fake simulator for the checkpoint scheduler tests: its "state" is the step
// index, so a restored state can be compared with the one stored. It checks the invariants
// of a plan while executing it: slot capacity per level, occupied/free slots, the current
// state before each action, each step reversed exactly once in reverse order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dfluid/checkpoint.hpp"

namespace dfluid_test {

class CountingSimulator : public dfluid::checkpoint::CheckpointDriver {
 public:
  using Level = dfluid::checkpoint::Level;

  CountingSimulator(std::int64_t steps, const dfluid::checkpoint::SlotCounts& capacity)
      : steps_(steps), next_reverse_(steps - 1) {
    for (int l = 0; l < dfluid::checkpoint::kLevelCount; ++l) {
      slots_[l].assign(static_cast<std::size_t>(capacity[Level(l)]), -1);
    }
  }

  void advance(std::int64_t step) override {
    check(current_ == step, "advance from a state that is not current");
    check(step + 1 < steps_, "advance computes the final state (part of the first reverse)");
    current_ = step + 1;
    ++advances;
  }
  void store(Level level, std::int32_t slot, std::int64_t step) override {
    auto& v = slots_[static_cast<int>(level)];
    check(slot >= 0 && slot < static_cast<std::int32_t>(v.size()), "store: slot out of range");
    if (failures) return;
    check(v[slot] < 0, "store into an occupied slot");
    check(current_ == step, "store: the current state is not the one named");
    v[slot] = current_;
    auto& n = held[static_cast<int>(level)];
    ++n;
    if (n > peak_held[static_cast<int>(level)]) peak_held[static_cast<int>(level)] = n;
  }
  void restore(Level level, std::int32_t slot, std::int64_t step) override {
    auto& v = slots_[static_cast<int>(level)];
    check(slot >= 0 && slot < static_cast<std::int32_t>(v.size()), "restore: slot out of range");
    if (failures) return;
    check(v[slot] == step, "restore: the slot does not hold the state named");
    current_ = v[slot];
    ++restores;
  }
  void prefetch(Level level, std::int32_t slot, std::int64_t step) override {
    auto& v = slots_[static_cast<int>(level)];
    check(level != Level::Device, "prefetch from a device slot");
    check(slot >= 0 && slot < static_cast<std::int32_t>(v.size()) && v[slot] == step,
          "prefetch: the slot does not hold the state named");
    ++prefetches;
  }
  void release(Level level, std::int32_t slot) override {
    auto& v = slots_[static_cast<int>(level)];
    check(slot >= 0 && slot < static_cast<std::int32_t>(v.size()) && v[slot] >= 0,
          "release of a free slot");
    if (failures) return;
    v[slot] = -1;
    --held[static_cast<int>(level)];
  }
  void reverse(std::int64_t step) override {
    check(current_ == step, "reverse: the current state is not the step's input");
    check(step == next_reverse_, "steps reversed out of order or twice");
    reversed.push_back(step);
    --next_reverse_;
    current_ = -1;
  }
  void fence(Level) override { ++fences; }

  /// True when every step was reversed once, in order n−1..0, and all slots were released.
  bool complete() const {
    if (static_cast<std::int64_t>(reversed.size()) != steps_) return false;
    for (std::int64_t i = 0; i < steps_; ++i) {
      if (reversed[static_cast<std::size_t>(i)] != steps_ - 1 - i) return false;
    }
    return held[0] == 0 && held[1] == 0 && held[2] == 0;
  }

  std::int64_t advances = 0, restores = 0, prefetches = 0, fences = 0, failures = 0;
  std::int64_t held[3] = {0, 0, 0};
  std::int64_t peak_held[3] = {0, 0, 0};
  std::vector<std::int64_t> reversed;
  std::string first_failure;

 private:
  void check(bool ok, const char* what) {
    if (!ok && failures++ == 0) first_failure = what;
  }

  std::int64_t steps_;
  std::int64_t current_ = 0;  // the fake state: the index of the state in hand, -1 if none
  std::int64_t next_reverse_;
  std::vector<std::int64_t> slots_[3];
};

}  // namespace dfluid_test
