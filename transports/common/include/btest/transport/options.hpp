// What every transport's server and client are configured with and what they tell their app:
// one set of options and one observer signature for the Asio and the POSIX transport (and any
// other reactor adapter). Addresses are the kit's values (btest/core/address.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "btest/core/address.hpp"
#include "btest/core/time.hpp"
#include "btest/server/address_filter.hpp"
#include "btest/server/join_registry.hpp"
#include "btest/server/limits.hpp"
#include "btest/server/policy.hpp"
#include "btest/server/port_blocks.hpp"
#include "btest/session/budget.hpp"
#include "btest/session/client_session.hpp"
#include "btest/session/config.hpp"
#include "btest/session/server_session.hpp"
#include "btest/session/stats.hpp"
#include "btest/transport/socket.hpp"
#include "btest/wire/command.hpp"

namespace btest::transport {

/// How the data plane reaches the kernel. None of it changes the protocol: the kit decides
/// what is sent and when; these only decide how it gets there.
struct data_plane_options {
    /// UDP send: consecutive equal-size datagrams to one destination leave as one UDP_SEGMENT
    /// (GSO) message where the kernel supports it; otherwise (or when a GSO send is refused,
    /// e.g. a datagram larger than the path MTU) one message per datagram.
    bool udp_gso = true;
    /// UDP receive: ask the kernel for coalesced datagrams (UDP_GRO) and split them by the
    /// segment size it reports, so every datagram is accounted on its own.
    bool udp_gro = true;
    /// SO_SNDBUF/SO_RCVBUF of UDP test sockets (forced past the system maximum where the
    /// process may).
    std::size_t udp_socket_buffer = 4u << 20;
    /// TCP send: whole zero-filled chunks (session::write_parts) leave by sendfile() from a
    /// memory file of zeros made once per process, which the kernel sends by reference instead
    /// of copying from user memory; where that is refused, send() from a block of zeros. Only
    /// towards a peer on this host (detail::peer_is_local) unless tcp_zerocopy_remote.
    bool tcp_zerocopy = true;
    /// tcp_zerocopy towards peers on other hosts too. Off by default: over a veth pair (the
    /// stand-in for a NIC path measured here) sendfile lost to copying (benchmarks/loopback.sh).
    bool tcp_zerocopy_remote = false;
    /// TCP receive: chunk payload the session does not need to see (session::plan_read) is
    /// dropped in the kernel with recv(MSG_TRUNC) instead of being copied out.
    bool tcp_discard = true;
    /// SO_SNDBUF/SO_RCVBUF of TCP connections; 0 leaves the kernel's autotuning alone.
    std::size_t tcp_socket_buffer = 0;
    /// A session's timer is never armed closer than this to now: a paced sender wakes once per
    /// batch and sends everything that fell due since (the kit allows a deadline to be
    /// honoured late). 0: wake at every deadline.
    std::chrono::microseconds timer_granularity{500};
    /// The session's udp.burst_max (BURST_MAX of PROTOCOL §11) is raised to at least this, so
    /// that a wake-up delayed by the granularity or by a busy machine still sends its whole
    /// backlog instead of dropping it by the drift clamp. 0: use the session's value as is.
    std::uint32_t min_udp_burst = 2048;
    /// Called with every UDP test socket after it is bound and configured (DSCP marks, a
    /// device binding, ...). Empty: nothing.
    std::function<void(int fd)> on_udp_socket;
};

/// What the data plane did since the client/server was made (monotonic counters).
struct io_counters {
    std::uint64_t timer_wakeups = 0;           ///< session timer expiries handled
    std::uint64_t udp_send_calls = 0;          ///< sendmmsg() calls that sent something
    std::uint64_t udp_send_messages = 0;       ///< messages sent (a GSO message counts once)
    std::uint64_t udp_gso_messages = 0;        ///< of which carried several datagrams
    std::uint64_t udp_datagrams_sent = 0;
    std::uint64_t udp_gso_fallbacks = 0;       ///< sockets that fell back from GSO after a refusal
    std::uint64_t udp_recv_calls = 0;          ///< recvmmsg() calls that returned datagrams
    std::uint64_t udp_recv_messages = 0;       ///< messages received (a GRO message counts once)
    std::uint64_t udp_gro_messages = 0;        ///< of which were coalesced (split by segment size)
    std::uint64_t udp_datagrams_received = 0;  ///< datagrams fed to the session after splitting
    std::uint64_t tcp_writes = 0;              ///< buffers written out in full
    std::uint64_t tcp_reads = 0;               ///< reads that returned data
    std::uint64_t tcp_bytes_copied = 0;        ///< TCP bytes sent with send() (copied from user memory)
    std::uint64_t tcp_bytes_zerocopy = 0;      ///< TCP bytes sent by reference (sendfile of zeros)
    std::uint64_t tcp_zerocopy_fallbacks = 0;  ///< times sendfile was refused: copies from then on
    std::uint64_t tcp_discards = 0;            ///< recv(MSG_TRUNC) calls that dropped data
    std::uint64_t tcp_bytes_discarded = 0;     ///< TCP bytes dropped unseen (counted, never copied)

