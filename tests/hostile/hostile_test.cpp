// Hostile clients against a real `btest -s` process (PROTOCOL §12–§13): every case starts its own
// server on 127.0.0.1 with a short handshake timeout (T_hs = 2 s), attacks it over real loopback
// sockets and asserts the documented outcome (closed within a bound, refused, ignored), then
// checks that (a) legitimate TCP and UDP clients from 127.0.0.1 still complete with plausible
// numbers, (b) the server is alive, (c) its descriptors come back to the count measured after
// start-up and its RSS stays within 64 MiB of it (512 MiB under AddressSanitizer).
//
// Attackers connect from other loopback addresses (127.0.0.2 … 127.0.0.250) so that the per-IP
// limits and the login throttle do not hit the legitimate client — except where a case tests
// those limits on purpose. Attacker sockets are non-blocking; every wait has a deadline.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/auth/md5.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/hello.hpp"
#include "btest/wire/join.hpp"
#include "btest/wire/md5.hpp"
#include "btest/wire/status.hpp"
#include "loopback.hpp"
#include "test/json.hpp"

// How far the server's RSS may grow over its start-up value. Under AddressSanitizer the server
// keeps freed memory in quarantine (256 MiB by default) and maps shadow memory, so there only
// gross growth is caught; leaks are LeakSanitizer's to find there.
#if defined(__SANITIZE_ADDRESS__)
#define BTEST_HOSTILE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BTEST_HOSTILE_UNDER_ASAN 1
#endif
#endif
#ifdef BTEST_HOSTILE_UNDER_ASAN
constexpr long rss_margin_kib = 512 * 1024;
#else
constexpr long rss_margin_kib = 64 * 1024;
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

using namespace std::chrono_literals;
using loopback::process;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
using bytes_t = std::vector<std::byte>;

namespace {

constexpr auto t_hs = 2000ms;  // the servers' --handshake-timeout

ms since(steady::time_point t0) { return std::chrono::duration_cast<ms>(steady::now() - t0); }
std::string src(unsigned k) { return "127.0.0." + std::to_string(k); }
bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

bytes_t bytes(std::initializer_list<int> v) {
    bytes_t b;
    for (int x : v) b.push_back(std::byte(static_cast<unsigned char>(x)));
    return b;
}
template <std::size_t N>
bytes_t bytes(const std::array<std::byte, N>& a) { return bytes_t(a.begin(), a.end()); }
bytes_t& operator+=(bytes_t& a, const bytes_t& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const bytes_t hello = bytes(btest::wire::hello);
bool is_ok_word(const bytes_t& d) { return d.size() >= 4 && d[0] == std::byte{1} && d[3] == std::byte{0}; }

/// A COMMAND from the kit's encoder; `proto_raw`/`dir_raw` overwrite bytes 0 and 1 (to go out of range).
bytes_t command(btest::protocol p, btest::direction d, std::uint8_t conn = 0, std::uint16_t tx = 0,
                std::uint32_t remote = 0, std::uint32_t local = 0, int proto_raw = -1, int dir_raw = -1) {
    btest::wire::command c;
    c.proto = p;
    c.dir = d;
    c.conn_count = conn;
    c.tx_size = tx;
    c.remote_tx_speed = remote;
    c.local_tx_speed = local;
    auto b = bytes(btest::wire::encode_command(c));
    if (proto_raw >= 0) b[0] = std::byte(static_cast<unsigned char>(proto_raw));
    if (dir_raw >= 0) b[1] = std::byte(static_cast<unsigned char>(dir_raw));
    return b;
}
const auto tcp = btest::protocol::tcp;
const auto udp = btest::protocol::udp;
const auto tx = btest::direction::transmit;
const auto rx = btest::direction::receive;
const auto both = btest::direction::both;

/// Source addresses 127.0.0.lo … 127.0.0.hi in turn.
struct sources {
    unsigned lo, hi, next = 0;
    std::string operator()() { return src(lo + (next++ % (hi - lo + 1))); }
};

// ---- an attacking TCP connection ------------------------------------------------------------

class conn {
public:
    conn() = default;
    conn(const std::string& from, std::uint16_t port, int rcvbuf = 0) { open(from, port, 3000ms, rcvbuf); }
    conn(conn&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    conn& operator=(conn&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    conn(const conn&) = delete;
    conn& operator=(const conn&) = delete;
    ~conn() { close(); }

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    bool open(const std::string& from, std::uint16_t port, ms limit, int rcvbuf = 0) {
        close();
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return false;
        int one = 1;
        ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (rcvbuf) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, from.c_str(), &a.sin_addr);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail();
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
            if (errno != EINPROGRESS) return fail();
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return fail();
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) return fail();
        }
        return true;
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    /// Abortive close: RST instead of FIN.
    void reset() {
        if (fd_ < 0) return;
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

    /// Sends all of `b` within `limit`; false on an error or at the deadline.
    bool send(std::span<const std::byte> b, ms limit = 3000ms) {
        const auto end = steady::now() + limit;
        std::size_t off = 0;
        while (off < b.size()) {
            const ssize_t r = ::send(fd_, b.data() + off, b.size() - off, MSG_NOSIGNAL);
            if (r > 0) {
                off += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                const auto left = std::chrono::duration_cast<ms>(end - steady::now());
                if (left <= 0ms) return false;
                pollfd p{fd_, POLLOUT, 0};
                ::poll(&p, 1, static_cast<int>(left.count()) + 1);
                continue;
            }
            return false;
        }
        return true;
    }
    bool send(const bytes_t& b, ms limit = 3000ms) { return send(std::span<const std::byte>(b), limit); }
    /// Whatever the socket takes now, without waiting; false once the connection is broken.
    bool send_some(std::span<const std::byte> b) {
        const ssize_t r = ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return r >= 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }

    struct outcome {
        bytes_t data;           ///< what arrived (the first `keep` bytes)
        std::size_t total = 0;  ///< how much arrived
        bool closed = false;    ///< EOF or a reset seen
        ms after{0};            ///< when the close was seen, from the start of the call
    };

    /// Reads until `n` bytes arrived, the peer closed, or `limit` passed.
    outcome read(std::size_t n, ms limit) { return read_impl(n, limit, n); }
    /// Reads (drains, keeping the first `keep` bytes) until the peer closes or `limit` passes.
    outcome until_closed(ms limit, std::size_t keep = 4096) { return read_impl(SIZE_MAX, limit, keep); }
    /// Reads what is there now (drains up to `max`).
    outcome poll_read(std::size_t max = 1u << 20, std::size_t keep = 0) { return read_impl(max, 0ms, keep); }

private:
    bool fail() {
        close();
        return false;
    }
    outcome read_impl(std::size_t want, ms limit, std::size_t keep) {
        outcome o;
        const auto t0 = steady::now();
        const auto end = t0 + limit;
        std::vector<std::byte> buf(65536);
        while (o.total < want) {
            const ssize_t r = ::recv(fd_, buf.data(), std::min(buf.size(), want - o.total), 0);
            if (r > 0) {
                const auto n = static_cast<std::size_t>(r);
                const std::size_t take = std::min(n, keep > o.data.size() ? keep - o.data.size() : 0);
                o.data.insert(o.data.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(take));
                o.total += n;
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                o.closed = true;
                o.after = since(t0);
                break;
            }
            const auto left = std::chrono::duration_cast<ms>(end - steady::now());
            if (left <= 0ms) break;
            pollfd p{fd_, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()) + 1);
        }
        return o;
    }
    int fd_ = -1;
};

/// Connects from `from`, expects HELLO; REQUIREs both.
conn greeted(const std::string& from, std::uint16_t port, int rcvbuf = 0) {
    conn c(from, port, rcvbuf);
    REQUIRE(c.ok());
    const auto h = c.read(4, 3000ms);
    INFO("from " << from);
    REQUIRE(h.data == hello);
    return c;
}

/// A UDP socket bound to `from`.
struct udp_sock {
    int fd = -1;
    explicit udp_sock(const std::string& from) {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int big = 1 << 20;
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, from.c_str(), &a.sin_addr);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ~udp_sock() { ::close(fd); }
    void send_to(std::uint16_t port, std::size_t size, std::byte fill = std::byte{0}) {
        std::vector<std::byte> d(size, fill);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        for (int tries = 0; tries < 50; ++tries) {
            if (::sendto(fd, d.data(), d.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to) >= 0) return;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) return;  // e.g. ECONNREFUSED: fine
            std::this_thread::sleep_for(1ms);
        }
    }
};

// ---- the server under attack ----------------------------------------------------------------

std::size_t fd_count(pid_t pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
         it.increment(ec))
        ++n;
    return n;
}
long rss_kib(pid_t pid) {
    const auto s = process::slurp("/proc/" + std::to_string(pid) + "/status");
    const auto at = s.find("VmRSS:");
    return at == std::string::npos ? 0 : std::strtol(s.c_str() + at + 6, nullptr, 10);
}

