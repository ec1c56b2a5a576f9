# dfluid-smoke against bad input and runs that break down (tests/apps_smoke.py): one ctest
# entry per case, named AppSmoke.<Case>. Refusals exit with code 2 and one line naming the
# option, before anything is allocated (memory that cannot exist included); a state that
# stops being finite ends the run with code 1 and one line naming the step and the operator.
find_program(_smoke_python python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT _smoke_python)
  find_program(_smoke_python python3)
endif()
if(_smoke_python AND TARGET dfluid-smoke)
  set(_smoke_script ${CMAKE_CURRENT_SOURCE_DIR}/apps_smoke.py)
  execute_process(COMMAND ${_smoke_python} ${_smoke_script} --list
                  OUTPUT_VARIABLE _smoke_cases OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _smoke_rc)
  if(NOT _smoke_rc EQUAL 0)
    message(FATAL_ERROR "apps_smoke.py --list failed (${_smoke_rc})")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_smoke_script})
  foreach(case ${_smoke_cases})
    add_test(NAME AppSmoke.${case}
             COMMAND ${_smoke_python} ${_smoke_script} ${case} $<TARGET_FILE:dfluid-smoke>)
    set_tests_properties(AppSmoke.${case} PROPERTIES TIMEOUT 120)
  endforeach()
endif()
