# Installs the kit and every transport target that exists as the `btestkit` package:
#   find_package(btestkit 0.1 REQUIRED)          → btest::kit, btest::memory, btest::transport,
#                                                  btest::asio, btest::posix
#   pkg-config --cflags --libs btestkit          → the kit (headers + Botan)
# (component "dev"; the apps, man pages, units and configuration are component "btest":
# apps/CMakeLists.txt, cmake/man.cmake, packaging/CMakeLists.txt)
include(CMakePackageConfigHelpers)

set(BTEST_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/btestkit)

set_target_properties(btest_kit PROPERTIES EXPORT_NAME kit)
set_target_properties(btest_memory PROPERTIES EXPORT_NAME memory)
set_target_properties(btest_transport PROPERTIES EXPORT_NAME transport)
set(btest_export_targets btest_kit btest_memory btest_transport)
install(DIRECTORY include/btest DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(DIRECTORY transports/memory/include/btest DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(DIRECTORY transports/common/include/btest DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
foreach(t asio posix)
  if(TARGET btest_${t})
    set_target_properties(btest_${t} PROPERTIES EXPORT_NAME ${t})
    list(APPEND btest_export_targets btest_${t})
    install(DIRECTORY transports/${t}/include/btest DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
    set(BTESTKIT_HAS_${t} ON)
  else()
    set(BTESTKIT_HAS_${t} OFF)
  endif()
endforeach()

install(TARGETS ${btest_export_targets} EXPORT btestkitTargets COMPONENT dev)
install(EXPORT btestkitTargets NAMESPACE btest:: DESTINATION ${BTEST_INSTALL_CMAKEDIR} COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/btestkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/btestkitConfig.cmake INSTALL_DESTINATION ${BTEST_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/btestkitConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/btestkitConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/btestkitConfigVersion.cmake
  DESTINATION ${BTEST_INSTALL_CMAKEDIR} COMPONENT dev)

configure_file(${CMAKE_CURRENT_LIST_DIR}/btestkit.pc.in ${CMAKE_CURRENT_BINARY_DIR}/btestkit.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/btestkit.pc DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig COMPONENT dev)
