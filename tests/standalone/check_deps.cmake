# Runs the preprocessor on every kit header and fails if any dependency is a Boost header or a
# transport header. Invoked by ctest with -DCXX, -DINCLUDE_DIR, -DBOTAN_INCLUDE, -DHEADER_LIST.
file(STRINGS ${HEADER_LIST} HEADERS)
set(bad "")
foreach(h IN LISTS HEADERS)
  execute_process(
    COMMAND ${CXX} -std=c++20 -x c++ -M -I${INCLUDE_DIR} -I${BOTAN_INCLUDE} ${INCLUDE_DIR}/${h}
    OUTPUT_VARIABLE deps ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "preprocessing ${h} failed:\n${err}")
  endif()
  if(deps MATCHES "/boost/" OR deps MATCHES "btest/transport/")
    list(APPEND bad ${h})
  endif()
endforeach()
list(LENGTH HEADERS n)
if(n EQUAL 0)
  message(FATAL_ERROR "no headers given")
endif()
if(bad)
  message(FATAL_ERROR "kit headers depending on Boost or a transport: ${bad}")
endif()
message(STATUS "${n} kit headers checked: no Boost, no transport")
