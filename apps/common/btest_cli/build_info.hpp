// `--version` of the btest apps: version, git revision, build type, the crypto library and the
// data-plane features compiled in, with whether the running kernel offers them.
#pragma once

#include <string>
#include <string_view>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <botan/version.h>
#include <fmt/format.h>

#include "btest/version.hpp"
#include "btest_build_info.h"  // generated at build time: BTEST_GIT_REVISION, BTEST_BUILD_TYPE, ...

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace btest_cli {

namespace build_detail {

/// Asks the kernel the way the transports do: GSO if UDP_SEGMENT can be read, GRO if UDP_GRO can
/// be set on a UDP socket.
inline std::string_view kernel_has(int option) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return "unknown";
    int v = 1;
    socklen_t len = sizeof v;
    const bool ok = option == UDP_SEGMENT ? ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0
                                          : ::setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0;
    ::close(fd);
    return ok ? "yes" : "no";
}

} // namespace build_detail

/// The --version text of `app` ("btest", "btest-server-pro").
inline std::string version_text(std::string_view app) {
    return fmt::format("{} {} (btestkit)\n"
                       "revision:   {}\n"
                       "build:      {}, {}, {} {}, {}\n"
                       "crypto:     Botan {}.{}.{}\n"
                       "data plane: UDP GSO (kernel: {}), UDP GRO (kernel: {}), sendmmsg/recvmmsg; "
                       "--no-gso / --no-gro turn them off\n"
                       "            TCP zeros sent by reference to this host (sendfile), payload dropped unread "
                       "(MSG_TRUNC); --no-zerocopy / --no-discard turn them off\n",
                       app, btest::version_string, BTEST_GIT_REVISION, BTEST_BUILD_TYPE,
                       BTEST_STATIC_BUILD ? "static" : "dynamic",
#if defined(__clang__)
                       "clang", __clang_version__,
#else
                       "g++", __VERSION__,
#endif
                       BTEST_TARGET_ARCH, BOTAN_VERSION_MAJOR, BOTAN_VERSION_MINOR, BOTAN_VERSION_PATCH,
                       build_detail::kernel_has(UDP_SEGMENT), build_detail::kernel_has(UDP_GRO));
}

} // namespace btest_cli