class target {
public:
    /// `extra`: more server flags; `login`: what the legitimate client passes (-a/-p).
    explicit target(unsigned slot, std::vector<std::string> extra = {}, std::vector<std::string> login = {})
        : ports_(loopback::slot(slot)), login_(std::move(login)) {
        std::vector<std::string> a{"-s", "-P", std::to_string(ports_.tcp), "--listen", "127.0.0.1", "--listen6", "none",
                                   "--udp-port-start", std::to_string(ports_.udp_base), "--udp-port-end",
                                   std::to_string(ports_.udp_base + 40), "--handshake-timeout", "2"};
        a.insert(a.end(), extra.begin(), extra.end());
        proc_ = std::make_unique<process>(a);
        REQUIRE(proc_->wait_for("listening on", 5000ms));
        std::this_thread::sleep_for(200ms);
        base_fds_ = fd_count(pid());
        base_rss_ = rss_kib(pid());
        REQUIRE(base_fds_ > 0);
        REQUIRE(base_rss_ > 0);
    }
    ~target() {
        proc_->signal(SIGTERM);
        proc_->wait(5000ms);
    }
    target(const target&) = delete;
    target& operator=(const target&) = delete;

    std::uint16_t port() const { return ports_.tcp; }
    std::uint16_t udp_base() const { return ports_.udp_base; }
    pid_t pid() const { return proc_->pid(); }
    process& proc() { return *proc_; }
    bool alive() { return proc_->wait(0ms) == -1; }
    long rss_growth_kib() const { return rss_kib(pid()) - base_rss_; }

    /// (a) legitimate clients complete, (b) alive, (c) descriptors back, memory bounded.
    void check_healthy(const std::string& after) {
        INFO("after: " << after);
        REQUIRE(alive());
        legit_run(false);
        legit_run(true);
        REQUIRE(alive());
        std::size_t now = 0;
        const auto end = steady::now() + 15s;
        while ((now = fd_count(pid())) > base_fds_ && steady::now() < end) std::this_thread::sleep_for(50ms);
        INFO("server descriptors " << now << ", baseline " << base_fds_);
        CHECK(now <= base_fds_);
        const long growth = rss_growth_kib();
        INFO("server RSS grew by " << growth << " KiB");
        CHECK(growth <= rss_margin_kib);
    }

