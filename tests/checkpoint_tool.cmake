# The dfluid-plan tool (apps/plan): the Revolve row n = 1000, s = 10 (Griewank & Walther,
# "Algorithm 799: revolve", ACM TOMS 26(1), 2000), and bad arguments answered with exit code 2.
if(TARGET dfluid-plan)
  add_test(NAME CheckpointTool.Steps1000Slots10 COMMAND dfluid-plan --steps 1000 --slots 10)
  set_tests_properties(CheckpointTool.Steps1000Slots10 PROPERTIES
    PASS_REGULAR_EXPRESSION "(^|\n)advances: 3636\n")
  set(_ckpt_bad_ZeroSteps "--steps;0;--slots;10")
  set(_ckpt_bad_NoSlots "--steps;100")
  set(_ckpt_bad_NotANumber "--steps;100;--slots;abc")
  set(_ckpt_bad_BudgetBelowMinimum "--steps;100;--device-bytes;1000;--state-bytes;2000")
  set(_ckpt_bad_UnknownFlag "--steps;100;--slots;3;--bogus")
  set(_ckpt_bad_ImpossibleStoreAll "--steps;100;--slots;3;--strategy;store-all")
  foreach(name ZeroSteps NoSlots NotANumber BudgetBelowMinimum UnknownFlag ImpossibleStoreAll)
    add_test(NAME CheckpointTool.BadArguments.${name}
      COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-plan> "-DARGS=${_ckpt_bad_${name}}"
              -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
  endforeach()

  # Values refused with one line that names the option: _ckpt_named_<name> holds the
  # arguments, _ckpt_expect_<name> a regular expression the line must match. A plan of 10^9
  # steps would need a list of 3·10^9 actions: it is refused at once from the bound on its
  # size (it used to abort after ~20 s).
  set(_ckpt_named_HugeSteps "--steps;1000000000;--slots;2")
  set(_ckpt_expect_HugeSteps "--steps 1000000000: too many steps.*limit")
  set(_ckpt_named_HugeStepsWithHostSlots "--steps;3000000;--slots;4;--host-slots;8")
  set(_ckpt_expect_HugeStepsWithHostSlots "--steps 3000000: too many steps.*at most")
  set(_ckpt_named_StepTimeNaN "--steps;100;--slots;3;--step-time;nan")
  set(_ckpt_expect_StepTimeNaN "--step-time: nan is not a finite number")
  set(_ckpt_named_StepTimeInf "--steps;100;--slots;3;--step-time;inf")
  set(_ckpt_expect_StepTimeInf "--step-time: inf is not a finite number")
  set(_ckpt_named_StepTimeZero "--steps;100;--slots;3;--step-time;0")
  set(_ckpt_expect_StepTimeZero "--step-time: 0 is not a positive number")
  set(_ckpt_named_ReverseRatioNegative "--steps;100;--slots;3;--reverse-ratio;-2.5")
  set(_ckpt_expect_ReverseRatioNegative "--reverse-ratio: -2.5 is not a positive")
  set(_ckpt_named_ReverseRatioNaN "--steps;100;--slots;3;--reverse-ratio;NaN")
  set(_ckpt_expect_ReverseRatioNaN "--reverse-ratio: NaN is not a finite")
  set(_ckpt_named_CopyBandwidthInf "--steps;100;--slots;3;--copy-bandwidth;inf")
  set(_ckpt_expect_CopyBandwidthInf "--copy-bandwidth: inf is not a finite")
  set(_ckpt_named_CopyBandwidthZero "--steps;100;--slots;3;--copy-bandwidth;0")
  set(_ckpt_expect_CopyBandwidthZero "--copy-bandwidth: 0 is not a positive")
  set(_ckpt_named_DeviceBandwidthNegative "--steps;100;--slots;3;--device-bandwidth;-1e12")
  set(_ckpt_expect_DeviceBandwidthNegative "--device-bandwidth: -1e12 is not a positive")
  set(_ckpt_named_DiskBandwidthNaN "--steps;100;--slots;3;--disk-bandwidth;nan")
  set(_ckpt_expect_DiskBandwidthNaN "--disk-bandwidth: nan is not a finite")
  set(_ckpt_named_DiskBandwidthMinusInf "--steps;100;--slots;3;--disk-bandwidth;-inf")
  set(_ckpt_expect_DiskBandwidthMinusInf "--disk-bandwidth: -inf is not a finite")
  set(_ckpt_named_NegativeDeviceBytes "--steps;100;--device-bytes;-5;--state-bytes;10")
  set(_ckpt_expect_NegativeDeviceBytes "--device-bytes: -5 is negative")
  set(_ckpt_named_NegativeStateBytes "--steps;100;--slots;3;--state-bytes;-5")
  set(_ckpt_expect_NegativeStateBytes "--state-bytes: -5 is negative")
  set(_ckpt_named_NegativeHostBytes "--steps;100;--slots;3;--state-bytes;10;--host-bytes;-5GB")
  set(_ckpt_expect_NegativeHostBytes "--host-bytes: -5GB is negative")
  set(_ckpt_named_NegativeDiskBytes "--steps;100;--slots;3;--state-bytes;10;--disk-bytes;-1")
  set(_ckpt_expect_NegativeDiskBytes "--disk-bytes: -1 is negative")
  set(_ckpt_named_NegativeWorkingBytes "--steps;100;--slots;3;--working-bytes;-5")
  set(_ckpt_expect_NegativeWorkingBytes "--working-bytes: -5 is negative")
  set(_ckpt_named_NegativeHostSlots "--steps;100;--slots;3;--host-slots;-1")
  set(_ckpt_expect_NegativeHostSlots "--host-slots must be >= 0")
  set(_ckpt_named_NegativeDiskSlots "--steps;100;--slots;3;--disk-slots;-4")
  set(_ckpt_expect_NegativeDiskSlots "--disk-slots must be >= 0")
  foreach(name
    HugeSteps HugeStepsWithHostSlots StepTimeNaN StepTimeInf StepTimeZero ReverseRatioNegative
    ReverseRatioNaN CopyBandwidthInf CopyBandwidthZero DeviceBandwidthNegative DiskBandwidthNaN
    DiskBandwidthMinusInf NegativeDeviceBytes NegativeStateBytes NegativeHostBytes
    NegativeDiskBytes NegativeWorkingBytes NegativeHostSlots NegativeDiskSlots)
    add_test(NAME CheckpointTool.BadArguments.${name}
      COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-plan> "-DARGS=${_ckpt_named_${name}}"
              "-DEXPECT=${_ckpt_expect_${name}}" -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
    # "At once": far below the time a plan of that size would take to build.
    set_tests_properties(CheckpointTool.BadArguments.${name} PROPERTIES TIMEOUT 10)
  endforeach()
  # --grid: the state and working bytes of the library's 128^3 float smoke rollout
  # (Rollout<float>::estimate_size, the figures the test RolloutMemory.PeakWithinBudget64Cubed
  # holds to the measured peak at 64^3) and the estimated peak against the device budget.
  add_test(NAME CheckpointTool.GridReport
    COMMAND dfluid-plan --steps 100 --device-bytes 2GiB --grid 128x128x128)
  set_tests_properties(CheckpointTool.GridReport PROPERTIES PASS_REGULAR_EXPRESSION
    "state: 42139648 bytes[^\n]*\nworking memory: 732354408 bytes.*\nestimated peak device memory: 2122962792 bytes \\(1.98 GiB\\) of the 2.00 GiB budget \\(within\\)\n")
  add_test(NAME CheckpointTool.BadArguments.BadGrid
    COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-plan> "-DARGS=--steps;10;--slots;3;--grid;12x"
            "-DEXPECT=--grid 12x: use NXxNY or NXxNYxNZ" -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
  add_test(NAME CheckpointTool.BadArguments.GridWithStateBytes
    COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-plan>
            "-DARGS=--steps;10;--slots;3;--grid;8x8;--state-bytes;100"
            "-DEXPECT=--state-bytes excludes --grid" -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
  # Slot counts far beyond the step count (a huge host budget for a small state) are used,
  # not allocated: the plan stores each of the 49 states once.
  add_test(NAME CheckpointTool.HugeHostBudget
    COMMAND dfluid-plan --steps 50 --slots 2 --state-bytes 1 --host-bytes 15EiB)
  set_tests_properties(CheckpointTool.HugeHostBudget PROPERTIES TIMEOUT 10
    PASS_REGULAR_EXPRESSION "(^|\n)advances: 49\n")
endif()
