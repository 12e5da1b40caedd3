// Data-plane knobs shared by the Asio client and server, and the counters that show what the
// data plane did (system calls, timer wake-ups, GSO/GRO use). None of this changes the
// protocol: the kit decides what is sent and when; these only decide how it reaches the kernel.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace btest::asio {

struct data_plane_options {
    /// UDP send: consecutive equal-size datagrams to one destination leave as one
    /// UDP_SEGMENT (GSO) message where the kernel supports it; otherwise (or when a GSO send
    /// is refused, e.g. a datagram larger than the path MTU) one message per datagram.
    bool udp_gso = true;
    /// UDP receive: ask the kernel for coalesced datagrams (UDP_GRO) and split them by the
    /// segment size it reports, so every datagram is accounted on its own.
    bool udp_gro = true;
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
    std::uint64_t tcp_writes = 0;              ///< write_some() completions
    std::uint64_t tcp_reads = 0;               ///< read_some() completions with data

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
        tcp_writes, tcp_reads, count_
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
        return c;
    }

private:
    std::atomic<std::uint64_t> v_[count_] = {};
};

} // namespace detail
} // namespace btest::asio
