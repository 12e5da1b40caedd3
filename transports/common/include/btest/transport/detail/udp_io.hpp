// The UDP data plane of every transport (DESIGN "Data plane"): datagrams are taken from the
// session in batches into one arena and leave with sendmmsg(), runs of equal datagrams to one
// destination as one UDP GSO message; reception is recvmmsg() with UDP GRO, each coalesced
// buffer split by the segment size the kernel reports so that every datagram (with its own
// sequence number) is fed on its own. No protocol here: sizes, pacing, accounting and
// filtering are the kit's.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <range/v3/view/chunk.hpp>

#include "btest/session/session.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/socket.hpp"

namespace btest::transport::detail {

/// UDP send: messages per sendmmsg() (a message is one datagram or one GSO run).
inline constexpr std::size_t udp_batch = 64;
/// UDP GSO: datagrams per message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels) and
/// payload bytes per message (an IPv4 datagram's payload limit).
inline constexpr std::size_t gso_max_segments = 64;
inline constexpr std::size_t gso_max_bytes = 65507;
/// UDP send arena next_datagram() writes into (a batch of small datagrams, or a few big ones).
inline constexpr std::size_t udp_arena_size = 512 * 1024;
/// UDP: datagrams taken from the kit per round (bounds one round's work).
inline constexpr std::size_t udp_round_datagrams = 2048;
/// UDP: rounds of (batch, send) per wake-up before yielding to other handlers.
inline constexpr int udp_send_rounds = 8;
/// UDP receive: messages per recvmmsg(), each slot large enough for a GRO buffer (≤ 64 KiB).
inline constexpr std::size_t udp_recv_batch = 32;
inline constexpr std::size_t udp_recv_slot = 65536;
inline constexpr int udp_recv_rounds = 8;

/// What a send or receive round ended on.
enum class udp_outcome : std::uint8_t {
    idle,     ///< nothing more due / nothing more to read
    blocked,  ///< a socket would block: wait until it is writable
    more,     ///< stopped after its share of rounds with work left: continue after other handlers
};

/// Sends what a session has due, in batches. One per driver; the arena is allocated at the
/// first UDP send (TCP sessions never pay for it).
class udp_sender {
public:
    /// Sends through `sockets` (a datagram's `stream` picks the socket when there are several,
    /// else the first); `dest(d)` is the destination of datagram `d`. `blocked` receives the
    /// index of the socket to wait for.
    template <class Dest>
    udp_outcome send(session& s, time_point now, std::span<udp_socket> sockets, Dest&& dest, shared_counters& counters,
                     std::size_t& blocked) {
        if (!runs_.empty() && !flush(sockets, counters, blocked)) return udp_outcome::blocked;
        if (!arena_) {
            arena_.reset(new std::byte[udp_arena_size]);
            runs_.reserve(udp_batch + 1);
        }
        for (int round = 0; round < udp_send_rounds; ++round) {
            const bool more = take(s, now, sockets.size(), dest);
            if (!runs_.empty() && !flush(sockets, counters, blocked)) return udp_outcome::blocked;
            if (!more) return udp_outcome::idle;
        }
        return udp_outcome::more;  // an unpaced sender always has more
    }

    /// Datagrams taken from the session but not sent yet (a blocked socket).
    bool pending() const noexcept { return !runs_.empty(); }

private:
    /// A run of datagrams that are contiguous in the arena, equal in size and go out of one
    /// socket to one destination: one GSO message, or one message each without GSO.
    struct send_run {
        std::size_t offset;
        std::uint32_t size;     ///< payload bytes per datagram
        std::uint32_t count;
        std::uint32_t sent;     ///< datagrams of the run already sent (or dropped)
        std::uint32_t socket;
        std::uint16_t port;
        socket_address dest;
    };