    /// One legitimate test from 127.0.0.1: TCP both, or UDP both at 50 Mbit/s, for 1 s.
    void legit_run(bool use_udp) {
        std::vector<std::string> a{"-c", "127.0.0.1", "-P", std::to_string(ports_.tcp), "-t", "-r", "-d", "1", "--json"};
        if (use_udp) a.insert(a.end(), {"-u", "-b", "50M"});
        a.insert(a.end(), login_.begin(), login_.end());
        process c(a);
        const int rc = c.wait(20000ms);
        INFO("legit " << (use_udp ? "UDP" : "TCP") << " client: exit " << rc << "\nstdout: " << c.out() << "\nstderr: " << c.err());
        REQUIRE(rc == 0);
        std::optional<test::json::value> sum;
        for (const auto& l : process::lines(c.out())) {
            auto j = test::json::parse(l);
            if (j["type"].str() == "summary") sum = j;
        }
        REQUIRE(sum);
        const auto& s = *sum;
        CHECK(s["protocol"].str() == (use_udp ? "udp" : "tcp"));
        CHECK(s["ended_by"].str() == "completed");
        CHECK(s["tx_bytes"].number() > 0);
        CHECK(s["rx_bytes"].number() > 0);
        if (use_udp) {
            // 50 Mbit/s for ~1 s: 6.25 MB each way, give or take a loaded machine.
            CHECK(s["tx_bytes"].number() > 1.5e6);
            CHECK(s["tx_bytes"].number() < 9e6);
            CHECK(s["rx_bytes"].number() > 0.5e6);
            CHECK(s["rx_bytes"].number() < 9e6);
        }
    }

private:
    loopback::ports ports_;
    std::vector<std::string> login_;
    std::unique_ptr<process> proc_;
    std::size_t base_fds_ = 0;
    long base_rss_ = 0;
};

/// The connection ends with nothing more from the server within `limit`.
#define CHECK_CLOSED_SILENTLY(c, limit)                                                              \
    do {                                                                                             \
        const auto o_ = (c).until_closed(limit);                                                     \
        CHECK(o_.closed);                                                                            \
        CHECK(o_.total == 0);                                                                        \
    } while (0)

/// Drains what the server sent on a running TCP test; false when the server closed.
bool drain(conn& c, std::size_t& received) {
    const auto o = c.poll_read();
    received += o.total;
    return !o.closed;
}

} // namespace

// ---- the cases --------------------------------------------------------------------------------

TEST_CASE("hostile: connect and say nothing: closed after the handshake timeout", "[hostile]") {
    target t(135);
    std::vector<conn> cs;
    const auto t0 = steady::now();
    for (unsigned k = 0; k < 10; ++k) {
        cs.emplace_back(src(2 + k), t.port());
        REQUIRE(cs.back().ok());
    }
    // Half of them read the HELLO, half never read anything.
    for (std::size_t i = 0; i < cs.size(); ++i) {
        if (i % 2 == 0) CHECK(cs[i].read(4, 3000ms).data == hello);
        const auto o = cs[i].until_closed(6000ms);
        CHECK(o.closed);
        CHECK(o.total == (i % 2 == 0 ? 0u : 4u));  // (the unread HELLO is still queued)
        const auto at = since(t0);
        CHECK(at >= t_hs - 300ms);
        CHECK(at <= t_hs + 2500ms);
    }
    t.check_healthy("silent clients");
}

