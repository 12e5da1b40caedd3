// The loop that drives one session over non-blocking sockets (STYLE §5): read → feed → poll →
// write → arm the timer at next_deadline(). Shared by the client and the server; what is
// role-specific (which session, which UDP destination, what to do with an event) is a hook.
// No protocol logic here: sizes, pacing, accounting and filtering are the kit's.
//
// Readiness comes from the event_loop (level-triggered epoll): a connection is watched for
// reading until EOF and for writing while bytes returned by write_to() are still unwritten (or
// it wrote its share of a round and may have more); a UDP socket for reading, and for writing
// while a batch is blocked or an unpaced sender yields to other work.
//
// Ownership: a driver is held by its client/server in a shared_ptr; handlers capture a raw
// pointer and take shared_from_this() first, so a driver that finishes inside its own handler
// lives until the handler returns. A tcp_link may change drivers (a JOIN is handed to the
// session it joins): its watch always calls the link's current owner.
//
// Thread safety: one thread (the loop's) at a time per driver.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "btest/session/detail/session_core.hpp"
#include "btest/transport/posix/address.hpp"
#include "btest/transport/posix/detail/socket.hpp"
#include "btest/transport/posix/event_loop.hpp"

namespace btest::posix::detail {

/// UDP send: messages per sendmmsg() (a message is one datagram or one GSO run), and the
/// arena next_datagram() writes into (a batch of small datagrams, or a few big ones).
inline constexpr std::size_t udp_batch = 64;
inline constexpr std::size_t udp_arena_size = 512 * 1024;
/// UDP GSO: datagrams per message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels) and
/// payload bytes per message (an IPv4 datagram's payload limit).
inline constexpr std::size_t gso_max_segments = 64;
inline constexpr std::size_t gso_max_bytes = 65507;
/// UDP receive: messages per recvmmsg(), each slot large enough for a GRO buffer.
inline constexpr std::size_t udp_recv_batch = 32;
inline constexpr std::size_t udp_recv_slot = 65536;
/// Rounds per wake-up before yielding to other sockets: UDP (batch, send) and receive batches,
/// TCP write_to() buffers and reads.
inline constexpr int udp_send_rounds = 8;
inline constexpr int udp_recv_rounds = 8;
inline constexpr int tcp_write_rounds = 8;
inline constexpr int tcp_read_rounds = 4;

/// The receive buffers of one thread: a batch is copied out of the kernel and fed to its
/// session before anything else runs, so every session on the thread shares them.
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
    for (const cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), const_cast<cmsghdr*>(c))) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v = 0;
            std::memcpy(&v, CMSG_DATA(c), sizeof v);
            return v > 0 ? static_cast<std::size_t>(v) : 0;
        }
    }
    return 0;
}

/// What the app may see of the raw control traffic (-vv): bytes written/read on a connection
/// before the test starts, and short writes/reads during it (STATUS-sized; bulk data is not
/// reported).
using trace_fn = std::function<void(std::uint32_t conn, bool sent, std::span<const std::byte>)>;
inline constexpr std::size_t trace_small = 64;

class driver : public std::enable_shared_from_this<driver> {
public:
    /// `granularity`: the timer is never armed closer than this to now, so a paced sender wakes
    /// once per batch and sends everything that fell due since (a deadline may be honoured late).
    explicit driver(event_loop& loop, duration granularity = {})
        : loop_(loop), granularity_(granularity), timer_(loop, [this] { on_timer(); }) {}
    driver(const driver&) = delete;
    driver& operator=(const driver&) = delete;
    virtual ~driver() = default;

    bool done() const noexcept { return done_; }
    /// Bytes read so far on connection `conn` (0 for an unknown one).
    std::uint64_t received(std::uint32_t conn) const noexcept {
        return conn < links_.size() && links_[conn] ? links_[conn]->received : 0;
    }

    /// Puts `l` in this driver's session as connection `index` (read from the next round on).
    void attach(std::uint32_t index, std::unique_ptr<tcp_link> l) {
        l->index = index;
        l->owner = this;
        if (!l->watch.valid() && !l->closed()) {
            tcp_link* raw = l.get();
            l->interest = EPOLLIN;
            l->watch = loop_.watch(l->fd, l->interest, [raw](std::uint32_t ev) { raw->owner->on_tcp_event(*raw, ev); });
        }
        if (links_.size() <= index) links_.resize(index + 1);
        links_[index] = std::move(l);
    }

    /// Takes connection `index` out of this driver without closing it (a handed-off JOIN).
    std::unique_ptr<tcp_link> detach(std::uint32_t index) {
        if (index >= links_.size()) return nullptr;
        return std::move(links_[index]);
    }

    void set_trace(trace_fn f) { trace_ = std::move(f); }

