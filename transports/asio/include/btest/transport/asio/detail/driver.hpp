// The loop that drives one session over real sockets (STYLE §5): read → feed → poll → write →
// arm the timer at next_deadline(). Shared by the client and the server; everything that is
// role-specific (which session, which UDP destination, what to do with an event) is a hook.
// No protocol logic here: sizes, pacing, accounting and filtering are the kit's.
//
// Data plane (DESIGN "Data plane"): TCP writes carry as many chunks as write_to() gives (the
// buffer grows while the session keeps filling it); UDP datagrams are taken from the kit in
// batches into one arena and leave with sendmmsg(), runs of equal datagrams to one destination
// as one UDP GSO message; reception is recvmmsg() with UDP GRO, each coalesced buffer split by
// the segment size the kernel reports so that every datagram (with its own sequence number)
// is fed on its own. The timer is armed no closer than the granularity, so a paced sender
// wakes once per batch and sends all that is due.
//
// Ownership: a driver is held by its client/server in a shared_ptr; every asynchronous
// operation keeps the socket object it runs on (tcp_link / udp_link) alive and reaches the
// driver through a weak_ptr, so a finished driver can go away while its cancelled operations
// drain. A tcp_link may change drivers (a JOIN is handed to the session it joins): handlers
// always look up the link's current owner.
//
// Thread safety: one thread (the io_context's) at a time per driver.
#pragma once

#include <algorithm>
#include <array>
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

#include <cerrno>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "btest/session/detail/session_core.hpp"
#include "btest/transport/asio/address.hpp"
#include "btest/transport/asio/tuning.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace btest::asio::detail {

using tcp = net::ip::tcp;
using udp = net::ip::udp;

/// TCP buffers per connection. Both start small (thousands of idle or slow sessions stay
/// cheap) and double while the session fills them, up to the maximum.
inline constexpr std::size_t write_buffer_min = 72 * 1024;   ///< ≥ btest::min_write_buffer
inline constexpr std::size_t write_buffer_max = 256 * 1024;
inline constexpr std::size_t read_buffer_min = 16 * 1024;
inline constexpr std::size_t read_buffer_max = 256 * 1024;

/// TCP: buffers written / read per handler before yielding to other handlers.
inline constexpr int tcp_write_rounds = 8;
inline constexpr int tcp_read_rounds = 8;
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

class driver;

/// One TCP connection: the socket and its buffers. Lives as long as an operation on it runs.
struct tcp_link {
    explicit tcp_link(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    std::unique_ptr<std::byte[]> rbuf{new std::byte[read_buffer_min]};
    std::unique_ptr<std::byte[]> wbuf;   ///< allocated at the first write
    std::size_t rcap = read_buffer_min;
    std::size_t wcap = 0;
    std::weak_ptr<driver> owner;
    std::uint32_t index = 0;       ///< the owner session's connection index
    bool reading = false;
    bool read_done = false;        ///< EOF or error seen: no more reads
    bool writing = false;
    bool closed = false;
    bool close_after_write = false;
    std::size_t wpos = 0;          ///< bytes of wbuf[0, wlen) already sent
    std::size_t wlen = 0;
    std::error_code write_error;
    std::uint64_t received = 0;

    void close() noexcept {
        if (closed) return;
        closed = true;
        boost::system::error_code ec;
        sock.close(ec);
    }
};

/// One UDP socket of a test (client: stream k at P+256+k; server: P).
struct udp_link {
    explicit udp_link(udp::socket s) : sock(std::move(s)) {}
    udp::socket sock;
    bool waiting_read = false;
    bool waiting_write = false;
    bool gso = false;                    ///< UDP_SEGMENT is available and not refused so far
    bool gro = false;                    ///< UDP_GRO is on: received buffers may be coalesced