TEST_CASE("hostile: slowloris (one byte per second or per 300 ms) is closed by the handshake timeout", "[hostile]") {
    target t(136);
    struct slow {
        conn c;
        ms every;
        steady::time_point start, next;
        std::size_t sent = 0;
        std::optional<ms> closed_after;
    };
    const auto cmd = command(tcp, rx);
    std::vector<slow> ss;
    for (unsigned k = 0; k < 6; ++k) {
        slow s{greeted(src(20 + k), t.port()), k % 2 ? 300ms : 1000ms, steady::now(), steady::now(), 0, std::nullopt};
        ss.push_back(std::move(s));
    }
    const auto end = steady::now() + 8s;
    for (bool open = true; open && steady::now() < end;) {
        open = false;
        for (auto& s : ss) {
            if (s.closed_after) continue;
            open = true;
            const auto o = s.c.poll_read();
            if (o.closed) {
                s.closed_after = since(s.start);
                continue;
            }
            if (steady::now() >= s.next && s.sent < cmd.size()) {
                if (!s.c.send_some(std::span<const std::byte>(&cmd[s.sent], 1))) {
                    s.closed_after = since(s.start);
                    continue;
                }
                ++s.sent;
                s.next += s.every;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    for (const auto& s : ss) {
        INFO("one byte per " << s.every.count() << " ms, " << s.sent << " bytes sent");
        REQUIRE(s.closed_after);
        CHECK(*s.closed_after >= t_hs - 300ms);
        CHECK(*s.closed_after <= t_hs + 2500ms);
        CHECK(s.sent < cmd.size());
    }
    t.check_healthy("slowloris");
}

TEST_CASE("hostile: 10000 connections opened and dropped", "[hostile]") {
    target t(137);
    const auto t0 = steady::now();
    std::size_t opened = 0, failed = 0, n = 0;
    while (opened + failed < 10000 && since(t0) < 25s) {
        std::vector<conn> batch;
        for (int i = 0; i < 40; ++i, ++n) {
            conn c;
            if (c.open(src(2 + static_cast<unsigned>(n % 249)), t.port(), 2000ms)) batch.push_back(std::move(c));
            else ++failed;
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (i % 2) batch[i].reset();
            else batch[i].close();
        }
        opened += batch.size();
    }
    const auto took = since(t0);
    INFO(opened << " opened, " << failed << " failed in " << took.count() << " ms");
    CHECK(opened + failed == 10000);
    CHECK(failed <= 100);
    CHECK(took < 25s);
    t.check_healthy("10,000 connections");
}

TEST_CASE("hostile: a backlog full of dropped connections does not crowd out a real client", "[hostile]") {
    // The server is frozen while up to 2,000 connections are opened and dropped (as many as its
    // accept queue takes: net.core.somaxconn), so all of them wait in the queue ahead of the
    // legitimate client: dead peers must not take the handshake slots (max sessions + 64 = 164)
    // the real one needs.
    target t(109);
    REQUIRE(::kill(t.pid(), SIGSTOP) == 0);
    std::size_t opened = 0;
    for (unsigned n = 0; n < 2000; ++n) {
        conn c;
        if (!c.open(src(2 + n % 249), t.port(), 2000ms)) break;
        if (n % 2) c.reset();
        else c.close();
        ++opened;
    }
    REQUIRE(::kill(t.pid(), SIGCONT) == 0);
    INFO(opened << " dropped connections queued");
    CHECK(opened >= 500);  // well past the 164 handshake slots
    t.check_healthy("a backlog of dropped connections");
}

TEST_CASE("hostile: garbage after HELLO is closed at once without a reply", "[hostile]") {
    target t(138);
    sources from{2, 250};
    std::mt19937 rng(1);
    // 16 bytes that are not a COMMAND (proto ≥ 2), the HELLO echoed back, all 0xff.
    for (int i = 0; i < 50; ++i) {
        auto c = greeted(from(), t.port());
        bytes_t g(16);
        for (auto& b : g) b = std::byte(static_cast<unsigned char>(rng()));
        if (i == 0) g.assign(16, std::byte{0xff});
        if (i == 1) {  // the HELLO echoed back, four times
            g.clear();
            for (int k = 0; k < 4; ++k) g += hello;
        }
        if (std::to_integer<int>(g[0]) < 2) g[0] = std::byte{0x42};
        REQUIRE(c.send(g));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        CHECK(o.total == 0);
        CHECK(o.after < 1500ms);
    }
    // A megabyte of garbage: the server closes after the first 16 bytes (our send fails), fast.
    {
        auto c = greeted(from(), t.port());
        bytes_t g(1 << 20);
        for (auto& b : g) b = std::byte(static_cast<unsigned char>(rng() | 0x80));
        c.send(g, 3000ms);  // may fail: the server closed
        const auto o = c.until_closed(2000ms);
        CHECK(o.closed);
        CHECK(o.total == 0);
    }
    t.check_healthy("garbage after HELLO");
}

TEST_CASE("hostile: COMMAND fields at their extremes are answered or closed and never crash the server", "[hostile]") {
    target t(139);
    sources from{2, 250};
    // Invalid: proto 2..255, direction 0 and 4..255 → closed with no reply word (§13.3).
    std::size_t invalid = 0;
    auto expect_closed = [&](const bytes_t& cmd) {
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(cmd));
        const auto o = c.until_closed(1500ms);
        INFO("command bytes 0-1: " << std::to_integer<int>(cmd[0]) << " " << std::to_integer<int>(cmd[1]));
        CHECK(o.closed);
        CHECK(o.total == 0);
        ++invalid;
    };
    for (int p = 2; p <= 255; ++p) expect_closed(command(tcp, rx, 0, 0, 0, 0, p));
    for (int d : {0, 4, 5, 0x7f, 0x80, 0xff}) expect_closed(command(tcp, rx, 0, 0, 0, 0, -1, d));
    for (int d = 6; d <= 254; ++d) expect_closed(command(udp, rx, 0, 0, 0, 0, -1, d));
    CHECK(invalid == 254 + 6 + 249);

    // Valid: sizes 0/1/27/28/65535, conn_count 255, speeds 0 and 0xFFFFFFFF → an OK word (and a
    // bound port for UDP), or (a UDP block of 255 ports cannot fit) a close without a word.
    auto expect_answer = [&](const bytes_t& cmd, bool may_refuse) {
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(cmd));
        const bool is_udp = cmd[0] == std::byte{0};
        const auto o = c.read(is_udp ? 6 : 4, 2000ms);
        INFO("proto " << (is_udp ? "udp" : "tcp") << " dir " << std::to_integer<int>(cmd[1]) << " conn "
                      << std::to_integer<int>(cmd[3]) << " tx_size " << (std::to_integer<int>(cmd[4]) | std::to_integer<int>(cmd[5]) << 8));
        if (may_refuse && o.total == 0) {
            CHECK(o.closed);
        } else {
            REQUIRE(is_ok_word(o.data));
            if (cmd[0] == std::byte{1} && cmd[3] == std::byte{255}) CHECK(std::to_integer<int>(o.data[1]) >= 2);  // a token
            if (is_udp) {
                REQUIRE(o.data.size() == 6);
                const int port = std::to_integer<int>(o.data[4]) << 8 | std::to_integer<int>(o.data[5]);
                CHECK(port >= t.udp_base());
                CHECK(port <= t.udp_base() + 40);
            }
        }
        c.reset();
    };
    for (auto p : {tcp, udp})
        for (auto d : {tx, rx, both})
            for (std::uint16_t size : {0, 1, 27, 28, 65535}) expect_answer(command(p, d, 0, size), false);
    for (auto d : {tx, rx, both}) {
        expect_answer(command(tcp, d, 255), false);
        expect_answer(command(udp, d, 255), true);
        for (std::uint32_t speed : {0u, 1u, 0xFFFFFFFFu}) {
            expect_answer(command(tcp, d, 0, 0, speed, speed), false);
            expect_answer(command(udp, d, 0, 1500, speed, speed), false);
        }
    }
    expect_answer(command(udp, both, 255, 65535, 0xFFFFFFFFu, 0xFFFFFFFFu), true);
    expect_answer(command(tcp, both, 255, 1, 0xFFFFFFFFu, 0xFFFFFFFFu), false);
    t.check_healthy("COMMAND extremes");
}

TEST_CASE("hostile: a truncated COMMAND then EOF (or RST) is closed at once", "[hostile]") {
    target t(140);
    sources from{2, 250};
    const auto cmd = command(tcp, rx);
    for (std::size_t n = 0; n < 16; ++n) {
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(std::span<const std::byte>(cmd.data(), n)));
        c.shutdown_write();
        const auto o = c.until_closed(1500ms);
        INFO(n << " bytes then EOF");
        CHECK(o.closed);
        CHECK(o.total == 0);
        CHECK(o.after < 1000ms);
    }
    for (std::size_t n = 1; n < 16; n += 3) {
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(std::span<const std::byte>(cmd.data(), n)));
        c.reset();
    }
    t.check_healthy("truncated COMMAND");
}