    /// The one place outputs are drained. Call after every input.
    void pump() {
        if (done_ || pumping_) return;
        auto self = shared_from_this();
        pumping_ = true;
        const time_point now = clock::now();
        drain_events();
        if (retired_) {
            pumping_ = false;
            retire_now();
            return;
        }
        if (done_) {  // an observer stopped us from inside an event
            pumping_ = false;
            return;
        }
        for (std::uint32_t i = 0; i < links_.size(); ++i) {
            auto& l = links_[i];
            if (!l || l->closed()) continue;
            if (!keep_connection(i)) {
                l->close();
                continue;
            }
            write_tcp(*l, now);
        }
        send_datagrams(now);
        drain_events();
        pumping_ = false;
        if (done_) return;
        if (core().finished()) {
            finish();
            return;
        }
        arm_timer(now);
    }

    /// Ends the session now (Ctrl-C, a server shutting down); the usual finish path follows.
    void stop() {
        if (done_) return;
        auto self = shared_from_this();
        core().stop(clock::now());
        pump();
        if (!done_) finish();  // e.g. the session was already over
    }

protected:
    // ---- hooks -----------------------------------------------------------------------------
    virtual btest::detail::session_core& core() = 0;
    virtual void feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) = 0;
    virtual void timer_fired(time_point now) = 0;
    virtual void on_event(event& ev) = 0;
    /// Client: false for a connection the session gave up on.
    virtual bool keep_connection(std::uint32_t conn) { (void)conn; return true; }
    /// Index into udp_ of the socket that sends `d`, and its destination.
    virtual std::size_t udp_socket_for(const datagram& d) const = 0;
    virtual socket_address udp_destination(const datagram& d) const = 0;
    /// The session is over and every socket is closed.
    virtual void on_done() = 0;

    /// A handed-off session: stop driving it without closing its (moved) connection.
    void retire() { retired_ = true; }

    /// Adds a UDP socket of the test as stream `udp_.size()` and starts reading it.
    void add_udp(std::shared_ptr<udp_link> u) {
        const auto stream = static_cast<std::uint32_t>(udp_.size());
        if (u && u->open() && !u->watch.valid()) {
            u->interest = EPOLLIN;
            u->watch = loop_.watch(u->fd, u->interest, [this, stream](std::uint32_t ev) { on_udp_event(stream, ev); });
        }
        udp_.push_back(std::move(u));
    }

    event_loop& loop_;
    std::vector<std::unique_ptr<tcp_link>> links_;
    std::vector<std::shared_ptr<udp_link>> udp_;

