// The TCP zero source (detail/tcp_io.hpp) on real loopback sockets: sendfile() from the file of
// zeros delivers zeros, and a send to a peer that reset the connection fails with an error —
// never with SIGPIPE, which sendfile() (unlike send(MSG_NOSIGNAL)) would raise and which kills
// an embedder that did not ignore it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/transport/detail/tcp_io.hpp"
#include "btest/transport/socket.hpp"

namespace {

using btest::transport::unique_fd;
namespace detail = btest::transport::detail;

/// A connected pair on 127.0.0.1: {client, accepted}.
std::pair<unique_fd, unique_fd> tcp_pair() {
    unique_fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(l);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(l.get(), 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    unique_fd s(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(s);
    return {std::move(c), std::move(s)};
}

/// SIGPIPE at its default action (the process dies of it) while this lives.
struct sigpipe_default {
    void (*old)(int) = std::signal(SIGPIPE, SIG_DFL);
    ~sigpipe_default() { std::signal(SIGPIPE, old); }
};

bool sigpipe_pending() {
    sigset_t p;
    sigemptyset(&p);
    ::sigpending(&p);
    return sigismember(&p, SIGPIPE) == 1;
}

} // namespace

TEST_CASE("transport: zeros sent by reference arrive as zeros") {
    auto [c, s] = tcp_pair();
    const ssize_t n = detail::send_zeros_by_reference(c.get(), 100'000);
    REQUIRE(n > 0);  // a loopback socket buffer takes some of it at once
    std::vector<std::byte> got(static_cast<std::size_t>(n), std::byte{0x55});
    std::size_t at = 0;
    while (at < got.size()) {
        const ssize_t r = ::recv(s.get(), got.data() + at, got.size() - at, 0);
        REQUIRE(r > 0);
        at += static_cast<std::size_t>(r);
    }
    CHECK(std::all_of(got.begin(), got.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("transport: a send by reference to a reset peer fails and raises no SIGPIPE") {
    sigpipe_default guard;
    auto [c, s] = tcp_pair();
    linger hard{1, 0};
    REQUIRE(::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
    s.reset();  // RST
    ::usleep(50'000);
    int last = 0;
    for (int i = 0; i < 4 && last != EPIPE; ++i) {  // ECONNRESET first, EPIPE (the SIGPIPE case) after
        const ssize_t n = detail::send_zeros_by_reference(c.get(), 65536);
        REQUIRE(n < 0);
        last = errno;
    }
    CHECK(last == EPIPE);    // the call that would have raised SIGPIPE was made, and we are alive
    CHECK_FALSE(sigpipe_pending());  // and it was taken back, not left for the thread
}

namespace {
sockaddr_storage v4(const char* a) {
    sockaddr_storage s{};
    auto& in = reinterpret_cast<sockaddr_in&>(s);
    in.sin_family = AF_INET;
    REQUIRE(::inet_pton(AF_INET, a, &in.sin_addr) == 1);
    return s;
}
sockaddr_storage v6(const char* a) {
    sockaddr_storage s{};
    auto& in = reinterpret_cast<sockaddr_in6&>(s);
    in.sin6_family = AF_INET6;
    REQUIRE(::inet_pton(AF_INET6, a, &in.sin6_addr) == 1);
    return s;
}
} // namespace

TEST_CASE("transport: zeros go by reference only to a peer on this host unless asked") {
    // A loopback peer, or our own address at the other end, is this host; anything else is not.
    CHECK(detail::is_local_pair(v4("127.0.0.1"), v4("127.0.0.1")));
    CHECK(detail::is_local_pair(v4("127.0.0.1"), v4("127.3.2.1")));
    CHECK(detail::is_local_pair(v4("192.0.2.7"), v4("192.0.2.7")));
    CHECK_FALSE(detail::is_local_pair(v4("192.0.2.7"), v4("192.0.2.8")));
    CHECK_FALSE(detail::is_local_pair(v4("198.18.0.2"), v4("198.18.0.1")));
    CHECK_FALSE(detail::is_local_pair(v4("128.0.0.1"), v4("126.255.255.255")));
    CHECK(detail::is_local_pair(v6("::1"), v6("::1")));
    CHECK(detail::is_local_pair(v6("::ffff:192.0.2.1"), v6("::ffff:127.0.0.1")));
    CHECK(detail::is_local_pair(v6("2001:db8::1"), v6("2001:db8::1")));
    CHECK_FALSE(detail::is_local_pair(v6("2001:db8::1"), v6("2001:db8::2")));
    CHECK_FALSE(detail::is_local_pair(v6("::ffff:192.0.2.1"), v6("::ffff:192.0.2.2")));
    CHECK_FALSE(detail::is_local_pair(v4("192.0.2.7"), v6("::ffff:192.0.2.7")));  // families differ
    sockaddr_storage unix_addr{};
    unix_addr.ss_family = AF_UNIX;
    CHECK_FALSE(detail::is_local_pair(unix_addr, unix_addr));

    auto [c, s] = tcp_pair();  // both ends on 127.0.0.1
    CHECK(detail::peer_is_local(c.get()));
    CHECK(detail::peer_is_local(s.get()));
    CHECK_FALSE(detail::peer_is_local(-1));
}
