// Sockets as every transport sees them: the kernel's sockaddr forms translated to and from the
// kit's plain values (btest/core/address.hpp), numeric parsing and name resolution, and the
// calls that open and tune non-blocking descriptors. Linux (UDP GSO/GRO where the kernel has
// them, with a fallback).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/core/address.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace btest::transport {

enum class family_preference : std::uint8_t { any, v4, v6 };

/// An IPv4 or IPv6 socket address as the kernel takes and returns it (IPv6 scope id included).
struct socket_address {
    sockaddr_storage storage{};
    socklen_t length = 0;

    /// `e` as a sockaddr; `scope_id` is the interface index of a link-local IPv6 address.
    static socket_address from(const endpoint& e, std::uint32_t scope_id = 0) {
        socket_address s;
        if (e.address.family == ip_family::v4) {
            sockaddr_in in{};
            in.sin_family = AF_INET;
            in.sin_port = htons(e.port);
            std::memcpy(&in.sin_addr, e.address.bytes.data(), 4);
            std::memcpy(&s.storage, &in, sizeof in);
            s.length = sizeof in;
        } else {
            sockaddr_in6 in6{};
            in6.sin6_family = AF_INET6;
            in6.sin6_port = htons(e.port);
            std::memcpy(&in6.sin6_addr, e.address.bytes.data(), 16);
            in6.sin6_scope_id = scope_id;
            std::memcpy(&s.storage, &in6, sizeof in6);
            s.length = sizeof in6;
        }
        return s;
    }
    static socket_address from(const sockaddr* sa, socklen_t len) {
        socket_address s;
        s.length = std::min<socklen_t>(len, sizeof s.storage);
        std::memcpy(&s.storage, sa, s.length);
        return s;
    }

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
    int family() const noexcept { return storage.ss_family; }
    bool is_v6() const noexcept { return storage.ss_family == AF_INET6; }

    std::uint16_t port() const noexcept {
        if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
        if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
        return 0;
    }
    /// The same address with another port (the IPv6 scope id is kept).
    socket_address with_port(std::uint16_t p) const noexcept {
        socket_address s = *this;
        if (s.storage.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&s.storage)->sin_port = htons(p);
        if (s.storage.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&s.storage)->sin6_port = htons(p);
        return s;
    }
};

/// A kernel sockaddr as the kit's endpoint (scope id dropped: the kit compares addresses only).
inline endpoint to_kit(const sockaddr_storage& sa) {
    endpoint e;
    if (sa.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
        std::memcpy(e.address.bytes.data(), &in->sin_addr, 4);
        e.port = ntohs(in->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
        e.address.family = ip_family::v6;
        std::memcpy(e.address.bytes.data(), &in6->sin6_addr, 16);
        e.port = ntohs(in6->sin6_port);
    }
    return e;
}
inline endpoint to_kit(const socket_address& s) { return to_kit(s.storage); }

/// "1.2.3.4:2000" / "[::1]:2000" for logs.
inline std::string to_string(const endpoint& e) {
    if (e.address.family == ip_family::v6) return "[" + e.address.to_string() + "]:" + std::to_string(e.port);
    return e.address.to_string() + ":" + std::to_string(e.port);
}

/// A numeric IPv4 or IPv6 address ("192.0.2.1", "::1", "[::1]"); nullopt if it is neither.
inline std::optional<ip_address> parse_address(std::string_view text) {
    std::string s(text);
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    ip_address a;
    if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.family = ip_family::v6;
        return a;
    }
    return std::nullopt;
}

/// getaddrinfo()'s EAI_* codes as std::error_code values.
inline const std::error_category& resolver_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "resolver"; }
        std::string message(int code) const override { return ::gai_strerror(code); }
    };
    static const category c;
    return c;
}