    void close() noexcept {
        boost::system::error_code ec;
        sock.close(ec);
    }
};

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

/// Opens a UDP socket bound to `at` with large buffers, GSO and GRO as far as the kernel and
/// `dp` allow; nullptr when the bind fails.
inline std::shared_ptr<udp_link> open_udp(net::io_context& ioc, const udp::endpoint& at, std::size_t buffer_bytes,
                                          const data_plane_options& dp = {}) {
    boost::system::error_code ec;
    udp::socket s(ioc);
    s.open(at.protocol(), ec);
    if (ec) return nullptr;
    if (at.address().is_v6()) s.set_option(net::ip::v6_only(true), ec);
    s.bind(at, ec);
    if (ec) return nullptr;
    s.non_blocking(true, ec);
    const int fd = s.native_handle();
    set_socket_buffers(fd, buffer_bytes);
    auto l = std::make_shared<udp_link>(std::move(s));
    if (dp.udp_gso) {
        // A kernel without UDP GSO refuses the option (it would otherwise ignore the cmsg and
        // send a whole run as one big datagram).
        int v = 0;
        socklen_t len = sizeof v;
        l->gso = ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    }
    if (dp.udp_gro) {
        const int one = 1;
        l->gro = ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    }
    if (dp.on_udp_socket) dp.on_udp_socket(fd);
    return l;
}

/// What the app may see of the raw control traffic (-vv): bytes written/read on a connection
/// before the test starts, and short writes/reads during it (STATUS-sized; bulk data is not
/// reported).
using trace_fn = std::function<void(std::uint32_t conn, bool sent, std::span<const std::byte>)>;
inline constexpr std::size_t trace_small = 64;

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
inline int gro_segment_size(const msghdr& h) noexcept {
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v = 0;
            std::memcpy(&v, CMSG_DATA(c), sizeof v);
            return v;
        }
    }
    return 0;
}

class driver : public std::enable_shared_from_this<driver> {
public:
    explicit driver(net::io_context& ioc) : driver(ioc, data_plane_options{}, nullptr) {}
    driver(net::io_context& ioc, const data_plane_options& dp, shared_counters* counters)
        : ioc_(ioc), dp_(dp), counters_(counters ? counters : &own_counters_), timer_(ioc) {}
    driver(const driver&) = delete;
    driver& operator=(const driver&) = delete;
    virtual ~driver() = default;

    bool done() const noexcept { return done_; }
    /// Bytes read so far on connection `conn` (0 for an unknown one).
    std::uint64_t received(std::uint32_t conn) const noexcept {
        return conn < links_.size() && links_[conn] ? links_[conn]->received : 0;
    }

    /// Puts `l` in this driver's session as connection `index` (starts reading at the next pump).
    void attach(std::uint32_t index, std::shared_ptr<tcp_link> l) {
        l->owner = weak_from_this();
        l->index = index;
        if (dp_.tcp_socket_buffer) {
            boost::system::error_code ec;
            const auto n = static_cast<int>(std::min<std::size_t>(dp_.tcp_socket_buffer, 1u << 30));
            l->sock.set_option(net::socket_base::send_buffer_size(n), ec);
            l->sock.set_option(net::socket_base::receive_buffer_size(n), ec);
        }
        if (links_.size() <= index) links_.resize(index + 1);
        links_[index] = std::move(l);
    }

    /// Takes connection `index` out of this driver without closing it (a handed-off JOIN).
    std::shared_ptr<tcp_link> detach(std::uint32_t index) {
        if (index >= links_.size()) return nullptr;
        auto l = std::move(links_[index]);
        links_[index].reset();
        return l;
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
        for (std::uint32_t i = 0; i < links_.size(); ++i) {
            auto& l = links_[i];
            if (!l || l->closed) continue;
            if (!keep_connection(i)) {
                l->close();
                continue;
            }
            if (!l->reading && !l->read_done) start_read(l);
            if (!l->writing) start_write(l, now);
        }
        send_datagrams(now);
        for (std::uint32_t k = 0; k < udp_.size(); ++k)
            if (auto& u = udp_[k]; u && u->sock.is_open() && !u->waiting_read) start_udp_read(u, k);
        drain_events();
        pumping_ = false;
        if (done_) return;  // an observer stopped us from inside an event
        if (core().finished()) {
            finish();
            return;
        }
        arm_timer(now);
        pumped();
    }

