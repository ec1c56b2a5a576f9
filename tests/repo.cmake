# Checks of the repository itself (tests/repo/): it stands alone (no file names or reads a path
# outside it; the checker also proves it finds planted references), and the README's commands
# survive their first run on a fresh machine (.ci/install-deps with every package missing).
find_program(DFLUID_BASH bash)
if(DFLUID_SYSTEM_PYTHON)
  add_test(NAME Repo.SelfContained
           COMMAND ${DFLUID_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/repo/check_self_contained.py
                   ${PROJECT_SOURCE_DIR})
  add_test(NAME Repo.SelfContainedCheckerFindsPlantedPaths
           COMMAND ${DFLUID_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/repo/check_self_contained.py
                   --self-test)
endif()
if(DFLUID_BASH)
  add_test(NAME Repo.InstallDepsFirstRun
           COMMAND ${DFLUID_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/repo/install_deps_first_run.sh
                   ${PROJECT_SOURCE_DIR})
endif()
