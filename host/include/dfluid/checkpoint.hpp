// Checkpointing scheduler: plans that reverse a long rollout within a memory budget
// (binomial Revolve on device slots, multi-level plans with pinned host memory and disk),
// their report, and the executor that runs them on a simulator. Pure host logic.
#pragma once

#include "dfluid/checkpoint/binomial.hpp"
#include "dfluid/checkpoint/executor.hpp"
#include "dfluid/checkpoint/plan.hpp"
