# ctest of btest_add_service(): `systemd-analyze verify` passes on the unit (its ExecStart pointed
# at the built binary, its Documentation= man page looked up in the build's man directory), and
# `systemd-analyze security --offline` rates its exposure at most MAX_EXPOSURE. Works without a
# running systemd (a container): both only read unit files.
# Arguments: -DANALYZE -DUNIT -DINSTALLED_EXE -DBUILT_EXE -DMANPATH -DWORK_DIR -DMAX_EXPOSURE
cmake_minimum_required(VERSION 3.25)
get_filename_component(name ${UNIT} NAME)
file(READ ${UNIT} unit)
string(REPLACE "ExecStart=${INSTALLED_EXE} " "ExecStart=${BUILT_EXE} " local "${unit}")
if(local STREQUAL unit)
  message(FATAL_ERROR "${name}: no ExecStart=${INSTALLED_EXE}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
file(WRITE ${WORK_DIR}/${name} "${local}")
execute_process(COMMAND ${CMAKE_COMMAND} -E env MANPATH=${MANPATH} ${ANALYZE} verify --man=yes ${WORK_DIR}/${name}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "systemd-analyze verify ${name} failed (${rc}):\n${out}${err}")
endif()
message(STATUS "systemd-analyze verify ${name}: ok")

execute_process(COMMAND ${ANALYZE} security --offline=true --no-pager ${UNIT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT out MATCHES "Overall exposure level for [^:]+: ([0-9]+\\.[0-9]+)")
  message(FATAL_ERROR "systemd-analyze security ${name} gave no exposure level (${rc}):\n${out}${err}")
endif()
set(score ${CMAKE_MATCH_1})
message(STATUS "systemd-analyze security ${name}: exposure ${score}")
if(score GREATER MAX_EXPOSURE)
  message(FATAL_ERROR "${name}: exposure ${score} is above ${MAX_EXPOSURE}:\n${out}")
endif()
