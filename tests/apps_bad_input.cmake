# Bad input to the apps (tests/apps_bad_input.py): one ctest entry per case, named
# AppBadInput.<Case>; the case's prefix (Control, Burgers, Plume, Drag) names the app it runs.
# Each refusal must exit with code 2 and one line naming the option, key or file, and leave no
# output folder behind; the other cases cover two runs into one folder, a signal while the
# outputs are written, and HDF5 targets holding NaN or Inf.
if(DFLUID_SYSTEM_PYTHON AND TARGET dfluid-control AND TARGET dfluid-burgers AND TARGET dfluid-plume
   AND TARGET dfluid-drag)
  set(_bad_script ${CMAKE_CURRENT_SOURCE_DIR}/apps_bad_input.py)
  dfluid_script_cases(_bad_cases ${_bad_script})
  set(_bad_app_Control $<TARGET_FILE:dfluid-control>)
  set(_bad_app_Burgers $<TARGET_FILE:dfluid-burgers>)
  set(_bad_app_Plume $<TARGET_FILE:dfluid-plume>)
  set(_bad_app_Drag $<TARGET_FILE:dfluid-drag>)
  foreach(case ${_bad_cases})
    string(REGEX MATCH "^(Control|Burgers|Plume|Drag)" _bad_prefix "${case}")
    add_test(NAME AppBadInput.${case}
             COMMAND ${DFLUID_SYSTEM_PYTHON} ${_bad_script} ${case}
                     ${CMAKE_CURRENT_BINARY_DIR}/apps_bad_input/${case} ${_bad_app_${_bad_prefix}})
    set_tests_properties(AppBadInput.${case} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
  endforeach()
endif()