private:
    void drain_events() {
        while (auto ev = core().poll_event()) on_event(*ev);
    }

    void retire_now() {
        done_ = true;
        timer_.cancel();
        links_.clear();
        on_done();
    }

    void finish() {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        for (auto& l : links_) {
            if (!l || l->closed()) continue;
            // The session's last bytes (a final control word) go first; a non-blocking socket
            // whose buffer is that full is not waited for.
            while (l->pending() && !l->write_failed) {
                const auto r = ::send(l->fd, l->wbuf.get() + l->wpos, l->wlen - l->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (r > 0) l->wpos += static_cast<std::size_t>(r);
                else if (!(r < 0 && errno == EINTR)) break;
            }
            l->close();
        }
        for (auto& u : udp_)
            if (u) u->close();
        udp_.clear();
        on_done();
    }

    void trace(const tcp_link& l, bool sent, std::span<const std::byte> b) {
        if (trace_ && (!core().running() || b.size() <= trace_small)) trace_(l.index, sent, b);
    }

    // ---- TCP -------------------------------------------------------------------------------

    void on_tcp_event(tcp_link& l, std::uint32_t ev) {
        auto self = shared_from_this();
        if (done_ || l.closed()) return;
        if (!l.read_done && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
            read_tcp(l);
        } else if (ev & (EPOLLHUP | EPOLLERR)) {
            // Nothing more to read and the connection is gone: report it once, then stop
            // listening (EPOLLHUP would be reported again and again).
            if (!l.reported) {
                l.reported = true;
                const auto ec = socket_error(l.fd);
                core().on_connection_closed(l.index, clock::now(), ec ? ec : std::make_error_code(std::errc::connection_reset));
            }
            loop_.unwatch(l.watch);
        }
        pump();
    }

    void read_tcp(tcp_link& l) {
        for (int round = 0; round < tcp_read_rounds && !l.read_done; ++round) {
            const auto r = ::recv(l.fd, l.rbuf.get(), read_buffer_size, MSG_DONTWAIT);
            const time_point now = clock::now();
            if (r > 0) {
                const auto n = static_cast<std::size_t>(r);
                l.received += n;
                const std::span<const std::byte> bytes(l.rbuf.get(), n);
                trace(l, false, bytes);
                feed(l.index, now, bytes);
                // A JOIN (handed to another session at the next pump) or the end: stop here.
                if (core().finished() || n < read_buffer_size) return;
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            l.read_done = true;
            update_interest(l);
            report_closed(l, now, r == 0 ? std::error_code{} : last_error());
        }
    }

    void report_closed(tcp_link& l, time_point now, std::error_code ec) {
        if (l.reported) return;
        l.reported = true;
        core().on_connection_closed(l.index, now, ec);
    }

    void write_tcp(tcp_link& l, time_point now) {
        l.more = false;
        for (int round = 0; !l.write_failed;) {
            if (!l.pending()) {
                if (round++ == tcp_write_rounds) {
                    l.more = true;  // come back when writable, after the other sockets had a turn
                    break;
                }
                const auto n = core().write_to(l.index, now, std::span<std::byte>(l.wbuf.get(), write_buffer_size));
                if (n == 0) break;
                trace(l, true, std::span<const std::byte>(l.wbuf.get(), n));
                l.wpos = 0;
                l.wlen = n;
            }
            const auto r = ::send(l.fd, l.wbuf.get() + l.wpos, l.wlen - l.wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0) {
                l.wpos += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            l.write_failed = true;
            l.wpos = l.wlen = 0;
            report_closed(l, now, last_error());
        }
        update_interest(l);
    }

    void update_interest(tcp_link& l) {
        if (l.closed() || !l.watch.valid()) return;
        const std::uint32_t want = (l.read_done ? 0u : std::uint32_t{EPOLLIN}) |
                                   (!l.write_failed && (l.pending() || l.more) ? std::uint32_t{EPOLLOUT} : 0u);
        if (want == l.interest) return;
        l.interest = want;
        loop_.modify(l.watch, want);
    }

    // ---- timer -----------------------------------------------------------------------------

    void on_timer() {
        auto self = shared_from_this();
        if (done_) return;
        armed_.reset();
        timer_fired(clock::now());
        pump();
    }

    void arm_timer(time_point now) {
        const auto d = core().next_deadline();
        if (!d) {
            armed_.reset();
            timer_.cancel();
            return;
        }
        const time_point at = std::max(*d, now + granularity_);
        // An armed timer that fires no later than needed stays (firing early is harmless).
        if (armed_ && *armed_ <= at) return;
        armed_ = at;
        timer_.arm(at);
    }

    // ---- UDP -------------------------------------------------------------------------------

    /// Datagrams that are contiguous in the arena, equal in size and leave one socket for one
    /// destination: one GSO message, or one message each without GSO.
    struct send_run {
        std::size_t offset;
        std::uint32_t size;   ///< payload bytes per datagram
        std::uint32_t count;
        std::uint32_t sent;   ///< datagrams of the run sent (or dropped) so far
        std::uint32_t socket;
        std::uint16_t port;
        socket_address dest;
    };

    void on_udp_event(std::uint32_t stream, std::uint32_t ev) {
        auto self = shared_from_this();
        if (done_ || stream >= udp_.size() || !udp_[stream] || !udp_[stream]->open()) return;
        if (ev & (EPOLLIN | EPOLLERR)) drain_udp(*udp_[stream], stream);
        pump();
    }

    void send_datagrams(time_point now) {
        for (auto& u : udp_)
            if (u) u->interest &= ~std::uint32_t{EPOLLOUT};  // set again below where still wanted
        if (!udp_.empty() && core().running() && core().params().proto == protocol::udp) send_rounds(now);
        for (auto& u : udp_)
            if (u && u->open()) loop_.modify(u->watch, u->interest);
    }

    void send_rounds(time_point now) {
        if (!runs_.empty() && !flush_runs()) return;  // still blocked: wait for writability
        if (!arena_) {
            arena_.reset(new std::byte[udp_arena_size]);
            runs_.reserve(udp_batch);
        }
        for (int round = 0; round < udp_send_rounds; ++round) {
            const bool more = take_datagrams(now);
            if (!runs_.empty() && !flush_runs()) return;
            if (!more) return;
        }
        // An unpaced sender always has more: let other sockets have a turn, then continue (a
        // UDP socket is writable at once, so this is the next round of the loop).
        for (auto& u : udp_)
            if (u && u->open()) {
                u->interest |= EPOLLOUT;
                break;
            }
    }

    /// Takes what the session has due into the arena, as runs. False when nothing more was due
    /// (true: stopped by the arena or the run table).
    bool take_datagrams(time_point now) {
        std::size_t off = 0;
        while (runs_.size() < udp_batch) {
            // next_datagram() needs room for the largest datagram; a full arena waits for the
            // next round.
            if (udp_arena_size - off < max_datagram_payload) return true;
            auto dg = core().next_datagram(now, std::span<std::byte>(arena_.get() + off, udp_arena_size - off));
            if (!dg) return false;
            const auto sock = static_cast<std::uint32_t>(udp_socket_for(*dg));
            const auto size = static_cast<std::uint32_t>(dg->size);
            if (!runs_.empty()) {
                auto& r = runs_.back();
                if (r.socket == sock && r.port == dg->port && r.size == size && size > 0 &&
                    r.offset + std::size_t{r.count} * r.size == off && r.count < gso_max_segments &&
                    std::size_t{r.count + 1} * size <= gso_max_bytes) {
                    ++r.count;
                    off += size;
                    continue;
                }
            }
            runs_.push_back({off, size, 1, 0, sock, dg->port, udp_destination(*dg)});
            off += size;
        }
        return true;
    }

    /// Sends the pending runs with sendmmsg, per socket in order. True when all of them left;
    /// false when a socket would block (then it is watched for writability).
    bool flush_runs() {
        struct alignas(cmsghdr) control {
            std::byte b[CMSG_SPACE(sizeof(std::uint16_t))];
        };
        std::array<mmsghdr, udp_batch> msgs;
        std::array<iovec, udp_batch> iov;
        std::array<control, udp_batch> ctl;
        std::array<std::uint32_t, udp_batch> run_of;
        std::array<std::uint32_t, udp_batch> segs;
        bool blocked = false;
        for (std::size_t s = 0; s < udp_.size() && !blocked; ++s) {
            auto& u = udp_[s];
            for (;;) {
                std::size_t n = 0;
                for (std::size_t i = 0; i < runs_.size() && n < udp_batch; ++i) {
                    auto& r = runs_[i];
                    if (r.socket != s || r.sent == r.count) continue;
                    if (!u || !u->open()) {
                        r.sent = r.count;  // the socket is gone (test over): drop
                        continue;
                    }
                    const bool gso = u->gso && r.count - r.sent > 1;
                    const std::uint32_t messages = gso ? 1 : r.count - r.sent;
                    for (std::uint32_t j = 0; j < messages && n < udp_batch; ++j, ++n) {
                        const std::uint32_t k = gso ? r.count - r.sent : 1;
                        msgs[n] = {};
                        auto& h = msgs[n].msg_hdr;
                        iov[n] = {arena_.get() + r.offset + std::size_t{r.sent + j} * r.size, std::size_t{k} * r.size};
                        h.msg_name = const_cast<sockaddr*>(r.dest.data());
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
                    }
                }
                if (n == 0) break;
                const int got = ::sendmmsg(u->fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
                if (got > 0) {
                    for (std::size_t m = 0; m < static_cast<std::size_t>(got); ++m) runs_[run_of[m]].sent += segs[m];
                    continue;
                }
                const int e = errno;
                if (e == EINTR) continue;
                if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
                    blocked = true;
                    u->interest |= EPOLLOUT;
                    break;
                }
                if (segs[0] > 1 && (e == EINVAL || e == EIO || e == EMSGSIZE || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
                    // The kernel or the route refuses GSO here (a datagram above the path MTU,
                    // no checksum offload): one message per datagram from now on.
                    u->gso = false;
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

    /// `stream`: the socket's index in udp_ (client: the socket bound at P+256+stream).
    void drain_udp(udp_link& u, std::uint32_t stream) {
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
            const int r = ::recvmmsg(u.fd, a.msgs.data(), udp_recv_batch, MSG_DONTWAIT, nullptr);
            if (r <= 0) {
                if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) continue;  // an ICMP report was consumed
                return;
            }
            const time_point now = clock::now();  // one arrival time per batch
            for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
                const std::size_t len = a.msgs[i].msg_len;
                const std::byte* p = a.data.get() + i * udp_recv_slot;
                const endpoint src = to_kit(a.from[i]);
                const std::size_t seg = u.gro ? gro_segment_size(a.msgs[i].msg_hdr) : 0;
                if (seg > 0 && seg < len) {
                    // Coalesced: equal datagrams (the last one maybe shorter), each with its own
                    // sequence number, fed one by one.
                    for (std::size_t off = 0; off < len; off += seg)
                        core().feed_datagram(now, src, std::span<const std::byte>(p + off, std::min(seg, len - off)), stream);
                } else {
                    core().feed_datagram(now, src, std::span<const std::byte>(p, len), stream);
                }
            }
            if (static_cast<std::size_t>(r) < udp_recv_batch) return;
        }
    }

    duration granularity_;
    timer timer_;
    std::optional<time_point> armed_;
    trace_fn trace_;
    bool pumping_ = false;
    bool retired_ = false;
    bool done_ = false;
    std::unique_ptr<std::byte[]> arena_;
    std::vector<send_run> runs_;
};

} // namespace btest::posix::detail
