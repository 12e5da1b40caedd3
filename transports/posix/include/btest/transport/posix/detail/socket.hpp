// Sockets of the POSIX transport: non-blocking descriptors with their loop registration (a TCP
// connection with its buffers, a UDP socket of a test) and the calls that open them.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/session/detail/session_core.hpp"
#include "btest/transport/posix/address.hpp"
#include "btest/transport/posix/event_loop.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace btest::posix::detail {

class driver;

/// write_to() buffer per connection (≥ btest::min_write_buffer: whole chunks plus a STATUS).
inline constexpr std::size_t write_buffer_size = 256 * 1024;
inline constexpr std::size_t read_buffer_size = 128 * 1024;
static_assert(write_buffer_size >= min_write_buffer);

inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// The kernel's pending error of a socket (SO_ERROR), e.g. after a non-blocking connect.
inline std::error_code socket_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return last_error();
    return err ? std::error_code(err, std::system_category()) : std::error_code{};
}

inline void set_nodelay(int fd) noexcept {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

inline std::optional<socket_address> local_address(int fd) {
    socket_address a;
    a.length = sizeof a.storage;
    if (::getsockname(fd, a.data(), &a.length) != 0) return std::nullopt;
    return a;
}

/// One TCP connection: the descriptor, its watch and its buffers. Owned by the driver of the
/// session it belongs to (a JOIN moves it to another driver); closed when destroyed.
struct tcp_link {
    tcp_link(event_loop& l, int descriptor) : loop(l), fd(descriptor) {}
    tcp_link(const tcp_link&) = delete;
    tcp_link& operator=(const tcp_link&) = delete;
    ~tcp_link() {
        close();
        if (on_destroy) on_destroy();
    }

    event_loop& loop;
    int fd;
    std::function<void()> on_destroy;  ///< e.g. gives a per-IP connection count back
    watch_id watch;
    std::uint32_t interest = 0;
    std::unique_ptr<std::byte[]> rbuf{new std::byte[read_buffer_size]};
    std::unique_ptr<std::byte[]> wbuf{new std::byte[write_buffer_size]};
    std::size_t wpos = 0;          ///< wbuf[wpos, wlen) was returned by write_to() and not yet written
    std::size_t wlen = 0;
    driver* owner = nullptr;       ///< the driver whose session the connection belongs to now
    std::uint32_t index = 0;       ///< the owner session's connection index
    bool read_done = false;        ///< EOF or an error seen: no more reads
    bool write_failed = false;
    bool reported = false;         ///< on_connection_closed() was called
    bool more = false;             ///< wrote its share this round and may have more: come back when writable
    std::uint64_t received = 0;

    bool closed() const noexcept { return fd < 0; }
    bool pending() const noexcept { return wpos < wlen; }
    void close() noexcept {
        loop.unwatch(watch);
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

/// One UDP socket of a test (client: stream k at P+256+k; server: P). Shared between the server's
/// port pool and the session's driver, like the bound port it stands for.
struct udp_link {
    udp_link(event_loop& l, int descriptor) : loop(l), fd(descriptor) {}
    udp_link(const udp_link&) = delete;
    udp_link& operator=(const udp_link&) = delete;
    ~udp_link() { close(); }

    event_loop& loop;
    int fd;
    watch_id watch;
    std::uint32_t interest = 0;
    bool gso = false;  ///< UDP_SEGMENT is available and was not refused so far
    bool gro = false;  ///< UDP_GRO is on: a received buffer may hold several datagrams

    bool open() const noexcept { return fd >= 0; }
    void close() noexcept {
        loop.unwatch(watch);
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

/// A non-blocking, close-on-exec socket of `at`'s family; -1 on failure (errno set).
inline int open_socket(const socket_address& at, int type) noexcept {
    return ::socket(at.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/// How UDP test sockets reach the kernel (none of it changes what is sent or when).
struct udp_socket_options {
    std::size_t buffer_bytes = 4u << 20;  ///< SO_SNDBUF / SO_RCVBUF (the system maximum may cap it)
    bool gso = true;  ///< equal datagrams to one destination leave as one UDP_SEGMENT message
    bool gro = true;  ///< coalesced reception (UDP_GRO), split back into datagrams
};

/// Opens a UDP socket bound to `at` with large buffers, and GSO and GRO as far as the kernel
/// and `o` allow; nullptr when the bind fails.
inline std::shared_ptr<udp_link> open_udp(event_loop& loop, const socket_address& at, const udp_socket_options& o) {
    const int fd = open_socket(at, SOCK_DGRAM);
    if (fd < 0) return nullptr;
    auto link = std::make_shared<udp_link>(loop, fd);
    const int one = 1;
    if (at.is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, at.data(), at.length) != 0) return nullptr;
    const int n = static_cast<int>(std::min<std::size_t>(o.buffer_bytes, 1u << 30));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
    if (o.gso) {
        // A kernel without UDP GSO refuses the option (it would otherwise ignore the control
        // message and send a whole run as one big datagram).
        int v = 0;
        socklen_t len = sizeof v;
        link->gso = ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    }
    if (o.gro) link->gro = ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    return link;
}

} // namespace btest::posix::detail
