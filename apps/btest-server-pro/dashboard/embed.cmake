# Writes the dashboard's files into a C++ header as raw string literals, so that the binary
# serves them without reading anything from disk (no install path to get wrong, no build step
# beyond this). Run by the build: cmake -DOUT=header -DFILES="name=path|..." -P embed.cmake
set(text "// Generated from apps/btest-server-pro/dashboard by embed.cmake: do not edit.\n#pragma once\n#include <string_view>\nnamespace pro_serve::assets {\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(entry IN LISTS FILES)
  string(REPLACE "=" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 path)
  file(READ "${path}" body)
  string(FIND "${body}" ")btest_asset\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw string delimiter")
  endif()
  string(APPEND text "inline constexpr std::string_view ${name} = R\"btest_asset(${body})btest_asset\";\n")
endforeach()
string(APPEND text "} // namespace pro_serve::assets\n")
file(WRITE "${OUT}.tmp" "${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
