# The dfluid-burgers and dfluid-plume apps (apps/burgers, apps/plume), run on the CPU by
# tests/apps_burgers_plume.py into folders under the build tree: outputs exist and parse
# (csv, json, h5py), the published numbers of the Physics-based Deep Learning book (Burgers, plume), Ctrl-C
# (SIGINT and the hidden --stop-after) with a bitwise --resume, and bad arguments answered with
# exit code 2 and one error line. The apps can be switched off (DFLUID_BUILD_APPS=OFF).
set(_bp_script ${CMAKE_CURRENT_SOURCE_DIR}/apps_burgers_plume.py)
set(_bp_dir ${CMAKE_CURRENT_BINARY_DIR}/apps_burgers_plume)
set(_bp_expect2 ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)

if(TARGET dfluid-burgers)
  set(_bp_app $<TARGET_FILE:dfluid-burgers>)
  if(DFLUID_SYSTEM_PYTHON)
    dfluid_app_test(AppBurgers Outputs ENVIRONMENT "DFLUID_TEST_DATA_DIR=${PROJECT_SOURCE_DIR}/data"
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} burgers-outputs ${_bp_app}
              ${_bp_dir}/burgers_outputs)
    # Iterations 0, 1, 10, 45 to 4 significant digits (double precision).
    dfluid_app_test(AppBurgers PublishedLosses
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} burgers-published ${_bp_app}
              ${_bp_dir}/burgers_published)
    dfluid_app_test(AppBurgers StopAndResume
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} stop-resume ${_bp_app}
              ${_bp_dir}/burgers_stop --iterations 6 --precision double)
    dfluid_app_test(AppBurgers SigintAndResume TIMEOUT 600
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} sigint-resume ${_bp_app}
              ${_bp_dir}/burgers_sigint)
  else()
    message(STATUS "dfluid: no python3 found; the dfluid-burgers output tests are not registered")
  endif()
  set(_bp_bad_UnknownFlag "--bogus")
  set(_bp_bad_NegativeIterations "--iterations;-1")
  set(_bp_bad_NotANumber "--learning-rate;fast")
  set(_bp_bad_ZeroLearningRate "--learning-rate;0")
  set(_bp_bad_BadPrecision "--precision;half")
  set(_bp_bad_MissingReference "--device;cpu;--reference;${_bp_dir}/no-such-reference.txt")
  set(_bp_bad_MissingResume "--device;cpu;--resume;${_bp_dir}/no-such-state.json")
  foreach(name UnknownFlag NegativeIterations NotANumber ZeroLearningRate BadPrecision
               MissingReference MissingResume)
    add_test(NAME AppBurgers.BadArguments.${name}
      COMMAND ${CMAKE_COMMAND} -DTOOL=${_bp_app} "-DARGS=${_bp_bad_${name}}" -P ${_bp_expect2})
  endforeach()
endif()

if(TARGET dfluid-plume)
  set(_bp_app $<TARGET_FILE:dfluid-plume>)
  if(DFLUID_SYSTEM_PYTHON)
    dfluid_app_test(AppPlume Outputs
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} plume-outputs ${_bp_app}
              ${_bp_dir}/plume_outputs)
    # Iteration-0 loss within 2% of 298.29.
    dfluid_app_test(AppPlume PublishedIteration0
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} plume-published ${_bp_app}
              ${_bp_dir}/plume_iteration0 0)
    # The same problem with no-slip box walls instead of the solid one-cell ring (the ghost
    # value of a tangential component is -u at the wall rather than 0 half a cell beyond it).
    dfluid_app_test(AppPlume NoSlipWallIteration0
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} plume-published ${_bp_app}
              ${_bp_dir}/plume_noslip_iteration0 0 --wall-tangential no-slip)
    # The full published run: below 200 within 80 iterations (~20 s on 2 CPU cores, Release).
    # Not under the sanitizers (104 s there, the sanitizer suite's longest pole; the shorter
    # plume runs above and below exercise the same code).
    if(NOT DFLUID_SANITIZE)
      dfluid_app_test(AppPlume PublishedBelow200 TIMEOUT 1200 LABELS slow
        COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} plume-published ${_bp_app}
                ${_bp_dir}/plume_published 80)
      # With no-slip walls the loss first falls below 200 at iteration 36 (~4 s, Release).
      dfluid_app_test(AppPlume NoSlipWallBelow200 TIMEOUT 1200 LABELS slow
        COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} plume-published ${_bp_app}
                ${_bp_dir}/plume_noslip_published 40 --wall-tangential no-slip)
    endif()
    dfluid_app_test(AppPlume StopAndResume
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} stop-resume ${_bp_app}
              ${_bp_dir}/plume_stop --iterations 4 --steps 6 --precision float)
    dfluid_app_test(AppPlume SigintAndResume TIMEOUT 600
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bp_script} sigint-resume ${_bp_app}
              ${_bp_dir}/plume_sigint --steps 4)
  else()
    message(STATUS "dfluid: no python3 found; the dfluid-plume output tests are not registered")
  endif()
  set(_bp_bad_UnknownFlag "--bogus")
  set(_bp_bad_ZeroSteps "--steps;0")
  set(_bp_bad_BadInflowEdge "--inflow-edge;fuzzy")
  set(_bp_bad_BadWallTangential "--wall-tangential;slip")
  set(_bp_bad_NegativeLearningRate "--learning-rate;-1e-3")
  set(_bp_bad_BadDevice "--device;tpu")
  set(_bp_bad_MissingResume "--device;cpu;--resume;${_bp_dir}/no-such-state.json")
  foreach(name UnknownFlag ZeroSteps BadInflowEdge BadWallTangential NegativeLearningRate
               BadDevice MissingResume)
    add_test(NAME AppPlume.BadArguments.${name}
      COMMAND ${CMAKE_COMMAND} -DTOOL=${_bp_app} "-DARGS=${_bp_bad_${name}}" -P ${_bp_expect2})
  endforeach()
endif()