/// The addresses of `host` (a name, "::1", "[::1]" or "fe80::1%eth0") for TCP port `port`, in
/// the resolver's order. Empty with `ec` set when resolution fails. Blocks while it resolves.
inline std::vector<socket_address> resolve(std::string host, std::uint16_t port, std::error_code& ec) {
    ec.clear();
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) {
        ec = rc == EAI_SYSTEM ? std::error_code(errno, std::system_category()) : std::error_code(rc, resolver_category());
        return {};
    }
    std::vector<socket_address> out;
    for (auto* p = res; p; p = p->ai_next)
        if (p->ai_family == AF_INET || p->ai_family == AF_INET6)
            out.push_back(socket_address::from(p->ai_addr, p->ai_addrlen));
    ::freeaddrinfo(res);
    return out;
}

// ---- descriptors -----------------------------------------------------------------------------

inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// An owned descriptor, closed when destroyed.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

/// A non-blocking, close-on-exec socket of `at`'s family; invalid on failure (errno set).
inline unique_fd open_socket(const socket_address& at, int type) noexcept {
    return unique_fd(::socket(at.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

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
inline std::optional<socket_address> peer_address(int fd) {
    socket_address a;
    a.length = sizeof a.storage;
    if (::getpeername(fd, a.data(), &a.length) != 0) return std::nullopt;
    return a;
}

/// Sets SO_SNDBUF/SO_RCVBUF to `bytes`; where the system maximum caps it and the process may
/// exceed it (CAP_NET_ADMIN), forces it.
inline void set_socket_buffers(int fd, std::size_t bytes) noexcept {
    const int want = static_cast<int>(std::min<std::size_t>(bytes, 1u << 30));
    auto one = [&](int opt, int force) {
        (void)::setsockopt(fd, SOL_SOCKET, opt, &want, sizeof want);
        int got = 0;
        socklen_t len = sizeof got;
        // The kernel reports twice the value it accepted (bookkeeping overhead included).
        if (::getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0 && got / 2 < want)
            (void)::setsockopt(fd, SOL_SOCKET, force, &want, sizeof want);
    };
    one(SO_SNDBUF, SO_SNDBUFFORCE);
    one(SO_RCVBUF, SO_RCVBUFFORCE);
}

/// A listening TCP socket on `at` (IPv6 only for an IPv6 address, SO_REUSEADDR); invalid with
/// `ec` set on failure.
inline unique_fd listen_tcp(const socket_address& at, std::error_code& ec) {
    auto fd = open_socket(at, SOCK_STREAM);
    const int one = 1;
    if (fd && at.is_v6()) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!fd || ::bind(fd.get(), at.data(), at.length) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
        ec = last_error();
        return {};
    }
    return fd;
}

/// A UDP test socket: bound, with large buffers, and GSO/GRO as far as the kernel allows.
struct udp_socket {
    unique_fd fd;
    bool gso = false;  ///< UDP_SEGMENT is available (and, later, not refused so far)
    bool gro = false;  ///< UDP_GRO is on: a received buffer may hold several datagrams
};

/// Opens a UDP socket bound to `at` with `buffer` bytes of socket buffer, asking for GSO and
/// GRO where `gso`/`gro`; an invalid fd when the bind fails.
inline udp_socket open_udp(const socket_address& at, std::size_t buffer, bool gso, bool gro) {
    udp_socket s;
    auto fd = open_socket(at, SOCK_DGRAM);
    if (!fd) return s;
    const int one = 1;
    if (at.is_v6()) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), at.data(), at.length) != 0) return s;
    set_socket_buffers(fd.get(), buffer);
    if (gso) {
        // A kernel without UDP GSO refuses the option (it would otherwise ignore the control
        // message and send a whole run as one big datagram).
        int v = 0;
        socklen_t len = sizeof v;
        s.gso = ::getsockopt(fd.get(), SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    }
    if (gro) s.gro = ::setsockopt(fd.get(), SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    s.fd = std::move(fd);
    return s;
}

} // namespace btest::transport
