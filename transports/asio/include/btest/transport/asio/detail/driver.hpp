// The loop that drives one session over real sockets (STYLE §5): read → feed → poll → write →
// arm the timer at next_deadline(). Shared by the client and the server; everything that is
// role-specific (which session, which UDP destination, what to do with an event) is a hook.
// No protocol logic here: sizes, pacing, accounting and filtering are the kit's.
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
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <cerrno>
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

namespace btest::asio::detail {

using tcp = net::ip::tcp;
using udp = net::ip::udp;

/// write_to() buffer per connection (≥ btest::min_write_buffer: whole chunks plus a STATUS).
inline constexpr std::size_t write_buffer_size = 256 * 1024;
inline constexpr std::size_t read_buffer_size = 128 * 1024;
/// UDP: datagrams per sendmmsg/recvmmsg call.
inline constexpr std::size_t udp_batch = 32;
/// UDP: the send arena next_datagram() writes into (a batch of small datagrams, or a few big ones).
inline constexpr std::size_t udp_arena_size = 512 * 1024;
/// UDP: rounds of (batch, send) per wake-up before yielding to other handlers.
inline constexpr int udp_send_rounds = 16;
inline constexpr int udp_recv_rounds = 8;

class driver;

/// One TCP connection: the socket and its buffers. Lives as long as an operation on it runs.
struct tcp_link {
    explicit tcp_link(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    std::unique_ptr<std::byte[]> rbuf{new std::byte[read_buffer_size]};
    std::unique_ptr<std::byte[]> wbuf{new std::byte[write_buffer_size]};
    std::weak_ptr<driver> owner;
    std::uint32_t index = 0;       ///< the owner session's connection index
    bool reading = false;
    bool read_done = false;        ///< EOF or error seen: no more reads
    bool writing = false;
    bool closed = false;
    bool close_after_write = false;
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
    std::unique_ptr<std::byte[]> rbuf;   ///< udp_batch × max_datagram_payload, allocated on first read
    bool waiting_read = false;
    bool waiting_write = false;

    void close() noexcept {
        boost::system::error_code ec;
        sock.close(ec);
    }
};

/// Opens a UDP socket bound to `at` with large buffers; nullptr when the bind fails.
inline std::shared_ptr<udp_link> open_udp(net::io_context& ioc, const udp::endpoint& at,
                                          std::size_t buffer_bytes) {
    boost::system::error_code ec;
    udp::socket s(ioc);
    s.open(at.protocol(), ec);
    if (ec) return nullptr;
    if (at.address().is_v6()) s.set_option(net::ip::v6_only(true), ec);
    s.bind(at, ec);
    if (ec) return nullptr;
    s.non_blocking(true, ec);
    const auto n = static_cast<int>(std::min<std::size_t>(buffer_bytes, 1u << 30));
    s.set_option(net::socket_base::send_buffer_size(n), ec);
    s.set_option(net::socket_base::receive_buffer_size(n), ec);
    return std::make_shared<udp_link>(std::move(s));
}

/// What the app may see of the raw control traffic (-vv): bytes written/read on a connection
/// before the test starts, and short writes/reads during it (STATUS-sized; bulk data is not
/// reported).
using trace_fn = std::function<void(std::uint32_t conn, bool sent, std::span<const std::byte>)>;
inline constexpr std::size_t trace_small = 64;

class driver : public std::enable_shared_from_this<driver> {
public:
    explicit driver(net::io_context& ioc) : ioc_(ioc), timer_(ioc) {}
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
        arm_timer();
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

    void start_read(const std::shared_ptr<tcp_link>& l) {
        l->reading = true;
        l->sock.async_read_some(net::buffer(l->rbuf.get(), read_buffer_size),
                                [l](const boost::system::error_code& ec, std::size_t n) {
                                    l->reading = false;
                                    auto o = l->owner.lock();
                                    if (!o || l->closed || o->done_) return;
                                    o->on_read(*l, ec, n);
                                });
    }

    void on_read(tcp_link& l, const boost::system::error_code& ec, std::size_t n) {
        const time_point now = clock::now();
        if (ec) {
            l.read_done = true;
            core().on_connection_closed(l.index, now, ec == net::error::eof ? std::error_code{} : std::error_code(ec));
        } else {
            l.received += n;
            const std::span<const std::byte> bytes(l.rbuf.get(), n);
            trace(l, false, bytes);
            feed(l.index, now, bytes);
        }
        pump();
    }

    void start_write(const std::shared_ptr<tcp_link>& l, time_point now) {
        const auto n = core().write_to(l->index, now, std::span<std::byte>(l->wbuf.get(), write_buffer_size));
        if (n == 0) return;
        trace(*l, true, std::span<const std::byte>(l->wbuf.get(), n));
        l->writing = true;
        net::async_write(l->sock, net::buffer(l->wbuf.get(), n),
                         [l](const boost::system::error_code& ec, std::size_t) {
                             l->writing = false;
                             if (l->close_after_write) {
                                 l->close();
                                 return;
                             }
                             auto o = l->owner.lock();
                             if (!o || l->closed || o->done_) return;
                             if (ec) o->core().on_connection_closed(l->index, clock::now(), std::error_code(ec));
                             o->pump();
                         });
    }

    // ---- timer -----------------------------------------------------------------------------

    void arm_timer() {
        const auto d = core().next_deadline();
        if (d == armed_) return;
        armed_ = d;
        ++timer_gen_;
        if (!d) {
            timer_.cancel();
            return;
        }
        timer_.expires_at(*d);
        timer_.async_wait([w = weak_from_this(), gen = timer_gen_](const boost::system::error_code& ec) {
            if (ec) return;
            auto o = w.lock();
            if (!o || o->done_ || gen != o->timer_gen_) return;
            o->armed_.reset();
            o->timer_fired(clock::now());
            o->pump();
        });
    }

