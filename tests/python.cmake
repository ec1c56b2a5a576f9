# The Python package's tests (tests/python/test_*.py, unittest), where the build has the
# package (DFLUID_BUILD_PYTHON: a Python with nanobind was found; .ci/test passes the cached
# virtual environment of .ci/python-env). They run with the interpreter the extension was
# built for and the build's package (<build>/python) on PYTHONPATH. Python.torch and
# Python.jax (and Python.examples, which runs host/python/examples at small sizes) skip
# themselves (exit 77) where torch or jax is not installed, Python.mosaic (the Mosaic
# benchmark adapter, host/python/mosaic) where tesseract_core is not. One thread
# (OMP_NUM_THREADS, read by dfluid and torch): the grids are tiny, and threads of a loaded
# machine wait for each other far longer than the work takes.
if(NOT DFLUID_PYTHON_ON)
  return()
endif()
foreach(suite numpy obstacles torch jax jax_ffi examples mosaic)
  add_test(NAME Python.${suite}
           COMMAND ${DFLUID_PYTHON_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_${suite}.py)
  set_tests_properties(Python.${suite} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS python
    ENVIRONMENT "PYTHONPATH=${PROJECT_BINARY_DIR}/python:${CMAKE_CURRENT_SOURCE_DIR}/python:${PROJECT_SOURCE_DIR}/host/python/examples;OMP_NUM_THREADS=1")
endforeach()
