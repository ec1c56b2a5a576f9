# dfluid-bench's lid-driven cavity mode (apps/bench/cavity.hpp) on the CPU path, small: 32x32
# at Re = 100 against Ghia, Ghia & Shin (1982) (data/ghia1982_cavity.txt); the mode exits
# with status 3 when a deviation exceeds --cavity-check (the tolerance is justified in
# README.md, "Box-side velocity boundaries"). The 128x128 runs at Re = 100, 400 and 1000 are
# the README's figures, not a test (minutes on the CPU).
# Release-only: 17 s under the sanitizers on 2 cores; the sanitizer run checks the no-slip and
# moving-wall operators it steps with in tests/test_velocity_boundary.cpp.
if(TARGET dfluid-bench AND NOT DFLUID_SANITIZE)
  add_test(NAME AppBench.CavityRe100Grid32
           COMMAND dfluid-bench --device cpu --cavity --cavity-sizes 32 --cavity-re 100
                   --cavity-check 0.02)
  set_tests_properties(AppBench.CavityRe100Grid32 PROPERTIES TIMEOUT 300)
endif()
if(TARGET dfluid-bench)
  # A Reynolds number the table lacks is refused (exit 2, naming the option).
  add_test(NAME AppBench.BadArguments.CavityReynolds
           COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:dfluid-bench>
                   "-DARGS=--device;cpu;--cavity;--cavity-re;250"
                   -P ${PROJECT_SOURCE_DIR}/apps/plan/expect_exit_2.cmake)
endif()
