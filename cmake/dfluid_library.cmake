# The static library dfluid (alias dfluid::dfluid) and its installation.
#
# Sources are globbed (recursively) so that each operator lives in its own small file,
# grouped by what it does:
#   cuda/{core,advection,diffusion,forces,pressure,optimizer}/*.cpp
#       operator implementations (cell math + launches). Compiled by nvcc as CUDA
#       when the CUDA path is on, by the C++ compiler otherwise: one source of truth
#       for the arithmetic on both paths.
#   host/src/{core,step,rollout,checkpoint,io,optimizer,pressure}/*.cpp
#       orchestration, context, memory, checkpointing, I/O: always plain C++.
# Private headers are included by their folder ("core/exec.hpp", "io/io_xdmf.hpp").
file(GLOB_RECURSE DFLUID_KERNEL_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cuda/*.cpp)
file(GLOB_RECURSE DFLUID_HOST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/host/src/*.cpp)

add_library(dfluid STATIC ${DFLUID_KERNEL_SOURCES} ${DFLUID_HOST_SOURCES})
add_library(dfluid::dfluid ALIAS dfluid)

if(DFLUID_WITH_CUDA)
  set_source_files_properties(${DFLUID_KERNEL_SOURCES} PROPERTIES LANGUAGE CUDA)
  target_compile_options(dfluid PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--extended-lambda --expt-relaxed-constexpr -Xcudafe --diag_suppress=esa_on_defaulted_function_ignored>)
  target_link_libraries(dfluid PUBLIC CUDA::cudart)
endif()

target_include_directories(dfluid
  PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/host/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  PRIVATE
    ${PROJECT_SOURCE_DIR}/cuda
    ${PROJECT_SOURCE_DIR}/host/src)
target_compile_features(dfluid PUBLIC cxx_std_17)
# HDF5 by resolved paths (not the HDF5::HDF5 target), so that consumers of the
# installed package need not run FindHDF5 (which requires the C language).
target_include_directories(dfluid PRIVATE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_compile_definitions(dfluid PRIVATE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
target_link_libraries(dfluid PUBLIC Threads::Threads PRIVATE ${HDF5_C_LIBRARIES})
# The CPU path runs its per-cell loops on OpenMP threads (cuda/core/exec.hpp); reductions and
# scatters stay serial, so results are bitwise independent of the thread count.
if(DFLUID_OPENMP)
  find_package(OpenMP COMPONENTS CXX)
  if(OpenMP_CXX_FOUND)
    separate_arguments(DFLUID_OMP_FLAGS NATIVE_COMMAND "${OpenMP_CXX_FLAGS}")
    target_compile_options(dfluid PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:${DFLUID_OMP_FLAGS}>
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${OpenMP_CXX_FLAGS}>)
    # By path (like HDF5): consumers of the installed package need no FindOpenMP.
    target_link_libraries(dfluid PRIVATE ${OpenMP_CXX_LIBRARIES})
  else()
    message(STATUS "dfluid: OpenMP not found; the CPU path runs on one thread")
  endif()
endif()
set_target_properties(dfluid PROPERTIES POSITION_INDEPENDENT_CODE ON)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(dfluid PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
endif()

# ---- install + package config: find_package(dfluid CONFIG REQUIRED) ----
install(TARGETS dfluid EXPORT dfluidTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/host/include/dfluid
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/generated/include/dfluid/build_config.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dfluid)
install(EXPORT dfluidTargets NAMESPACE dfluid::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dfluid)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dfluidConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dfluidConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dfluid)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dfluidConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dfluidConfig.cmake
              ${PROJECT_BINARY_DIR}/dfluidConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dfluid)
