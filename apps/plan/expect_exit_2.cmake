# Runs ${TOOL} with the ;-list ${ARGS} and fails unless it exits with code 2 and prints one
# error line on stderr; with ${EXPECT} (a regular expression), that line must match it
# (e.g. the option's name). Used by tests/checkpoint_tool.cmake.
execute_process(COMMAND ${TOOL} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "expected exit code 2, got ${rc}\nstdout: ${out}\nstderr: ${err}")
endif()
string(STRIP "${err}" err)
if(err STREQUAL "" OR err MATCHES "\n")
  message(FATAL_ERROR "expected one error line on stderr, got: '${err}'")
endif()
if(DEFINED EXPECT AND NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "the error line does not match '${EXPECT}': '${err}'")
endif()
message(STATUS "exit code 2: ${err}")