    io_counters& operator+=(const io_counters& o) noexcept {
        timer_wakeups += o.timer_wakeups;
        udp_send_calls += o.udp_send_calls;
        udp_send_messages += o.udp_send_messages;
        udp_gso_messages += o.udp_gso_messages;
        udp_datagrams_sent += o.udp_datagrams_sent;
        udp_gso_fallbacks += o.udp_gso_fallbacks;
        udp_recv_calls += o.udp_recv_calls;
        udp_recv_messages += o.udp_recv_messages;
        udp_gro_messages += o.udp_gro_messages;
        udp_datagrams_received += o.udp_datagrams_received;
        tcp_writes += o.tcp_writes;
        tcp_reads += o.tcp_reads;
        tcp_bytes_copied += o.tcp_bytes_copied;
        tcp_bytes_zerocopy += o.tcp_bytes_zerocopy;
        tcp_zerocopy_fallbacks += o.tcp_zerocopy_fallbacks;
        tcp_discards += o.tcp_discards;
        tcp_bytes_discarded += o.tcp_bytes_discarded;
        return *this;
    }
};

namespace detail {

/// io_counters written by one io thread and readable from any: each field has a single
/// writer, so an update is a relaxed load and store (no locked instruction on the hot path).
class shared_counters {
public:
    enum field : std::size_t {
        timer_wakeups, udp_send_calls, udp_send_messages, udp_gso_messages, udp_datagrams_sent,
        udp_gso_fallbacks, udp_recv_calls, udp_recv_messages, udp_gro_messages, udp_datagrams_received,
        tcp_writes, tcp_reads, tcp_bytes_copied, tcp_bytes_zerocopy, tcp_zerocopy_fallbacks, tcp_discards,
        tcp_bytes_discarded, count_
    };
    void add(field f, std::uint64_t n = 1) noexcept {
        auto& a = v_[f];
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    io_counters snapshot() const noexcept {
        auto g = [&](field f) { return v_[f].load(std::memory_order_relaxed); };
        io_counters c;
        c.timer_wakeups = g(timer_wakeups);
        c.udp_send_calls = g(udp_send_calls);
        c.udp_send_messages = g(udp_send_messages);
        c.udp_gso_messages = g(udp_gso_messages);
        c.udp_datagrams_sent = g(udp_datagrams_sent);
        c.udp_gso_fallbacks = g(udp_gso_fallbacks);
        c.udp_recv_calls = g(udp_recv_calls);
        c.udp_recv_messages = g(udp_recv_messages);
        c.udp_gro_messages = g(udp_gro_messages);
        c.udp_datagrams_received = g(udp_datagrams_received);
        c.tcp_writes = g(tcp_writes);
        c.tcp_reads = g(tcp_reads);
        c.tcp_bytes_copied = g(tcp_bytes_copied);
        c.tcp_bytes_zerocopy = g(tcp_bytes_zerocopy);
        c.tcp_zerocopy_fallbacks = g(tcp_zerocopy_fallbacks);
        c.tcp_discards = g(tcp_discards);
        c.tcp_bytes_discarded = g(tcp_bytes_discarded);
        return c;
    }

private:
    std::atomic<std::uint64_t> v_[count_] = {};
};

} // namespace detail

// ---- the server ------------------------------------------------------------------------------

/// What an admission hook decides for one test.
struct admission_decision {
    bool admit = true;                   ///< false: the test is refused with `refusal`
    byte_budget budget{};                ///< the test's budget (nothing limited: none)
    std::uint64_t refill_below = 0;      ///< ask for more below this many bytes (0: never)
    budget_end end = budget_end::quota_exhausted;  ///< how the test ends if the budget runs out
    std::error_code refusal = make_error_code(errc::quota_exhausted);
};

/// A handle on one test for its admission hook: what the hook decides reaches the test on its
/// own io thread. Copyable; every member may be called from any thread, at any time — on a
/// test that is over, nothing happens. Call admit() once, in answer to admission_hook::admit().
class test_control {
public:
    test_control() = default;
    explicit test_control(std::function<void(std::function<void(server_session&)>)> on_test) : on_test_(std::move(on_test)) {}