    /// Takes what the session has due into the arena as runs. False when the session had no
    /// more due (true: stopped by the arena, the run table or the round limit).
    template <class Dest>
    bool take(session& s, time_point now, std::size_t sockets, Dest& dest) {
        std::size_t off = 0;
        std::size_t taken = 0;
        while (taken < udp_round_datagrams) {
            const std::size_t room = udp_arena_size - off;
            if (room < max_datagram_payload && !runs_.empty() && runs_.back().size > room) return true;
            auto dg = s.next_datagram(now, std::span<std::byte>(arena_.get() + off, room));
            if (!dg) return room < max_datagram_payload;  // maybe only our room was short
            ++taken;
            const auto sock = static_cast<std::uint32_t>(dg->stream < sockets ? dg->stream : 0);
            const auto size = static_cast<std::uint32_t>(dg->size);
            if (!runs_.empty()) {
                auto& r = runs_.back();
                if (r.socket == sock && r.port == dg->port && r.size == size && size > 0 &&
                    r.offset + std::size_t(r.count) * r.size == off && r.count < gso_max_segments &&
                    std::size_t(r.count + 1) * size <= gso_max_bytes) {
                    ++r.count;
                    off += size;
                    continue;
                }
                if (runs_.size() == udp_batch) {
                    // No slot for a new run: keep this datagram as a run of its own next round.
                    // (The table is full only with many short runs; one more slot is reserved.)
                    runs_.push_back({off, size, 1, 0, sock, dg->port, dest(*dg)});
                    return true;
                }
            }
            runs_.push_back({off, size, 1, 0, sock, dg->port, dest(*dg)});
            off += size;
        }
        return true;
    }

    /// Sends the pending runs with sendmmsg(), per socket in order. True when all of them left;
    /// false when a socket would block.
    bool flush(std::span<udp_socket> sockets, shared_counters& counters, std::size_t& blocked_socket) {
        struct alignas(cmsghdr) control {
            std::byte b[CMSG_SPACE(sizeof(std::uint16_t))];
        };
        std::array<mmsghdr, udp_batch> msgs;
        std::array<iovec, udp_batch> iov;
        std::array<control, udp_batch> ctl;
        std::array<std::uint32_t, udp_batch> run_of;
        std::array<std::uint32_t, udp_batch> segs;
        bool blocked = false;
        for (std::size_t s = 0; s < sockets.size() && !blocked; ++s) {
            auto& u = sockets[s];
            for (;;) {
                std::size_t n = 0;
                for (std::size_t i = 0; i < runs_.size() && n < udp_batch; ++i) {
                    auto& r = runs_[i];
                    if (r.socket != s || r.sent == r.count) continue;
                    if (!u.fd) {
                        r.sent = r.count;  // the socket is gone (test over): drop
                        continue;
                    }
                    const bool gso = u.gso && r.count - r.sent > 1;
                    const std::uint32_t first = r.sent;
                    const std::uint32_t k = gso ? r.count - r.sent : 1;
                    for (std::uint32_t j = 0; j < (gso ? 1u : r.count - r.sent) && n < udp_batch; ++j) {
                        msgs[n] = {};
                        auto& h = msgs[n].msg_hdr;
                        iov[n] = {arena_.get() + r.offset + std::size_t(first + j) * r.size, std::size_t(k) * r.size};
                        h.msg_name = r.dest.data();
                        h.msg_namelen = r.dest.length;
                        h.msg_iov = &iov[n];
                        h.msg_iovlen = 1;
                        if (gso) {
                            h.msg_control = ctl[n].b;
                            h.msg_controllen = sizeof ctl[n].b;
                            cmsghdr* c = CMSG_FIRSTHDR(&h);
                            c->cmsg_level = SOL_UDP;
                            c->cmsg_type = UDP_SEGMENT;
                            c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
                            const auto seg = static_cast<std::uint16_t>(r.size);
                            std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
                        }
                        run_of[n] = static_cast<std::uint32_t>(i);
                        segs[n] = k;
                        ++n;
                    }
                }
                if (n == 0) break;
                const int got = ::sendmmsg(u.fd.get(), msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
                if (got > 0) {
                    std::uint64_t dgrams = 0, gso_msgs = 0;
                    for (int m = 0; m < got; ++m) {
                        runs_[run_of[m]].sent += segs[m];
                        dgrams += segs[m];
                        gso_msgs += segs[m] > 1 ? 1 : 0;
                    }
                    counters.add(shared_counters::udp_send_calls);
                    counters.add(shared_counters::udp_send_messages, static_cast<std::uint64_t>(got));
                    counters.add(shared_counters::udp_gso_messages, gso_msgs);
                    counters.add(shared_counters::udp_datagrams_sent, dgrams);
                    continue;
                }
                const int e = errno;
                if (e == EINTR) continue;
                if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
                    blocked = true;
                    blocked_socket = s;
                    break;
                }
                if (segs[0] > 1 && (e == EINVAL || e == EIO || e == EMSGSIZE || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
                    // The kernel or the route refuses GSO here (a datagram above the path MTU,
                    // no checksum offload): one message per datagram from now on.
                    u.gso = false;
                    counters.add(shared_counters::udp_gso_fallbacks);
                    continue;
                }
                // Any other error (e.g. ICMP-induced ECONNREFUSED) is not fatal (§8.2): drop
                // the first message.
                runs_[run_of[0]].sent += segs[0];
            }
        }
        std::erase_if(runs_, [](const send_run& r) { return r.sent == r.count; });
        return !blocked && runs_.empty();
    }

    std::unique_ptr<std::byte[]> arena_;
    std::vector<send_run> runs_;
};

/// The receive buffers of one io thread: reception copies out of the kernel, feeds the session
/// and is done before the next handler runs, so every session on the thread shares them.
struct udp_recv_area {
    std::unique_ptr<std::byte[]> data{new std::byte[udp_recv_batch * udp_recv_slot]};
    std::array<mmsghdr, udp_recv_batch> msgs{};
    std::array<iovec, udp_recv_batch> iov{};
    std::array<sockaddr_storage, udp_recv_batch> from{};
    struct alignas(cmsghdr) control {
        std::byte b[CMSG_SPACE(sizeof(int))];
    };
    std::array<control, udp_recv_batch> ctl{};

