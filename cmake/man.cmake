# Man pages: a hand-written roff template per app whose OPTIONS section is generated from the
# app's CLI11 declarations (`APP [ARGS...] --help-man` prints it), so the page cannot drift from
# the flags. Generation uses the app itself and cmake; no other tool.
#
#   btest_add_man_page(btest SECTION 1 TEMPLATE apps/btest/btest.1.in)
#   btest_add_man_page(btest-server-pro SECTION 8 TEMPLATE .../btest-server-pro.8.in ARGS serve)
#
# The template's @OPTIONS@ line becomes the generated section and @VERSION@ the project version.
# Output: <build>/man/man<SECTION>/<app>.<SECTION> (a MANPATH directory: `man -M build/man btest`),
# installed into share/man (component "btest"), and, with tests on, a ctest
# "man: every flag of <app> --help is in <app>(<SECTION>)".
set(BTEST_MAN_DIR ${PROJECT_BINARY_DIR}/man)

function(btest_add_man_page app)
  cmake_parse_arguments(M "" "SECTION;TEMPLATE" "ARGS" ${ARGN})
  if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
    message(STATUS "${app}(${M_SECTION}): not generated (cross-compiling without an emulator)")
    return()
  endif()
  set(out ${BTEST_MAN_DIR}/man${M_SECTION}/${app}.${M_SECTION})
  string(REPLACE ";" "|" args "${M_ARGS}")
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} "-DEXE=$<TARGET_FILE:${app}>" "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}"
      "-DARGS=${args}" -DTEMPLATE=${M_TEMPLATE} -DOUT=${out} -DVERSION=${PROJECT_VERSION}
      -P ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
    DEPENDS ${app} ${M_TEMPLATE} ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
    COMMENT "Generating ${app}(${M_SECTION})" VERBATIM)
  add_custom_target(${app}_man ALL DEPENDS ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${M_SECTION} COMPONENT btest)
  if(BTEST_BUILD_TESTS)
    add_test(NAME "man: every flag of ${app} --help is in ${app}(${M_SECTION})"
      COMMAND ${CMAKE_COMMAND} "-DEXE=$<TARGET_FILE:${app}>" "-DARGS=${args}" -DMAN=${out}
        -P ${PROJECT_SOURCE_DIR}/cmake/man_check.cmake)
  endif()
endfunction()
