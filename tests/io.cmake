# HDF5 snapshot I/O (issue #5): external checks of the files the library writes.
# IoSampleFiles (a gtest run with DFLUID_IO_SAMPLE_DIR set) writes sample files;
# IoCheckH5py opens them with h5py and checks the XDMF sidecars; IoCheckH5dump
# runs `h5dump -H` on each. Needs hdf5-tools and python3-h5py (Debian) for
# /usr/bin/python3; without h5py the python check reports itself skipped.
set(DFLUID_IO_SAMPLE_DIR ${CMAKE_CURRENT_BINARY_DIR}/io_sample)
add_test(NAME IoSampleFiles
         COMMAND dfluid_tests --gtest_filter=IoSample.WriteFilesForExternalChecks)
set_tests_properties(IoSampleFiles PROPERTIES
  ENVIRONMENT "DFLUID_IO_SAMPLE_DIR=${DFLUID_IO_SAMPLE_DIR}"
  FIXTURES_SETUP dfluid_io_sample)

if(DFLUID_SYSTEM_PYTHON)
  add_test(NAME IoCheckH5py
           COMMAND ${DFLUID_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/io_check_h5py.py
                   ${DFLUID_IO_SAMPLE_DIR})
  set_tests_properties(IoCheckH5py PROPERTIES
    FIXTURES_REQUIRED dfluid_io_sample SKIP_RETURN_CODE 77)
else()
  message(STATUS "dfluid: no python3 found; IoCheckH5py not registered")
endif()

find_program(DFLUID_H5DUMP h5dump)
if(DFLUID_H5DUMP)
  foreach(sample sample1d sample2d sample3d)
    add_test(NAME IoCheckH5dump_${sample}
             COMMAND ${DFLUID_H5DUMP} -H ${DFLUID_IO_SAMPLE_DIR}/${sample}.h5)
    set_tests_properties(IoCheckH5dump_${sample} PROPERTIES
      FIXTURES_REQUIRED dfluid_io_sample)
  endforeach()
else()
  message(STATUS "dfluid: h5dump not found (Debian: hdf5-tools); IoCheckH5dump not registered")
endif()