namespace {
/// Up to the MD5 challenge: returns the connection and the challenge.
std::pair<conn, std::array<std::byte, 16>> md5_challenge(const std::string& from, std::uint16_t port) {
    auto c = greeted(from, port);
    REQUIRE(c.send(command(tcp, tx)));
    const auto o = c.read(20, 3000ms);
    REQUIRE(o.data.size() == 20);
    REQUIRE(bytes_t(o.data.begin(), o.data.begin() + 4) == bytes({2, 0, 0, 0}));
    std::array<std::byte, 16> ch{};
    std::copy(o.data.begin() + 4, o.data.end(), ch.begin());
    return {std::move(c), ch};
}
bytes_t md5_reply(const std::string& user, const std::string& password, const std::array<std::byte, 16>& ch) {
    const auto r = btest::auth::md5_response(password, std::span<const std::byte, 16>(ch));
    return bytes(btest::wire::encode_md5_reply(std::span<const std::byte, 16>(r), user));
}
} // namespace

TEST_CASE("hostile: MD5 replies of 47 and 49 bytes", "[hostile]") {
    target t(141, {"-a", "admin", "-p", "secret", "--auth", "md5"}, {"-a", "admin", "-p", "secret"});
    sources from{2, 250};
    {  // 47 bytes: the server waits for the 48th until T_hs, then closes without a word.
        auto [c, ch] = md5_challenge(from(), t.port());
        auto r = md5_reply("admin", "secret", ch);
        r.pop_back();
        REQUIRE(c.send(r));
        const auto o = c.until_closed(t_hs + 3000ms);
        CHECK(o.closed);
        CHECK(o.total == 0);
        CHECK(o.after >= t_hs - 300ms);
    }
    {  // 47 bytes then EOF: closed at once, no word.
        auto [c, ch] = md5_challenge(from(), t.port());
        auto r = md5_reply("admin", "secret", ch);
        r.pop_back();
        REQUIRE(c.send(r));
        c.shutdown_write();
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        CHECK(o.total == 0);
    }
    {  // 49 bytes of garbage: the first 48 are a wrong reply → 00 00 00 00, closed.
        auto [c, ch] = md5_challenge(from(), t.port());
        bytes_t r(49, std::byte{0x5a});
        REQUIRE(c.send(r));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        CHECK(o.data == bytes({0, 0, 0, 0}));
    }
    {  // 49 bytes: a right reply and one byte more (test data, §4: surplus stays queued) → OK.
        auto [c, ch] = md5_challenge(from(), t.port());
        auto r = md5_reply("admin", "secret", ch);
        r.push_back(std::byte{0});
        REQUIRE(c.send(r));
        const auto o = c.read(4, 2000ms);
        CHECK(o.data == bytes({1, 0, 0, 0}));
        c.reset();
    }
    {  // Right password, wrong user → 00 00 00 00.
        auto [c, ch] = md5_challenge(from(), t.port());
        REQUIRE(c.send(md5_reply("root", "secret", ch)));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        CHECK(o.data == bytes({0, 0, 0, 0}));
    }
    t.check_healthy("MD5 47/49 bytes");
}

TEST_CASE("hostile: wrong usernames in bulk and the login throttle (10 failures block an address but not 127.0.0.1)", "[hostile]") {
    target t(142, {"-a", "admin", "-p", "secret", "--auth", "md5", "-v"}, {"-a", "admin", "-p", "secret"});
    // 200 wrong names from 40 addresses (5 each: under the throttle): each gets 00 00 00 00.
    sources bulk{100, 139};
    for (int i = 0; i < 200; ++i) {
        auto [c, ch] = md5_challenge(bulk(), t.port());
        REQUIRE(c.send(md5_reply("user" + std::to_string(i), "secret", ch)));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        CHECK(o.data == bytes({0, 0, 0, 0}));
    }
    // 10 failures from 127.0.0.7 within a minute: its next connection is closed before HELLO.
    for (int i = 0; i < 10; ++i) {
        auto [c, ch] = md5_challenge(src(7), t.port());
        REQUIRE(c.send(md5_reply("admin", "guess" + std::to_string(i), ch)));
        const auto o = c.until_closed(1500ms);
        CHECK(o.data == bytes({0, 0, 0, 0}));
    }
    {
        conn c(src(7), t.port());
        REQUIRE(c.ok());
        CHECK_CLOSED_SILENTLY(c, 1500ms);
    }
    // Another address is not affected.
    { auto c = greeted(src(8), t.port()); }
    CHECK(t.proc().wait_for("refused: too many failed logins from this address", 3000ms, true));
    t.check_healthy("wrong usernames / login throttle");
    {  // still refused (the block lasts a minute)
        conn c(src(7), t.port());
        REQUIRE(c.ok());
        CHECK_CLOSED_SILENTLY(c, 1500ms);
    }
}