    /// Ends the session now (Ctrl-C, a server shutting down); the usual finish path follows.
    void stop() {
        if (done_) return;
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
    virtual udp::endpoint udp_destination(const datagram& d) const = 0;
    /// The session is over and every socket is closed (or closing after a last write).
    virtual void on_done() = 0;
    /// After every pump that left the session running (bookkeeping of the owner).
    virtual void pumped() {}

    /// A handed-off session: stop driving it without closing its (moved) connection.
    void retire() { retired_ = true; }

    net::io_context& ioc_;
    std::vector<std::shared_ptr<tcp_link>> links_;
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
            if (!l) continue;
            if (l->writing) l->close_after_write = true;  // the session's last bytes go first
            else l->close();
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
    //
    // Reads: Asio's (speculative) async_read_some, then — once the test runs — more reads in
    // the same handler until the socket is empty or our share of rounds is used. Writes: the
    // bytes write_to() gave are sent at once with non-blocking send(), and while the socket
    // takes everything, the next write_to() follows in the same handler; only a full socket
    // waits for writability. Both save a trip through the reactor per buffer.

    void start_read(const std::shared_ptr<tcp_link>& l) {
        l->reading = true;
        l->sock.async_read_some(net::buffer(l->rbuf.get(), l->rcap),
                                [l](const boost::system::error_code& ec, std::size_t n) {
                                    l->reading = false;
                                    auto o = l->owner.lock();
                                    if (!o || l->closed || o->done_) return;
                                    o->on_read(l, ec, n);
                                });
    }

    void on_read(const std::shared_ptr<tcp_link>& lp, const boost::system::error_code& ec, std::size_t n) {
        tcp_link& l = *lp;
        if (ec) {
            l.read_done = true;
            core().on_connection_closed(l.index, clock::now(), ec == net::error::eof ? std::error_code{} : std::error_code(ec));
            pump();
            return;
        }
        // During the test, read on while reads fill the buffer (not in a handshake: a JOIN
        // hands this connection to another session from inside feed()).
        bool more = n == l.rcap;
        consume(l, clock::now(), n);
        for (int round = 1; round < tcp_read_rounds && more && owns(l) && core().running(); ++round) {
            const std::size_t cap = l.rcap;
            const ssize_t r = ::recv(l.sock.native_handle(), l.rbuf.get(), cap, MSG_DONTWAIT);
            if (r > 0) {
                more = static_cast<std::size_t>(r) == cap;
                consume(l, clock::now(), static_cast<std::size_t>(r));
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            l.read_done = true;  // EOF or a reset: the session decides what it means
            core().on_connection_closed(l.index, clock::now(), r == 0 ? std::error_code{} : std::error_code(errno, std::system_category()));
            break;
        }
        pump();
    }

    /// `n` bytes arrived in the link's buffer: count, trace, feed; grow the buffer when full.
    void consume(tcp_link& l, time_point now, std::size_t n) {
        counters_->add(shared_counters::tcp_reads);
        l.received += n;
        const std::span<const std::byte> bytes(l.rbuf.get(), n);
        trace(l, false, bytes);
        feed(l.index, now, bytes);
        // A full buffer: the peer has more; read bigger next time (the data is consumed).
        // (Not while a read is pending: a JOIN handed this link on may have started one.)
        if (n == l.rcap && l.rcap < read_buffer_max && !l.reading) {
            l.rcap = std::min(l.rcap * 2, read_buffer_max);
            l.rbuf.reset(new std::byte[l.rcap]);
        }
    }

    /// This driver still drives `l` (a JOIN may have moved it; the session may have ended).
    bool owns(const tcp_link& l) const {
        return !done_ && !l.closed && !l.read_done && l.owner.lock().get() == this;
    }

    void start_write(const std::shared_ptr<tcp_link>& l, time_point now) {
        for (int round = 0; round < tcp_write_rounds; ++round) {
            if (l->wpos == l->wlen) {
                if (!l->wbuf) {
                    l->wcap = write_buffer_min;
                    l->wbuf.reset(new std::byte[l->wcap]);
                }
                const auto n = core().write_to(l->index, now, std::span<std::byte>(l->wbuf.get(), l->wcap));
                if (n == 0) return;
                trace(*l, true, std::span<const std::byte>(l->wbuf.get(), n));
                l->wpos = 0;
                l->wlen = n;
            }
            const std::size_t n = l->wlen;
            switch (send_pending(*l)) {
            case send_result::done: break;
            case send_result::blocked: return wait_tcp_writable(l);
            case send_result::failed:
                core().on_connection_closed(l->index, clock::now(), l->write_error);
                return;
            }
            counters_->add(shared_counters::tcp_writes);
            // The session filled most of the buffer: give it more room per call.
            if (n > l->wcap / 2 && l->wcap < write_buffer_max) {
                l->wcap = std::min(l->wcap * 2, write_buffer_max);
                l->wbuf.reset(new std::byte[l->wcap]);
            }
        }
        post_yield();  // an unpaced session always has more: let other handlers run first
    }

    enum class send_result : std::uint8_t { done, blocked, failed };

    /// Sends what remains of the link's pending bytes without blocking.
    static send_result send_pending(tcp_link& l) {
        while (l.wpos < l.wlen) {
            const ssize_t r = ::send(l.sock.native_handle(), l.wbuf.get() + l.wpos, l.wlen - l.wpos, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r > 0) {
                l.wpos += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return send_result::blocked;
            l.write_error = std::error_code(r < 0 ? errno : EPIPE, std::system_category());
            l.wpos = l.wlen = 0;
            return send_result::failed;
        }
        l.wpos = l.wlen = 0;
        return send_result::done;
    }

    /// The socket is full: wait until it takes more, then go on (or, after the session ended
    /// with bytes pending, finish them and close).
    static void wait_tcp_writable(const std::shared_ptr<tcp_link>& l) {
        l->writing = true;
        l->sock.async_wait(tcp::socket::wait_write, [l](const boost::system::error_code& ec) {
            l->writing = false;
            if (l->close_after_write) {
                if (!ec && send_pending(*l) == send_result::blocked) return wait_tcp_writable(l);
                l->close();
                return;
            }
            auto o = l->owner.lock();
            if (!o || l->closed || o->done_) return;
            if (ec) {
                o->core().on_connection_closed(l->index, clock::now(), std::error_code(ec));
            } else {
                switch (send_pending(*l)) {
                case send_result::done: o->counters_->add(shared_counters::tcp_writes); break;
                case send_result::blocked: return wait_tcp_writable(l);
                case send_result::failed: o->core().on_connection_closed(l->index, clock::now(), l->write_error); break;
                }
            }
            o->pump();
        });
    }

    void post_yield() {
        if (yield_posted_) return;
        yield_posted_ = true;
        net::post(ioc_, [w = weak_from_this()] {
            if (auto o = w.lock()) {
                o->yield_posted_ = false;
                o->pump();
            }
        });
    }

    // ---- timer -----------------------------------------------------------------------------

    void arm_timer(time_point now) {
        const auto d = core().next_deadline();
        if (!d) {
            if (armed_) {
                armed_.reset();
                ++timer_gen_;
                timer_.cancel();
            }
            return;
        }
        // Wake no sooner than the granularity: what falls due meanwhile goes out in one batch.
        const time_point at = std::max(*d, now + std::chrono::duration_cast<duration>(dp_.timer_granularity));
        // An armed timer that fires no later than needed stays (firing early is harmless).
        if (armed_ && *armed_ <= at) return;
        armed_ = at;
        ++timer_gen_;
        timer_.expires_at(at);
        timer_.async_wait([w = weak_from_this(), gen = timer_gen_](const boost::system::error_code& ec) {
            if (ec) return;
            auto o = w.lock();
            if (!o || o->done_ || gen != o->timer_gen_) return;
            o->armed_.reset();
            o->counters_->add(shared_counters::timer_wakeups);
            o->timer_fired(clock::now());
            o->pump();
        });
    }

    // ---- UDP send --------------------------------------------------------------------------

    /// A run of datagrams that are contiguous in the arena, equal in size and go out of one
    /// socket to one destination: one GSO message, or one message each without GSO.
    struct send_run {
        std::size_t offset;
        std::uint32_t size;     ///< payload bytes per datagram
        std::uint32_t count;
        std::uint32_t sent;     ///< datagrams of the run already sent (or dropped)
        std::uint32_t socket;
        std::uint16_t port;
        udp::endpoint dest;
    };

    void send_datagrams(time_point now) {
        if (udp_.empty() || !core().running() || core().params().proto != protocol::udp) return;
        if (!runs_.empty() && !flush_runs()) return;  // still blocked: wait for writability
        if (!arena_) {
            arena_.reset(new std::byte[udp_arena_size]);
            runs_.reserve(udp_batch + 1);
        }
        for (int round = 0; round < udp_send_rounds; ++round) {
            const bool more = take_datagrams(now);
            if (!runs_.empty() && !flush_runs()) return;
            if (!more) return;
        }
        // An unpaced sender always has more: let other handlers run, then continue.
        post_yield();
    }

    /// Takes what the session has due into the arena as runs. False when the session had no
    /// more due (true: stopped by the arena, the run table or the round limit).
    bool take_datagrams(time_point now) {
        std::size_t off = 0;
        std::size_t taken = 0;
        while (taken < udp_round_datagrams) {
            const std::size_t room = udp_arena_size - off;
            if (room < max_datagram_payload && !runs_.empty() && runs_.back().size > room) return true;
            auto dg = core().next_datagram(now, std::span<std::byte>(arena_.get() + off, room));
            if (!dg) return room < max_datagram_payload;  // maybe only our room was short
            ++taken;
            const auto s = static_cast<std::uint32_t>(udp_socket_for(*dg));
            const auto size = static_cast<std::uint32_t>(dg->size);
            if (!runs_.empty()) {
                auto& r = runs_.back();
                if (r.socket == s && r.port == dg->port && r.size == size && size > 0 &&
                    r.offset + std::size_t(r.count) * r.size == off && r.count < gso_max_segments &&
                    std::size_t(r.count + 1) * size <= gso_max_bytes) {
                    ++r.count;
                    off += size;
                    continue;
                }
                if (runs_.size() == udp_batch) {
                    // No slot for a new run: keep this datagram as a run of its own next round.
                    // (The table is full only with many short runs; one more slot is reserved.)
                    runs_.push_back({off, size, 1, 0, s, dg->port, udp_destination(*dg)});
                    return true;
                }
            }
            runs_.push_back({off, size, 1, 0, s, dg->port, udp_destination(*dg)});
            off += size;
        }
        return true;
    }

    /// Sends the pending runs with sendmmsg(), per socket in order. True when all of them left;
    /// false when a socket would block (then we wait for it to become writable).
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
                    if (!u || !u->sock.is_open()) {
                        r.sent = r.count;  // the socket is gone (test over): drop
                        continue;
                    }
                    const bool gso = u->gso && r.count - r.sent > 1;
                    const std::uint32_t first = r.sent;
                    const std::uint32_t k = gso ? r.count - r.sent : 1;
                    for (std::uint32_t j = 0; j < (gso ? 1u : r.count - r.sent) && n < udp_batch; ++j) {
                        msgs[n] = {};
                        auto& h = msgs[n].msg_hdr;
                        iov[n] = {arena_.get() + r.offset + std::size_t(first + j) * r.size, std::size_t(k) * r.size};
                        h.msg_name = r.dest.data();
                        h.msg_namelen = static_cast<socklen_t>(r.dest.size());
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
                const int got = ::sendmmsg(u->sock.native_handle(), msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
                if (got > 0) {
                    std::uint64_t dgrams = 0, gso_msgs = 0;
                    for (int m = 0; m < got; ++m) {
                        runs_[run_of[m]].sent += segs[m];
                        dgrams += segs[m];
                        gso_msgs += segs[m] > 1 ? 1 : 0;
                    }
                    counters_->add(shared_counters::udp_send_calls);
                    counters_->add(shared_counters::udp_send_messages, static_cast<std::uint64_t>(got));
                    counters_->add(shared_counters::udp_gso_messages, gso_msgs);
                    counters_->add(shared_counters::udp_datagrams_sent, dgrams);
                    continue;
                }
                const int e = errno;
                if (e == EINTR) continue;
                if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
                    blocked = true;
                    wait_writable(u);
                    break;
                }
                if (segs[0] > 1 && (e == EINVAL || e == EIO || e == EMSGSIZE || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
                    // The kernel or the route refuses GSO here (a datagram above the path MTU,
                    // no checksum offload): one message per datagram from now on.
                    u->gso = false;
                    counters_->add(shared_counters::udp_gso_fallbacks);
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

    void wait_writable(const std::shared_ptr<udp_link>& u) {
        if (u->waiting_write) return;
        u->waiting_write = true;
        u->sock.async_wait(udp::socket::wait_write, [u, w = weak_from_this()](const boost::system::error_code& ec) {
            u->waiting_write = false;
            if (ec) return;
            if (auto o = w.lock(); o && !o->done_) o->pump();
        });
    }

    // ---- UDP receive -----------------------------------------------------------------------

    /// `stream`: the socket's index in udp_ (client: the socket bound at P+256+stream).
    void start_udp_read(const std::shared_ptr<udp_link>& u, std::uint32_t stream) {
        u->waiting_read = true;
        u->sock.async_wait(udp::socket::wait_read, [u, stream, w = weak_from_this()](const boost::system::error_code& ec) {
            u->waiting_read = false;
            if (ec) return;
            if (auto o = w.lock()) o->on_udp_readable(u, stream);
        });
    }

    void on_udp_readable(const std::shared_ptr<udp_link>& u, std::uint32_t stream) {
        if (done_ || !u->sock.is_open()) return;
        if (!drain_udp(*u, stream)) {
            // Not drained after our share of rounds: come back after other handlers instead of
            // waiting for readiness (the reactor reports new arrivals, not data left behind).
            u->waiting_read = true;
            net::post(ioc_, [u, stream, w = weak_from_this()] {
                u->waiting_read = false;
                if (auto o = w.lock()) o->on_udp_readable(u, stream);
            });
        }
        pump();
    }

    /// Reads what the socket holds, up to our rounds; true when it was drained.
    bool drain_udp(udp_link& u, std::uint32_t stream) {
        auto& a = udp_recv_area::for_this_thread();
        bool full = false;
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
            const int r = ::recvmmsg(u.sock.native_handle(), a.msgs.data(), udp_recv_batch, MSG_DONTWAIT, nullptr);
            full = false;
            if (r <= 0) {
                if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return true;
                continue;  // an ICMP error report (e.g. ECONNREFUSED) was consumed: read on
            }
            const time_point now = clock::now();  // one arrival time per batch
            std::uint64_t dgrams = 0, gro = 0;
            for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
                const auto& h = a.msgs[i].msg_hdr;
                const std::size_t len = a.msgs[i].msg_len;
                const std::byte* p = a.data.get() + i * udp_recv_slot;
                const endpoint src = to_kit(a.from[i]);
                const int seg = u.gro ? gro_segment_size(h) : 0;
                if (seg > 0 && static_cast<std::size_t>(seg) < len) {
                    // Coalesced: equal segments, the last one possibly shorter; each one is a
                    // datagram with its own sequence number.
                    ++gro;
                    for (std::size_t off = 0; off < len; off += static_cast<std::size_t>(seg)) {
                        core().feed_datagram(now, src, std::span<const std::byte>(p + off, std::min<std::size_t>(seg, len - off)), stream);
                        ++dgrams;
                    }
                } else {
                    core().feed_datagram(now, src, std::span<const std::byte>(p, len), stream);
                    ++dgrams;
                }
            }
            counters_->add(shared_counters::udp_recv_calls);
            counters_->add(shared_counters::udp_recv_messages, static_cast<std::uint64_t>(r));
            counters_->add(shared_counters::udp_gro_messages, gro);
            counters_->add(shared_counters::udp_datagrams_received, dgrams);
            if (static_cast<std::size_t>(r) < udp_recv_batch) return true;
            full = true;
        }
        return !full;
    }

    data_plane_options dp_;
    shared_counters own_counters_;
    shared_counters* counters_;
    net::steady_timer timer_;
    std::optional<time_point> armed_;
    std::uint64_t timer_gen_ = 0;
    trace_fn trace_;
    bool pumping_ = false;
    bool retired_ = false;
    bool done_ = false;
    bool yield_posted_ = false;
    std::unique_ptr<std::byte[]> arena_;
    std::vector<send_run> runs_;
};

} // namespace btest::asio::detail
