# Installs this build into a scratch prefix, then configures, builds and runs
# tests/downstream against it with find_package(dfluid CONFIG REQUIRED).
# Not under the sanitizer build: the consumer would need the sanitizer runtime too.
if(DFLUID_SANITIZE)
  return()
endif()
add_test(NAME DownstreamFindPackage
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/downstream
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/downstream-work
    -DGENERATOR=${CMAKE_GENERATOR}
    -DCUDA_ARCHS=${CMAKE_CUDA_ARCHITECTURES}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/downstream/run.cmake)
set_tests_properties(DownstreamFindPackage PROPERTIES
  LABELS "install" TIMEOUT 600 PASS_REGULAR_EXPRESSION "downstream OK")