TEST_CASE("hostile: EC-SRP5 frames of length 0/1/33/255 and invalid points fail without MSG2", "[hostile]") {
    target t(143, {"-a", "admin", "-p", "secret", "--auth", "ecsrp5"}, {"-a", "admin", "-p", "secret"});
    sources from{2, 250};
    auto msg1 = [](const std::string& user, const bytes_t& x, int parity) {
        bytes_t p;
        for (char ch : user) p.push_back(std::byte(static_cast<unsigned char>(ch)));
        p.push_back(std::byte{0});
        p += x;
        p.push_back(std::byte(static_cast<unsigned char>(parity)));
        bytes_t f{std::byte(static_cast<unsigned char>(p.size()))};
        return f += p;
    };
    bytes_t u_ff(32, std::byte{0xff}), u_zero(32, std::byte{0}), u_p(32, std::byte{0xff}), u_nine(32, std::byte{0});
    u_p[0] = std::byte{0x7f};
    u_p[31] = std::byte{0xed};  // p = 2^255 − 19: u must be < p
    u_nine[31] = std::byte{9};
    std::vector<std::pair<std::string, bytes_t>> frames{
        {"len 0", bytes({0})},
        {"len 1", bytes({1, 0x41})},
        {"len 33", [] { bytes_t f{std::byte{33}, std::byte{'a'}, std::byte{0}}; f.resize(34, std::byte{1}); return f; }()},
        {"len 33, empty name", [] { bytes_t f{std::byte{33}, std::byte{0}}; f.resize(34, std::byte{1}); return f; }()},
        {"len 255, no NUL", [] { bytes_t f{std::byte{255}}; f.resize(256, std::byte{'A'}); return f; }()},
        {"len 255, 221-byte name, u = 2^256-1", msg1(std::string(221, 'a'), u_ff, 0)},
        {"u = 2^256-1", msg1("admin", u_ff, 0)},
        {"u = p", msg1("admin", u_p, 1)},
        {"u = 0 (order 2)", msg1("admin", u_zero, 0)},
        {"parity 2", msg1("admin", u_nine, 2)},
        {"parity 0xff", msg1("admin", u_nine, 0xff)},
        {"unknown user, u = p", msg1("nobody", u_p, 0)},
    };
    for (const auto& [what, frame] : frames) {
        INFO(what);
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(command(tcp, rx)));
        REQUIRE(c.read(4, 2000ms).data == bytes({3, 0, 0, 0}));
        REQUIRE(c.send(frame));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        // A protocol error closes; a failed check answers 00 00 00 00 first. Never MSG2 or OK.
        CHECK((o.data.empty() || o.data == bytes({0, 0, 0, 0})));
    }
    {  // An incomplete frame (len 100, 10 bytes): closed by T_hs, nothing sent.
        auto c = greeted(from(), t.port());
        REQUIRE(c.send(command(tcp, rx)));
        REQUIRE(c.read(4, 2000ms).data == bytes({3, 0, 0, 0}));
        bytes_t f{std::byte{100}};
        f.resize(11, std::byte{'x'});
        REQUIRE(c.send(f));
        const auto o = c.until_closed(t_hs + 3000ms);
        CHECK(o.closed);
        CHECK(o.total == 0);
        CHECK(o.after >= t_hs - 300ms);
    }
    t.check_healthy("EC-SRP5 frames");
}

TEST_CASE("hostile: JOIN floods with random tokens never attach and pending tests per address are capped", "[hostile]") {
    target t(144);
    // One pending multi-connection test (2 connections) from 127.0.0.20.
    auto primary = greeted(src(20), t.port());
    const auto t0 = steady::now();
    REQUIRE(primary.send(command(tcp, rx, 2)));
    const auto okw = primary.read(4, 2000ms);
    REQUIRE(is_ok_word(okw.data));
    const auto hi = std::to_integer<unsigned>(okw.data[1]), lo = std::to_integer<unsigned>(okw.data[2]);
    REQUIRE(hi >= 2);
    const auto token = static_cast<std::uint16_t>(hi << 8 | lo);

    std::mt19937 rng(7);
    sources others{30, 229};
    std::size_t attached = 0;
    for (int i = 0; i < 1050; ++i) {
        std::uint16_t tok = token;
        if (i < 1000) {
            do tok = static_cast<std::uint16_t>(rng()); while (tok == token || (tok >> 8) < 2);
        }
        // Random tokens from the pending test's own address (1 in 10) and from others; the right
        // token (the last 50) only from other addresses.
        const auto from = (i < 1000 && i % 10 == 0) ? src(20) : others();
        auto c = greeted(from, t.port());
        REQUIRE(c.send(bytes(btest::wire::encode_join(tok))));
        const auto o = c.until_closed(1500ms);
        CHECK(o.closed);
        if (o.total) ++attached;
    }
    CHECK(attached == 0);
    // The pending test is intact: the right JOIN from the right address attaches at once.
    REQUIRE(since(t0) < 9s);  // (T_join is 10 s)
    {
        auto j = greeted(src(20), t.port());
        REQUIRE(j.send(bytes(btest::wire::encode_join(token))));
        const auto o = j.read(4, 2000ms);
        CHECK(o.data == bytes({1, static_cast<int>(hi), static_cast<int>(lo), 0}));
        j.reset();
    }
    primary.reset();
    // Pending tests from one address are capped (4): the 5th and 6th get no OK word.
    {
        std::vector<conn> ps;
        int ok = 0, refused = 0;
        for (int i = 0; i < 6; ++i) {
            auto c = greeted(src(21), t.port());
            REQUIRE(c.send(command(tcp, both, 3)));
            const auto o = c.read(4, 2000ms);
            if (is_ok_word(o.data)) ++ok;
            else if (o.total == 0 && o.closed) ++refused;
            ps.push_back(std::move(c));
        }
        CHECK(ok == 4);
        CHECK(refused == 2);
        for (auto& c : ps) c.reset();
    }
    t.check_healthy("JOIN flood");
}

