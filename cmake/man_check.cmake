# ctest of btest_add_man_page(): every flag that `EXE ARGS --help` mentions (option names, and
# flags named in descriptions, usage and footer) appears in the man page MAN; and where groff is
# installed, the page renders without warnings.
# Arguments: -DEXE -DARGS (|-separated) -DMAN
cmake_minimum_required(VERSION 3.25)
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${EXE} ${args} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} --help failed (${rc})")
endif()
if(NOT EXISTS ${MAN})
  message(FATAL_ERROR "${MAN} does not exist (build the man page target)")
endif()
file(READ ${MAN} man)
string(REPLACE "\\-" "-" man "${man}")   # roff's escaped hyphens
string(REGEX REPLACE "\\\\f[BIRP]" "" man "${man}")   # font changes

# Flags: "-x" or "--long-name" at the start of a word.
string(REGEX MATCHALL "(^|[ ,(\n/\\[])--?[A-Za-z0-9][A-Za-z0-9-]*" found "${help}")
set(flags "")
foreach(f IN LISTS found)
  string(REGEX REPLACE "^[ ,(\n/\\[]" "" f "${f}")
  list(APPEND flags ${f})
endforeach()
list(REMOVE_DUPLICATES flags)
list(LENGTH flags n)
if(n LESS 10)
  message(FATAL_ERROR "only ${n} flags found in ${EXE} --help: ${flags}")
endif()
set(missing "")
foreach(f IN LISTS flags)
  if(NOT man MATCHES "(^|[^A-Za-z0-9-])${f}([^A-Za-z0-9-]|$)")
    list(APPEND missing ${f})
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "in ${EXE} --help but not in ${MAN}: ${missing}")
endif()
message(STATUS "${n} flags of --help found in ${MAN}")

find_program(GROFF groff)
if(GROFF)
  execute_process(COMMAND ${GROFF} -man -ww -z -t ${MAN} RESULT_VARIABLE rc ERROR_VARIABLE warnings)
  if(NOT rc EQUAL 0 OR NOT warnings STREQUAL "")
    message(FATAL_ERROR "groff warns about ${MAN}:\n${warnings}")
  endif()
endif()
