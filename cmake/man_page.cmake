# Build step of btest_add_man_page(): TEMPLATE with @OPTIONS@ replaced by `EXE ARGS --help-man`.
# Arguments: -DEXE -DEMULATOR -DARGS (|-separated) -DTEMPLATE -DOUT -DVERSION
cmake_minimum_required(VERSION 3.25)
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${EMULATOR} ${EXE} ${args} --help-man
                OUTPUT_VARIABLE options RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR options STREQUAL "")
  message(FATAL_ERROR "${EXE} ${args} --help-man failed (${rc}): ${err}")
endif()
file(READ ${TEMPLATE} page)
string(REPLACE "@OPTIONS@\n" "${options}" page "${page}")
string(REPLACE "@VERSION@" "${VERSION}" page "${page}")
if(page MATCHES "@[A-Z_]+@")
  message(FATAL_ERROR "${TEMPLATE}: unknown placeholder ${CMAKE_MATCH_0}")
endif()
get_filename_component(dir ${OUT} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
file(WRITE ${OUT} "${page}")
