# The dfluid-control app (apps/control), run on the CPU by tests/apps_control.py into folders
# under the build tree: the outputs of tiny 2D and 3D runs exist, parse (h5py, XML, csv, json,
# PNG chunks) and agree with each other; --stop-after and a real SIGINT, then a bitwise
# --resume; a checkpointed (revolve) backward pass equal to store-all bit for bit; PNG and
# HDF5 targets; --target-error; --dry-run; bad arguments answered with exit code 2 and one
# error line; and (label "slow", not under sanitizers) the embedded default 2D scenario's
# acceptance numbers. The apps can be switched off (DFLUID_BUILD_APPS=OFF).
if(TARGET dfluid-control)
  set(_ctl_app $<TARGET_FILE:dfluid-control>)
  set(_ctl_script ${CMAKE_CURRENT_SOURCE_DIR}/apps_control.py)
  set(_ctl_dir ${CMAKE_CURRENT_BINARY_DIR}/apps_control)

  if(DFLUID_SYSTEM_PYTHON)
    # name -> subcommand of apps_control.py (each runs in ${_ctl_dir}/<name>).
    set(_ctl_py_Outputs2D outputs-2d)
    set(_ctl_py_Outputs3D outputs-3d)
    set(_ctl_py_StopAndResume stop-resume)
    set(_ctl_py_SigintAndResume sigint-resume)
    set(_ctl_py_CheckpointedEqualsStoreAll checkpointed)
    set(_ctl_py_PngTarget png-target)
    set(_ctl_py_H5Target h5-target)
    set(_ctl_py_TargetError target-error)
    set(_ctl_py_DryRun dry-run)
    foreach(name Outputs2D Outputs3D StopAndResume SigintAndResume CheckpointedEqualsStoreAll
                 PngTarget H5Target TargetError DryRun)
      # 77: h5py/numpy missing for /usr/bin/python3 (Debian: python3-h5py), or no GPU.
      dfluid_app_test(AppControl ${name} TIMEOUT 300
        COMMAND ${DFLUID_SYSTEM_PYTHON} ${_ctl_script} ${_ctl_py_${name}} ${_ctl_app}
                ${_ctl_dir}/${name})
    endforeach()
    # The issue's acceptance: the embedded default 2D scenario (128², 64 steps, 30 L-BFGS
    # iterations; ~35 s on 2 CPU cores, Release) takes the relative keyframe error from above
    # 0.5 uncontrolled to at most 0.15. Too slow under the sanitizers.
    if(NOT DFLUID_SANITIZE)
      dfluid_app_test(AppControl DefaultAcceptance TIMEOUT 900 LABELS slow
        COMMAND ${DFLUID_SYSTEM_PYTHON} ${_ctl_script} acceptance ${_ctl_app}
                ${_ctl_dir}/DefaultAcceptance)
      # The suite's longest test (80 s on 2 cores): started first, so that the rest of the
      # suite runs beside it instead of after it (a fresh build has no timing data for ctest
      # to order by; it started after 500 others and ended the Release run 20 s late).
      set_tests_properties(AppControl.DefaultAcceptance PROPERTIES COST 10000)
    endif()
  else()
    message(STATUS "dfluid: no python3 found; the dfluid-control output tests are not registered")
  endif()

  # Bad arguments: exit code 2 and one error line on stderr (apps/plan/expect_exit_2.cmake).
  # Every run gets --device cpu and an --output under the build tree, since the options that
  # pass the parser are checked after the output folder has been created.
  set(_ctl_expect2 ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
  set(_ctl_bad_UnknownFlag "--bogus")
  set(_ctl_bad_Dim4 "--dim;4")
  set(_ctl_bad_UnknownOptimizer "--optimizer;newton")
  set(_ctl_bad_NegativeSteps "--steps;-1")
  set(_ctl_bad_IterationsNotANumber "--iterations;x")
  set(_ctl_bad_MissingTargetPng "--target-png;${_ctl_dir}/no-such-target.png")
  set(_ctl_bad_MissingResume "--size;32;--steps;12;--resume;${_ctl_dir}/no-such-state.h5")
  set(_ctl_bad_KeyframeBeyondSteps "--size;32;--steps;12;--keyframes;13")
  set(_ctl_bad_NegativeControlInterval "--control-interval;-1")
  set(_ctl_bad_ControlIntervalBeyondSteps "--size;32;--steps;12;--control-interval;13")
  set(_ctl_bad_BadBudgetUnit "--memory-budget;12parsecs")
  set(_ctl_bad_ShapeOfOtherDim "--size;32;--shape;torus")
  set(_ctl_bad_SizeTooSmall "--size;4")
  set(_ctl_bad_BadPrecision "--precision;half")
  # A regular file (this script's source) as a parent folder of the output.
  set(_ctl_bad_OutputBelowFile "--output;${CMAKE_CURRENT_SOURCE_DIR}/apps_control.py/out")
  foreach(name UnknownFlag Dim4 UnknownOptimizer NegativeSteps IterationsNotANumber
               MissingTargetPng MissingResume KeyframeBeyondSteps NegativeControlInterval
               ControlIntervalBeyondSteps BadBudgetUnit ShapeOfOtherDim SizeTooSmall BadPrecision
               OutputBelowFile)
    set(_ctl_args "--device;cpu;${_ctl_bad_${name}}")
    if(NOT "--output" IN_LIST _ctl_bad_${name})
      list(APPEND _ctl_args "--output;${_ctl_dir}/BadArguments/${name}")
    endif()
    add_test(NAME AppControl.BadArguments.${name}
      COMMAND ${CMAKE_COMMAND} -DTOOL=${_ctl_app} "-DARGS=${_ctl_args}" -P ${_ctl_expect2})
  endforeach()
endif()