    /// The answer to admit(): the test starts (with its budget) or is refused.
    void admit(const admission_decision& a) const {
        run([a](server_session& s) {
            if (a.admit) s.admit(clock::now(), a.budget, a.refill_below, a.end);
            else s.refuse(clock::now(), a.refusal);
        });
    }
    /// More budget (the answer to refill(), or any time); `if_exhausted`: how the test ends
    /// should this not be enough. An empty `more` says there is no more.
    void add_budget(const byte_budget& more, budget_end if_exhausted = budget_end::quota_exhausted) const {
        run([more, if_exhausted](server_session& s) { s.add_budget(clock::now(), more, if_exhausted); });
    }
    /// Ends the test now, with `why` (e.g. quota_unavailable when its lease is lost).
    void end(end_reason why) const {
        run([why](server_session& s) { s.stop(clock::now(), why); });
    }

private:
    void run(std::function<void(server_session&)> f) const {
        if (on_test_) on_test_(std::move(f));
    }
    std::function<void(std::function<void(server_session&)>)> on_test_;
};

/// An authenticated test asks to start (server_config::ask_admission is set for the hook).
struct admission_query {
    std::uint64_t test_id = 0;
    endpoint peer;
    std::string user;                    ///< empty without authentication
    wire::command command;
};

/// A public server's quotas: decides whether each test may start and with what byte budget,
/// and tops budgets up. Called on the test's io thread, one call at a time per test; it must
/// not block: answer later through the test_control, from any thread. Must outlive the
/// server, and answer nothing after the server is destroyed.
class admission_hook {
public:
    virtual ~admission_hook() = default;
    /// Answer with ctl.admit(); keep `ctl` to act on the test later (end it, add budget).
    virtual void admit(const admission_query& q, test_control ctl) = 0;
    /// The test's budget runs low: `left` is what remains, `so_far` what it moved. Answer with
    /// ctl.add_budget() (an empty budget: no more).
    virtual void refill(std::uint64_t test_id, const byte_budget& left, const test_summary& so_far, test_control ctl) {
        (void)test_id;
        (void)left;
        (void)so_far;
        ctl.add_budget({});
    }
};

struct server_options {
    /// IPv4 listen address; nullopt: no IPv4.
    std::optional<ip_address> listen_v4 = ip_address::v4(0, 0, 0, 0);
    /// IPv6 listen address; nullopt: no IPv6.
    std::optional<ip_address> listen_v6 = ip_address::v6({});
    /// Interface index for a link-local listen_v6 (0: none).
    std::uint32_t listen_v6_scope_id = 0;
    /// When false, an IPv6 listener that cannot be opened (no IPv6 on the host) is skipped.
    bool require_v6 = false;
    std::uint16_t port = 2000;
    /// Tests at once (§12.4); beyond it a connection is closed instead of HELLO (or after it,
    /// for a COMMAND on a connection let in as a possible JOIN).
    std::size_t max_sessions = 100;
    port_block_allocator::limits udp_ports{};
    /// Limits of each io thread's join registry (pending multi-connection tests, §7/§13.10).
    join_registry::limits joins{};
    /// Live TCP connections from one source IP (every connection counts, JOINs included, until
    /// its socket closes); beyond it a connection is closed before HELLO. 0: unlimited.
    std::size_t max_connections_per_ip = 20;
    /// Failed authentications from one source IP within `window` before that IP is refused
    /// (closed before HELLO) for `block`. max_failures 0: off.
    auth_throttle::limits auth_failures{};
    /// Which peers may connect (allow/deny lists); others are closed before HELLO.
    address_filter addresses{};
    /// Timeouts (T_hs, T_join, T_idle, T_max: session.limits), auth method, caps.
    server_config session{};
    bool trace_control = false;       ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;           ///< /proc/stat once per second into the STATUS cpu byte
    /// io threads sessions are spread over by client IP (a test's JOINs follow it); 1: only
    /// the reactor given to the server, no thread of its own. 0 counts as 1.
    std::size_t threads = 1;
    data_plane_options data_plane{};  ///< GSO/GRO, buffers, timer granularity
    /// Quotas: asked before each test starts (and for budget refills); nullptr: every test is
    /// admitted without a budget.
    admission_hook* admission = nullptr;
};

/// A connection the server accepted, as the observer sees it.
struct connection_view {
    std::uint64_t id;                 ///< increasing per accepted connection (a test keeps its first's)
    endpoint peer;
};

/// A running or finished test as the observer sees it.
struct server_test_view : connection_view {
    const server_session& session;
};

/// What the server tells its app. Called on one of the server's io threads, one call at a
/// time, never from inside the kit.
class server_observer {
public:
    virtual ~server_observer() = default;
    virtual void on_listening(const endpoint& at) { (void)at; }
    /// A listener could not be opened (and was optional).
    virtual void on_listen_skipped(const endpoint& at, const std::error_code& ec) { (void)at; (void)ec; }
    /// A connection was closed by a server limit (to_string(why) says which).
    virtual void on_refused(const endpoint& peer, refusal why) { (void)peer; (void)why; }
    /// A connection was closed before it became a test: an invalid first message
    /// (invalid_command), T_hs (handshake_timeout) or the peer leaving (peer_closed).
    virtual void on_dropped(const connection_view& c, const std::error_code& why) { (void)c; (void)why; }
    /// Every event of every test.
    virtual void on_event(const server_test_view& t, const event& ev) { (void)t; (void)ev; }
    /// -vv: bytes of the control conversation (everything before the test starts; during it,
    /// writes and reads of STATUS size).
    virtual void on_control(const connection_view& c, std::uint32_t conn, bool sent, std::span<const std::byte> b) {
        (void)c; (void)conn; (void)sent; (void)b;
    }
};

// ---- the client ------------------------------------------------------------------------------

struct client_options {
    std::string host;                  ///< name or address ("::1", "[::1]" and "router.lan" all work)
    std::uint16_t port = 2000;
    family_preference family = family_preference::any;
    client_config session{};
    std::chrono::milliseconds connect_timeout{10'000};
    /// Local address to connect from (and bind the UDP sockets on); nullopt: the system's
    /// choice. Only candidates of the same family are tried.
    std::optional<ip_address> local_address;
    bool trace_control = false;        ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;            ///< /proc/stat once per second into the STATUS cpu byte
    data_plane_options data_plane{};   ///< GSO/GRO, buffers, timer granularity
};

/// What the client tells its app. Called on the reactor's thread, never from inside the kit.
class client_observer {
public:
    virtual ~client_observer() = default;
    /// The control connection is up; the session starts.
    virtual void on_connected(const endpoint& server) { (void)server; }
    /// Every session event (interval reports, notices, the end of the test, ...).
    virtual void on_event(const client_session& s, const event& ev) { (void)s; (void)ev; }
    /// -vv: bytes of the control conversation.
    virtual void on_control(std::uint32_t conn, bool sent, std::span<const std::byte> b) { (void)conn; (void)sent; (void)b; }
    /// The client is done: either the connection never came up (`connect_error` set, no
    /// session) or the session is over (its summary() holds the result). Sockets are closed.
    virtual void on_finished(const client_session* s, const std::error_code& connect_error,
                             const std::string& connect_detail) {
        (void)s; (void)connect_error; (void)connect_detail;
    }
};

} // namespace btest::transport