TEST_CASE("hostile: STATUS floods and malformed STATUS during a running test", "[hostile]") {
    target t(145);
    {  // TCP both: records of any kind in the client's stream are test data (§9.4): the test runs on.
        auto c = greeted(src(40), t.port());
        REQUIRE(c.send(command(tcp, both)));
        REQUIRE(c.read(4, 2000ms).data == bytes({1, 0, 0, 0}));
        std::mt19937 rng(3);
        bytes_t flood;
        for (std::uint32_t i = 1; i <= 2000; ++i) {
            flood += bytes(btest::wire::encode_status({static_cast<std::uint8_t>(rng() % 256), i, static_cast<std::uint32_t>(rng())}));
            if (i % 7 == 0) flood += bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
            if (i % 11 == 0) flood += bytes({0x07, 0xff, 0xff});  // a torn record
            if (i % 13 == 0) flood += bytes_t(12, std::byte{0});
        }
        std::size_t received = 0, sent = 0;
        bool open = true;
        const auto end = steady::now() + 2500ms;
        while (open && steady::now() < end) {
            const ssize_t r = ::send(c.fd(), flood.data(), flood.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0) sent += static_cast<std::size_t>(r);
            else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) open = false;
            open = open && drain(c, received);
            std::this_thread::sleep_for(1ms);
        }
        INFO("sent " << sent << ", received " << received);
        CHECK(open);
        CHECK(sent > 100000);
        const auto before = received;
        const auto more_end = steady::now() + 1500ms;
        while (open && received == before && steady::now() < more_end) {
            open = drain(c, received);
            std::this_thread::sleep_for(5ms);
        }
        CHECK(open);
        CHECK(received > before);  // the server still sends
        c.reset();
    }
    {  // UDP test: its control stream carries only STATUS (§13.8): a malformed one ends the test.
        auto c = greeted(src(41), t.port());
        REQUIRE(c.send(command(udp, tx, 0, 1500)));
        REQUIRE(is_ok_word(c.read(6, 2000ms).data));
        for (std::uint32_t i = 1; i <= 500; ++i) REQUIRE(c.send(bytes(btest::wire::encode_status({50, i, 1000}))));
        REQUIRE(c.send(bytes({0x42, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})));
        const auto o = c.until_closed(2000ms);
        CHECK(o.closed);
    }
    t.check_healthy("STATUS flood");
}

TEST_CASE("hostile: UDP junk at a test's port (other addresses and short datagrams dropped, oversize accepted)", "[hostile]") {
    target t(146);
    auto c = greeted(src(50), t.port());
    REQUIRE(c.send(command(udp, tx, 0, 1500)));  // the client sends, the server counts what it receives
    const auto o = c.read(6, 2000ms);
    REQUIRE(is_ok_word(o.data));
    const auto port = static_cast<std::uint16_t>(std::to_integer<int>(o.data[4]) << 8 | std::to_integer<int>(o.data[5]));
    // The server's STATUS records tell what it accepted per interval.
    bytes_t stream;
    std::vector<std::uint32_t> counts;
    std::uint32_t seq = 0;
    auto pump_status = [&](ms for_how_long, const std::function<void()>& each) {
        const auto end = steady::now() + for_how_long;
        auto next_status = steady::now();
        while (steady::now() < end) {
            each();
            if (steady::now() >= next_status) {
                REQUIRE(c.send(bytes(btest::wire::encode_status({10, ++seq, 0}))));
                next_status += 1000ms;
            }
            auto r = c.read(1 << 16, 20ms);
            REQUIRE_FALSE(r.closed);
            stream += r.data;
            while (stream.size() >= 12) {
                const auto s = btest::wire::decode_status(std::span<const std::byte>(stream.data(), 12));
                REQUIRE(s);
                counts.push_back(s->bytes);
                stream.erase(stream.begin(), stream.begin() + 12);
            }
        }
    };
    udp_sock other("127.0.0.51"), peer("127.0.0.50"), far_away("127.0.0.200");
    // Phase 1: datagrams from other addresses (any size) and from the peer's address but shorter
    // than 4 bytes: all dropped, the server receives nothing.
    pump_status(2600ms, [&] {
        for (int i = 0; i < 20; ++i) {
            other.send_to(port, 1472);
            far_away.send_to(port, static_cast<std::size_t>(i) * 100, std::byte{0xab});
            peer.send_to(port, static_cast<std::size_t>(i % 4));
        }
        other.send_to(port, 65507);
        // and the client's own data port, as a stray peer would
        other.send_to(static_cast<std::uint16_t>(port + 256), 100);
    });
    INFO("STATUS byte counts seen: " << counts.size());
    REQUIRE(counts.size() >= 2);
    for (auto n : counts) CHECK(n == 0);
    // Phase 2: oversize (65507-byte) datagrams from the peer's address are accepted.
    const auto phase1 = counts.size();
    pump_status(2200ms, [&] {
        for (int i = 0; i < 3; ++i) peer.send_to(port, 65507);
        peer.send_to(port, 1472);
    });
    REQUIRE(counts.size() > phase1);
    std::uint64_t accepted = 0;
    for (std::size_t i = phase1; i < counts.size(); ++i) accepted += counts[i];
    CHECK(accepted > 65507);
    c.reset();
    t.check_healthy("UDP junk");
}

