# dfluid-smoke against bad input and runs that break down (tests/apps_smoke.py): one ctest
# entry per case, named AppSmoke.<Case>. Refusals exit with code 2 and one line naming the
# option, before anything is allocated (memory that cannot exist included); a state that
# stops being finite ends the run with code 1 and one line naming the step and the operator.
if(DFLUID_SYSTEM_PYTHON AND TARGET dfluid-smoke)
  set(_smoke_script ${CMAKE_CURRENT_SOURCE_DIR}/apps_smoke.py)
  dfluid_script_cases(_smoke_cases ${_smoke_script})
  foreach(case ${_smoke_cases})
    dfluid_app_test(AppSmoke ${case} TIMEOUT 120
      COMMAND ${DFLUID_SYSTEM_PYTHON} ${_smoke_script} ${case} $<TARGET_FILE:dfluid-smoke>)
  endforeach()
endif()