    static udp_recv_area& for_this_thread() {
        thread_local udp_recv_area a;
        return a;
    }
};

/// The segment size of a coalesced (GRO) buffer, from its control message; 0 when absent.
inline std::size_t gro_segment_size(const msghdr& h) noexcept {
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v = 0;
            std::memcpy(&v, CMSG_DATA(c), sizeof v);
            return v > 0 ? static_cast<std::size_t>(v) : 0;
        }
    }
    return 0;
}

/// Reads what socket `u` holds, up to our share of rounds, and feeds every datagram to `s` as
/// stream `stream`: idle when the socket was drained, more when data may be left.
inline udp_outcome receive_udp(session& s, udp_socket& u, std::uint32_t stream, shared_counters& counters) {
    auto& a = udp_recv_area::for_this_thread();
    for (int round = 0; round < udp_recv_rounds; ++round) {
        for (std::size_t i = 0; i < udp_recv_batch; ++i) {
            a.iov[i] = {a.data.get() + i * udp_recv_slot, udp_recv_slot};
            auto& h = a.msgs[i].msg_hdr;
            h = {};
            h.msg_name = &a.from[i];
            h.msg_namelen = sizeof(sockaddr_storage);
            h.msg_iov = &a.iov[i];
            h.msg_iovlen = 1;
            if (u.gro) {
                h.msg_control = a.ctl[i].b;
                h.msg_controllen = sizeof a.ctl[i].b;
            }
            a.msgs[i].msg_len = 0;
        }
        const int r = ::recvmmsg(u.fd.get(), a.msgs.data(), udp_recv_batch, MSG_DONTWAIT, nullptr);
        if (r <= 0) {
            if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return udp_outcome::idle;
            continue;  // an ICMP error report (e.g. ECONNREFUSED) was consumed: read on
        }
        const time_point now = clock::now();  // one arrival time per batch
        std::uint64_t dgrams = 0, gro = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
            const std::span<const std::byte> buf(a.data.get() + i * udp_recv_slot, a.msgs[i].msg_len);
            const endpoint src = to_kit(a.from[i]);
            const std::size_t seg = u.gro ? gro_segment_size(a.msgs[i].msg_hdr) : 0;
            if (seg == 0 || seg >= buf.size()) {
                s.feed_datagram(now, src, buf, stream);
                ++dgrams;
                continue;
            }
            // Coalesced: equal segments, the last one possibly shorter; each one is a datagram
            // with its own sequence number.
            ++gro;
            for (auto d : buf | ranges::views::chunk(seg)) {
                s.feed_datagram(now, src, std::span<const std::byte>(d.data(), d.size()), stream);
                ++dgrams;
            }
        }
        counters.add(shared_counters::udp_recv_calls);
        counters.add(shared_counters::udp_recv_messages, static_cast<std::uint64_t>(r));
        counters.add(shared_counters::udp_gro_messages, gro);
        counters.add(shared_counters::udp_datagrams_received, dgrams);
        if (static_cast<std::size_t>(r) < udp_recv_batch) return udp_outcome::idle;
    }
    return udp_outcome::more;
}

} // namespace btest::transport::detail