TEST_CASE("hostile: half-close and RST mid-test end the session and free everything", "[hostile]") {
    target t(147);
    auto run_for = [](conn& c, ms how_long) {
        std::size_t received = 0;
        const auto end = steady::now() + how_long;
        bool open = true;
        const bytes_t chunk(16384, std::byte{0});
        while (open && steady::now() < end) {
            c.send_some(chunk);
            open = drain(c, received);
            std::this_thread::sleep_for(2ms);
        }
        CHECK(open);
        return received;
    };
    {  // Half-close (FIN) mid-test counts as the end (§12.1): the server closes.
        auto c = greeted(src(60), t.port());
        REQUIRE(c.send(command(tcp, both)));
        REQUIRE(c.read(4, 2000ms).data == bytes({1, 0, 0, 0}));
        CHECK(run_for(c, 1000ms) > 0);
        c.shutdown_write();
        const auto o = c.until_closed(3000ms, 0);
        CHECK(o.closed);
        CHECK(o.after < 2000ms);
    }
    {  // RST mid-test, TCP and UDP.
        auto c = greeted(src(61), t.port());
        REQUIRE(c.send(command(tcp, both)));
        REQUIRE(c.read(4, 2000ms).data == bytes({1, 0, 0, 0}));
        CHECK(run_for(c, 1000ms) > 0);
        c.reset();
        auto u = greeted(src(62), t.port());
        REQUIRE(u.send(command(udp, both, 0, 1500)));
        REQUIRE(is_ok_word(u.read(6, 2000ms).data));
        run_for(u, 1000ms);
        u.reset();
    }
    {  // RST in the middle of the handshake, and right after the COMMAND of a multi-connection test.
        auto c = greeted(src(63), t.port());
        REQUIRE(c.send(std::span<const std::byte>(command(tcp, rx).data(), 5)));
        c.reset();
        auto m = greeted(src(64), t.port());
        REQUIRE(m.send(command(tcp, rx, 4)));
        REQUIRE(is_ok_word(m.read(4, 2000ms).data));
        auto j = greeted(src(64), t.port());
        m.reset();
        j.reset();
    }
    t.check_healthy("half-close / RST");
}

TEST_CASE("hostile: a client that never reads during a TCP receive test does not grow the server", "[hostile]") {
    target t(148);
    std::vector<conn> cs;
    for (unsigned k = 0; k < 4; ++k) {
        auto c = greeted(src(70 + k), t.port(), 4096);
        REQUIRE(c.send(command(tcp, rx, 0, k % 2 ? 65535 : 0)));
        REQUIRE(c.read(4, 2000ms).data == bytes({1, 0, 0, 0}));
        cs.push_back(std::move(c));
    }
    long worst = 0;
    const auto end = steady::now() + 4s;
    while (steady::now() < end) {
        worst = std::max(worst, t.rss_growth_kib());
        REQUIRE(t.alive());
        std::this_thread::sleep_for(250ms);
    }
    INFO("RSS growth while the clients sleep: " << worst << " KiB");
    CHECK(worst <= rss_margin_kib);
    // Meanwhile a legitimate client is served.
    t.legit_run(false);
    for (auto& c : cs) c.reset();
    t.check_healthy("clients that never read");
}

TEST_CASE("hostile: max sessions exhausted refuses the next test, then recovers", "[hostile]") {
    target t(149, {"--max-sessions", "2"});
    std::vector<conn> full;
    for (unsigned k = 0; k < 2; ++k) {
        auto c = greeted(src(80 + k), t.port());
        REQUIRE(c.send(command(tcp, rx, 0, 1000, 8'000'000)));  // 8 Mbit/s, read by nobody
        REQUIRE(c.read(4, 2000ms).data == bytes({1, 0, 0, 0}));
        full.push_back(std::move(c));
    }
    {  // the next connection (another address) is closed before HELLO
        conn c(src(82), t.port());
        REQUIRE(c.ok());
        CHECK_CLOSED_SILENTLY(c, 1500ms);
    }
    {  // and the legitimate client is refused too
        process c({"-c", "127.0.0.1", "-P", std::to_string(t.port()), "-d", "1"});
        CHECK(c.wait(10000ms) == 2);
        CHECK(contains(c.err(), "max sessions reached"));
    }
    CHECK(contains(t.proc().out(), "refused: max sessions reached"));
    for (auto& c : full) c.reset();
    t.check_healthy("max sessions");
}

TEST_CASE("hostile: the 21st connection from one address is refused while other addresses are not", "[hostile]") {
    target t(150, {"--handshake-timeout", "6", "-v"});
    std::vector<conn> cs;
    for (int i = 0; i < 20; ++i) cs.push_back(greeted(src(90), t.port()));
    {
        conn c(src(90), t.port());
        REQUIRE(c.ok());
        CHECK_CLOSED_SILENTLY(c, 1500ms);
    }
    { auto other = greeted(src(91), t.port()); }
    // One of the 20 leaves: its slot comes back.
    cs.back().close();
    cs.pop_back();
    bool again = false;
    for (auto end = steady::now() + 3s; !again && steady::now() < end;) {
        conn c(src(90), t.port());
        REQUIRE(c.ok());
        again = c.read(4, 1000ms).data == hello;
        if (!again) std::this_thread::sleep_for(50ms);
    }
    CHECK(again);
    CHECK(t.proc().wait_for("refused: too many connections from this address", 3000ms, true));
    cs.clear();
    t.check_healthy("per-address connection limit");
}
