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
endif()