    // ---- UDP -------------------------------------------------------------------------------

    struct pending_datagram {
        std::size_t offset;
        datagram dg;
        bool sent;
    };

    void send_datagrams(time_point now) {
        if (udp_.empty() || !core().running() || core().params().proto != protocol::udp) return;
        if (!batch_.empty() && !flush_batch()) return;  // still blocked: wait for writability
        if (!arena_) arena_.reset(new std::byte[udp_arena_size]);
        for (int round = 0; round < udp_send_rounds; ++round) {
            std::size_t off = 0;
            bool more = true;
            while (batch_.size() < udp_batch && udp_arena_size - off >= max_datagram_payload) {
                auto dg = core().next_datagram(now, std::span<std::byte>(arena_.get() + off, udp_arena_size - off));
                if (!dg) {
                    more = false;
                    break;
                }
                batch_.push_back({off, *dg, false});
                off += dg->size;
            }
            if (!batch_.empty() && !flush_batch()) return;
            if (!more) return;
        }
        // An unpaced sender always has more: let other handlers run, then continue.
        if (!yield_posted_) {
            yield_posted_ = true;
            net::post(ioc_, [w = weak_from_this()] {
                if (auto o = w.lock()) {
                    o->yield_posted_ = false;
                    o->pump();
                }
            });
        }
    }

    /// Sends the pending batch with sendmmsg, per socket in order. True when all of it left;
    /// false when a socket would block (then we wait for it to become writable).
    bool flush_batch() {
        std::array<mmsghdr, udp_batch> msgs{};
        std::array<iovec, udp_batch> iov{};
        std::array<udp::endpoint, udp_batch> dest{};
        std::array<std::size_t, udp_batch> which{};
        bool blocked = false;
        for (std::size_t s = 0; s < udp_.size(); ++s) {
            auto& u = udp_[s];
            std::size_t n = 0;
            for (std::size_t i = 0; i < batch_.size(); ++i) {
                auto& p = batch_[i];
                if (p.sent || udp_socket_for(p.dg) != s) continue;
                if (!u || !u->sock.is_open()) {
                    p.sent = true;  // the socket is gone (test over): drop
                    continue;
                }
                dest[n] = udp_destination(p.dg);
                iov[n] = {arena_.get() + p.offset, p.dg.size};
                msgs[n] = {};
                msgs[n].msg_hdr.msg_name = dest[n].data();
                msgs[n].msg_hdr.msg_namelen = static_cast<socklen_t>(dest[n].size());
                msgs[n].msg_hdr.msg_iov = &iov[n];
                msgs[n].msg_hdr.msg_iovlen = 1;
                which[n] = i;
                ++n;
            }
            std::size_t done = 0;
            while (done < n) {
                const int r = ::sendmmsg(u->sock.native_handle(), msgs.data() + done,
                                         static_cast<unsigned>(n - done), MSG_DONTWAIT);
                if (r > 0) {
                    for (int k = 0; k < r; ++k) batch_[which[done + static_cast<std::size_t>(k)]].sent = true;
                    done += static_cast<std::size_t>(r);
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
                    blocked = true;
                    wait_writable(u);
                    break;
                }
                // Any other error (e.g. ICMP-induced ECONNREFUSED) is not fatal (§8.2): drop one.
                batch_[which[done]].sent = true;
                ++done;
            }
        }
        std::erase_if(batch_, [](const pending_datagram& p) { return p.sent; });
        return !blocked && batch_.empty();
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

    /// `stream`: the socket's index in udp_ (client: the socket bound at P+256+stream).
    void start_udp_read(const std::shared_ptr<udp_link>& u, std::uint32_t stream) {
        u->waiting_read = true;
        u->sock.async_wait(udp::socket::wait_read, [u, stream, w = weak_from_this()](const boost::system::error_code& ec) {
            u->waiting_read = false;
            if (ec) return;
            auto o = w.lock();
            if (!o || o->done_ || !u->sock.is_open()) return;
            o->drain_udp(*u, stream);
            o->pump();
        });
    }

    void drain_udp(udp_link& u, std::uint32_t stream) {
        if (!u.rbuf) u.rbuf.reset(new std::byte[udp_batch * max_datagram_payload]);
        std::array<mmsghdr, udp_batch> msgs{};
        std::array<iovec, udp_batch> iov{};
        std::array<sockaddr_storage, udp_batch> from{};
        for (int round = 0; round < udp_recv_rounds; ++round) {
            for (std::size_t i = 0; i < udp_batch; ++i) {
                iov[i] = {u.rbuf.get() + i * max_datagram_payload, max_datagram_payload};
                msgs[i] = {};
                msgs[i].msg_hdr.msg_name = &from[i];
                msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            const int r = ::recvmmsg(u.sock.native_handle(), msgs.data(), udp_batch, MSG_DONTWAIT, nullptr);
            if (r <= 0) return;  // EAGAIN (drained) or an ICMP error report: nothing to feed
            const time_point now = clock::now();  // one arrival time per batch
            for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
                core().feed_datagram(now, to_kit(from[i]),
                                     std::span<const std::byte>(u.rbuf.get() + i * max_datagram_payload, msgs[i].msg_len),
                                     stream);
            }
            if (static_cast<std::size_t>(r) < udp_batch) return;
        }
    }

    net::steady_timer timer_;
    std::optional<time_point> armed_;
    std::uint64_t timer_gen_ = 0;
    trace_fn trace_;
    bool pumping_ = false;
    bool retired_ = false;
    bool done_ = false;
    bool yield_posted_ = false;
    std::unique_ptr<std::byte[]> arena_;
    std::vector<pending_datagram> batch_;
};

} // namespace btest::asio::detail
