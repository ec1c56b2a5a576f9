// Runs a checkpoint plan on a CheckpointDriver.
#include "dfluid/checkpoint/executor.hpp"

namespace dfluid::checkpoint {

void execute_plan(const Plan& plan, CheckpointDriver& driver) {
  for (const Action& a : plan.actions) {
    switch (a.type) {
      case ActionType::Advance:
        for (std::int64_t k = a.step; k < a.to_step; ++k)
          driver.advance(k);
        break;
      case ActionType::Store:
        driver.store(a.level, a.slot, a.step);
        break;
      case ActionType::Restore:
        driver.restore(a.level, a.slot, a.step);
        break;
      case ActionType::Prefetch:
        driver.prefetch(a.level, a.slot, a.step);
        break;
      case ActionType::Free:
        driver.release(a.level, a.slot);
        break;
      case ActionType::Reverse:
        driver.reverse(a.step);
        break;
    }
  }
  driver.fence(Level::Host);
  driver.fence(Level::Disk);
}

}  // namespace dfluid::checkpoint
