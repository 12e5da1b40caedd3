# Cross-compiling for 64-bit ARM Linux with Debian's cross toolchain (g++-aarch64-linux-gnu).
# BTEST_CROSS_SYSROOT holds what the target needs beyond the toolchain's own libc/libstdc++: Botan
# unpacked from Debian's arm64 packages, and links to the host's architecture-independent headers
# (Boost, CLI11, fmt); .ci/aarch64.sh prepares it. Programs run under qemu-user when it is there.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DBTEST_CROSS_SYSROOT=$PWD/build-aarch64/sysroot -DBTEST_STATIC=ON ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_TRY_COMPILE_PLATFORM_VARIABLES BTEST_CROSS_SYSROOT)
if(NOT BTEST_CROSS_SYSROOT)
  message(FATAL_ERROR "set BTEST_CROSS_SYSROOT (see .ci/aarch64.sh)")
endif()

set(CMAKE_FIND_ROOT_PATH ${BTEST_CROSS_SYSROOT} /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Boost's own CMake files belong to the host's package; find its headers instead.
set(Boost_NO_BOOST_CMAKE ON)
set(ENV{PKG_CONFIG_LIBDIR} ${BTEST_CROSS_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${BTEST_CROSS_SYSROOT})

find_program(BTEST_QEMU_AARCH64 qemu-aarch64-static)
if(BTEST_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BTEST_QEMU_AARCH64})
endif()
