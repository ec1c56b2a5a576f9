# dfluid-bench's rollout-gradient mode (apps/bench/rollout_bench.hpp) on the CPU path, tiny:
# 16x16x16, 4 and 8 steps, a device budget that holds every state at 4 steps but not at 8
# (Revolve recomputes there) and a host budget for the two-level plan. apps/bench/check_rollout.py
# checks the exit code, that the table names every plan and says the losses agree bitwise, and
# the JSON ("rollouts"): advances performed = planned, losses and buoyancy gradients bitwise
# equal, the gradient's memory within the plan's prediction. Without python3 only the table is
# matched (a pass regular expression, which ignores the exit code).
if(TARGET dfluid-bench)
  if(DFLUID_SYSTEM_PYTHON)
    add_test(NAME AppBench.RolloutGradients
             COMMAND ${DFLUID_SYSTEM_PYTHON} ${PROJECT_SOURCE_DIR}/apps/bench/check_rollout.py
                     $<TARGET_FILE:dfluid-bench> ${CMAKE_CURRENT_BINARY_DIR}/bench_rollout)
  else()
    add_test(NAME AppBench.RolloutGradients
             COMMAND dfluid-bench --device cpu --rollout-steps 8 --sizes 16x16x16
                     --device-budget 1792KiB --host-budget 1MiB --repeats 1)
    set_tests_properties(AppBench.RolloutGradients PROPERTIES PASS_REGULAR_EXPRESSION
      "\nstore-all +skipped[^\n]*\nrevolve +[^\n]*\nmulti-level +[^\n]*\n16x16x16, 8 steps: losses agree bitwise")
  endif()
  # Seconds normally; generous for a loaded machine (the CPU loops run on OpenMP threads).
  set_tests_properties(AppBench.RolloutGradients PROPERTIES TIMEOUT 300)
endif()
# A negative budget is refused (CLI::AsSizeValue alone would wrap "-5" to 2^64 - 5).
if(TARGET dfluid-bench)
  add_test(NAME AppBench.BadArguments.NegativeDeviceBudget
           COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-bench>
                   "-DARGS=--device;cpu;--rollout;--device-budget;-5"
                   -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
endif()
# The operator and step timings (the default mode), tiny: every row runs, including the step
# adjoints (uniform cotangent, a loss's cotangent, and a backward pass with warm adjoint solves)
# and the ratio line that reports them. Timings are not checked (the benchmark's job).
if(TARGET dfluid-bench)
  add_test(NAME AppBench.OperatorTimings
           COMMAND dfluid-bench --device cpu --sizes 16x12 8x8x6 --repeats 2)
  set_tests_properties(AppBench.OperatorTimings PROPERTIES TIMEOUT 300 PASS_REGULAR_EXPRESSION
    "8x8x6: adjoint/forward step time [0-9.]+ \\(uniform cotangent\\), [0-9.]+ \\(energy loss\\), [0-9.]+ \\(in a backward pass, warm solves: [0-9.]+ iterations a step\\)")
endif()
