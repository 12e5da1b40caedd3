// The loop that drives one session over real sockets, for every transport (STYLE §5): read →
// feed → poll events and requests → write → arm the timer at next_deadline(). The server and
// the client (server.hpp, client.hpp) derive from it; what is role-specific (what an event
// means to the app, how a request is fulfilled, where a datagram goes) is a hook. The event
// loop is a template parameter (reactor.hpp). No protocol logic here: sizes, pacing,
// accounting and filtering are the kit's.
//
// Data plane (DESIGN "Data plane"): TCP reads and writes are non-blocking system calls, several
// per wake-up; buffers start small (thousands of idle or slow sessions stay cheap) and double
// while the session fills them. Zero-filled chunk payload leaves by reference (sendfile from a
// file of zeros) and payload the session need not see is dropped in the kernel (MSG_TRUNC):
// detail/tcp_io.hpp. A receiving session with a byte budget is read no further than its
// read_limit(). UDP batching with sendmmsg/GSO and recvmmsg/GRO is udp_io.hpp. The
// timer is armed no closer than the granularity, so a paced sender wakes once per batch and
// sends all that is due.
//
// Ownership: a driver is held by its server or client in a shared_ptr; every callback holds a
// reference while it runs, so an owner may drop the driver from inside one of its hooks.
//
// Thread safety: one thread (the reactor's) at a time per driver.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <sys/socket.h>

#include "btest/session/session.hpp"
#include "btest/transport/detail/tcp_io.hpp"
#include "btest/transport/detail/udp_io.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/reactor.hpp"
#include "btest/transport/socket.hpp"

namespace btest::transport {

namespace detail {

/// TCP buffers per connection: both start small and double while the session fills them.
inline constexpr std::size_t write_buffer_min = 72 * 1024;   ///< ≥ btest::min_write_buffer
inline constexpr std::size_t write_buffer_max = 256 * 1024;
inline constexpr std::size_t read_buffer_min = 16 * 1024;
inline constexpr std::size_t read_buffer_max = 256 * 1024;
static_assert(write_buffer_min >= min_write_buffer);
/// TCP: buffers written / reads per wake-up before yielding to other handlers.
inline constexpr int tcp_write_rounds = 8;
inline constexpr int tcp_read_rounds = 8;

/// Control traffic for -vv: bytes written/read on a connection before the test starts, and
/// short ones (STATUS-sized) during it.
using trace_fn = std::function<void(std::uint32_t conn, bool sent, std::span<const std::byte>)>;
inline constexpr std::size_t trace_small = 64;

/// Where a TCP connection's readiness goes: the server's front end before its first message
/// is routed, a driver afterwards.
template <class R>
struct tcp_link;
template <class R>
class tcp_sink {
public:
    virtual void on_tcp_ready(tcp_link<R>& l, std::uint8_t ready) = 0;

protected:
    ~tcp_sink() = default;
};

/// One TCP connection: the descriptor, its watch and its buffers. Owned by whoever drives it
/// (the front end, then the session's driver); closed when destroyed.
template <class R>
struct tcp_link {
    tcp_link(R& reactor, unique_fd descriptor, tcp_sink<R>* sink) : r(reactor), fd(std::move(descriptor)), owner(sink) {
        watch = r.watch_fd(fd.get(), [this](std::uint8_t ready) { owner->on_tcp_ready(*this, ready); });
        r.want(watch, true, false);
    }
    tcp_link(const tcp_link&) = delete;
    tcp_link& operator=(const tcp_link&) = delete;
    ~tcp_link() { close(); }

    R& r;
    unique_fd fd;
    typename R::watch watch;
    tcp_sink<R>* owner;
    std::uint32_t index = 0;       ///< the owner session's connection index
    std::unique_ptr<std::byte[]> rbuf{new std::byte[read_buffer_min]};
    std::size_t rcap = read_buffer_min;
    std::unique_ptr<std::byte[]> wbuf;  ///< allocated at the first write
    std::size_t wcap = 0;
    std::size_t wpos = 0;          ///< wbuf[wpos, wlen) was returned by write_to() and not yet written
    std::size_t wlen = 0;
    std::size_t zleft = 0;         ///< then this many zeros (write_parts) not yet written
    bool zerocopy = false;         ///< zeros leave by sendfile(); false: the session writes them (or,
                                   ///< after sendfile() was refused, they are copied from a zero block)
    bool read_done = false;        ///< EOF or an error seen: no more reads
    bool read_more = false;        ///< stopped reading with data possibly left: continue soon
    bool read_paused = false;      ///< read_limit() was 0 (a budget refill on its way): not reading
    bool write_blocked = false;    ///< waits for writability
    bool write_failed = false;
    bool reported = false;         ///< the session was told the connection closed
    std::uint64_t received = 0;
    std::function<void()> on_close;  ///< e.g. gives a per-IP connection count back

    bool closed() const noexcept { return !fd; }
    bool pending() const noexcept { return wpos < wlen || zleft > 0; }
    void close() noexcept {
        if (!fd) return;
        r.unwatch(watch);
        fd.reset();
        if (on_close) std::exchange(on_close, nullptr)();
    }
    /// The readiness it wants reported now.
    void update_interest() {
        if (fd) r.want(watch, !read_done && !read_paused, write_blocked);
    }
    /// Writes what remains of the pending bytes without blocking: done, blocked or failed.
    enum class send_result : std::uint8_t { done, blocked, failed };
    /// The literal bytes go first (with MSG_MORE when zeros follow), then the zeros.
    send_result send_pending(std::error_code& ec, shared_counters& counters) noexcept {
        while (wpos < wlen) {
            const int more = zleft ? MSG_MORE : 0;
            const ssize_t n = ::send(fd.get(), wbuf.get() + wpos, wlen - wpos, MSG_DONTWAIT | MSG_NOSIGNAL | more);
            if (n > 0) {
                wpos += static_cast<std::size_t>(n);
                counters.add(shared_counters::tcp_bytes_copied, static_cast<std::uint64_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return send_result::blocked;
            return fail(ec, n);
        }
        while (zleft > 0) {
            ssize_t n;
            if (zerocopy) {
                n = send_zeros_by_reference(fd.get(), zleft);
                if (n > 0) {
                    zleft -= static_cast<std::size_t>(n);
                    counters.add(shared_counters::tcp_bytes_zerocopy, static_cast<std::uint64_t>(n));
                    continue;
                }
                if (n < 0 && zerocopy_unsupported(errno)) {
                    zerocopy = false;  // this socket copies from now on
                    counters.add(shared_counters::tcp_zerocopy_fallbacks);
                    continue;
                }
            } else {
                n = ::send(fd.get(), zero_block(), zleft < zero_block_size ? zleft : zero_block_size,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                    zleft -= static_cast<std::size_t>(n);
                    counters.add(shared_counters::tcp_bytes_copied, static_cast<std::uint64_t>(n));
                    continue;
                }
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return send_result::blocked;
            return fail(ec, n);
        }
        wpos = wlen = 0;
        return send_result::done;
    }

private:
    send_result fail(std::error_code& ec, ssize_t n) noexcept {
        ec = n < 0 ? last_error() : std::make_error_code(std::errc::broken_pipe);
        wpos = wlen = zleft = 0;
        return send_result::failed;
    }
};

} // namespace detail

template <reactor R>
class basic_driver : public std::enable_shared_from_this<basic_driver<R>>, public detail::tcp_sink<R> {
public:
    using tcp_link = detail::tcp_link<R>;

    basic_driver(R& r, const data_plane_options& dp, detail::shared_counters& counters)
        : r_(r), dp_(dp), counters_(counters), timer_(r, [this] { timer_fired(); }) {}
    basic_driver(const basic_driver&) = delete;
    basic_driver& operator=(const basic_driver&) = delete;
    virtual ~basic_driver() = default;

    bool done() const noexcept { return done_; }
    /// Bytes read so far on connection `conn` (0 for an unknown one).
    std::uint64_t received(std::uint32_t conn) const noexcept {
        return conn < links_.size() && links_[conn] ? links_[conn]->received : 0;
    }

    /// Puts `l` in this driver's session as connection `index`; bytes already read that belong
    /// to the session follow with feed_early().
    void attach(std::uint32_t index, std::unique_ptr<tcp_link> l) {
        l->owner = this;
        l->index = index;
        l->zerocopy = dp_.tcp_zerocopy && (dp_.tcp_zerocopy_remote || detail::peer_is_local(l->fd.get()));
        if (dp_.tcp_socket_buffer) set_socket_buffers(l->fd.get(), dp_.tcp_socket_buffer);
        if (links_.size() <= index) links_.resize(index + 1);
        links_[index] = std::move(l);
    }
    /// Bytes that arrived on connection `conn` before it was attached (behind a first message).
    void feed_early(std::uint32_t conn, std::span<const std::byte> bytes) {
        if (bytes.empty()) return;
        trace(conn, false, bytes);
        sess().feed(conn, clock::now(), bytes);
    }

    /// UDP sockets of the test (client: stream k at P+256+k; server: P) from now on.
    void add_udp(udp_socket s) {
        const auto k = static_cast<std::uint32_t>(udp_.size());
        auto w = r_.watch_fd(s.fd.get(), [this, k](std::uint8_t ready) { on_udp_ready(k, ready); });
        r_.want(w, true, false);
        if (dp_.on_udp_socket) dp_.on_udp_socket(s.fd.get());
        udp_.push_back(std::move(s));
        udp_watch_.push_back(std::move(w));
        udp_more_.push_back(false);
    }

    void set_trace(detail::trace_fn f) { trace_ = std::move(f); }

    /// The one place outputs are drained. Call after every input.
    void pump() {
        if (done_ || pumping_) return;
        auto self = this->shared_from_this();
        pumping_ = true;
        const time_point now = clock::now();
        drain();
        if (!done_) {
            for (auto& l : links_) {
                if (!l || l->closed()) continue;
                if (!keep_connection(l->index)) {
                    l->close();
                    continue;
                }
                if (l->read_paused && sess().read_limit(l->index) > 0) {  // a refill came
                    l->read_paused = false;
                    l->update_interest();
                    l->read_more = true;
                    post_yield();
                }
                write_tcp(*l, now);
            }
            send_udp(now);
            drain();  // sending may have spent a byte budget (a refill, or the end)
        }
        pumping_ = false;
        if (done_) return;  // an observer stopped us from inside an event
        if (sess().finished()) return finish();
        arm_timer(now);
    }

    /// Ends the session now (Ctrl-C, a server shutting down); the usual finish path follows.
    void stop() {
        if (done_) return;
        auto self = this->shared_from_this();
        sess().stop(clock::now());
        pump();
        if (!done_) finish();  // e.g. the session was already over
    }

protected:
    // ---- hooks -----------------------------------------------------------------------------
    virtual btest::session& sess() = 0;
    virtual void on_event(const event& ev) = 0;
    /// Fulfils a request, now (an answer to the session) or later (then pump() after it).
    virtual void on_request(const request& rq) = 0;
    /// Client: false for a connection the session gave up on.
    virtual bool keep_connection(std::uint32_t conn) { (void)conn; return true; }
    /// Where datagram `d` goes.
    virtual socket_address udp_destination(const datagram& d) const = 0;
    /// The session is over and every socket is closed.
    virtual void on_done() = 0;

    R& r_;
    const data_plane_options& dp_;

private:
    /// Events and requests until neither is left.
    void drain() {
        for (bool more = true; more && !done_;) {
            more = false;
            while (auto ev = sess().poll_event()) {
                on_event(*ev);
                more = true;
                if (done_) return;
            }
            while (auto rq = sess().poll_request()) {
                on_request(*rq);
                more = true;
            }
        }
    }

    void finish() {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        for (auto& l : links_) {
            if (!l || l->closed()) continue;
            // The session's last bytes (a final control word) go first, with one try: a peer
            // whose socket buffer is that full is not waited for.
            std::error_code ec;
            if (l->pending()) (void)l->send_pending(ec, counters_);
            l->close();
        }
        for (auto& w : udp_watch_) r_.unwatch(w);
        udp_watch_.clear();
        udp_.clear();
        on_done();
    }

    void trace(std::uint32_t conn, bool sent, std::span<const std::byte> b) {
        if (trace_ && (!sess().running() || b.size() <= detail::trace_small)) trace_(conn, sent, b);
    }

    void post_yield() {
        if (yield_posted_) return;
        yield_posted_ = true;
        r_.post([w = this->weak_from_this()] {
            auto self = w.lock();
            if (!self || self->done_) return;
            self->yield_posted_ = false;
            self->resume();
        });
    }
    /// After a yield: read on where data was left behind, then the usual pump.
    void resume() {
        for (auto& l : links_)
            if (l && !l->closed() && l->read_more) read_tcp(*l);
        for (std::uint32_t k = 0; k < udp_.size() && !done_; ++k)
            if (udp_more_[k]) receive(k);
        pump();
    }

    // ---- TCP -------------------------------------------------------------------------------

    void on_tcp_ready(tcp_link& l, std::uint8_t ready) override {
        auto self = this->shared_from_this();
        if (done_ || l.closed()) return;
        if ((ready & ready_write) && l.write_blocked) {
            l.write_blocked = false;
            l.update_interest();
        }
        if (!l.read_done && (ready & (ready_read | ready_error))) {
            read_tcp(l);
        } else if ((ready & ready_error) && !l.reported) {
            // Nothing more to read and the connection is gone: report it once.
            const auto ec = socket_error(l.fd.get());
            report_closed(l, ec ? ec : std::make_error_code(std::errc::connection_reset));
        }
        pump();
    }

    void read_tcp(tcp_link& l) {
        l.read_more = false;
        int heads = 0;  // short reads of a chunk's head before a drop
        for (int round = 0; round < detail::tcp_read_rounds;) {
            if (l.read_done || l.closed() || done_) return;
            const auto plan = dp_.tcp_discard ? sess().plan_read(l.index, detail::min_discard, detail::max_discard)
                                              : session::read_plan{0, sess().read_limit(l.index)};
            if (plan.discard) {
                // Payload the session need not see: the kernel drops it, nothing is copied.
                const std::size_t want = std::min(plan.discard, detail::max_discard);
                const ssize_t r = ::recv(l.fd.get(), nullptr, want, MSG_DONTWAIT | MSG_TRUNC);
                if (r > 0) {
                    const auto n = static_cast<std::size_t>(r);
                    counters_.add(detail::shared_counters::tcp_discards);
                    counters_.add(detail::shared_counters::tcp_bytes_discarded, n);
                    l.received += n;
                    sess().discarded(l.index, clock::now(), n);
                    ++round;
                    if (n < want) return;  // drained for now
                    if (sess().finished()) return;
                    continue;
                }
                if (!handle_read_error(l, r)) return;
                continue;
            }
            const std::size_t want = std::min(l.rcap, plan.read);
            if (want == 0) {  // until the session has room again (pump() looks)
                l.read_paused = true;
                l.update_interest();
                return;
            }
            const ssize_t r = ::recv(l.fd.get(), l.rbuf.get(), want, MSG_DONTWAIT);
            if (r > 0) {
                const auto n = static_cast<std::size_t>(r);
                counters_.add(detail::shared_counters::tcp_reads);
                l.received += n;
                const std::span<const std::byte> bytes(l.rbuf.get(), n);
                trace(l.index, false, bytes);
                sess().feed(l.index, clock::now(), bytes);
                if (n < want) return;  // drained for now
                // A full buffer: the peer has more; read bigger next time (the data is consumed).
                if (n == l.rcap && l.rcap < detail::read_buffer_max) {
                    l.rcap = std::min(l.rcap * 2, detail::read_buffer_max);
                    l.rbuf.reset(new std::byte[l.rcap]);
                }
                if (sess().finished()) return;
                if (!sess().running()) break;  // in a handshake: one read per turn
                // The head of a chunk before a drop is no round of its own, up to a round's worth
                // of them: a peer sending nothing but STATUS records still yields to the others.
                if (n > read_head || ++heads > detail::tcp_read_rounds) ++round;
                continue;
            }
            if (!handle_read_error(l, r)) return;
        }
        l.read_more = true;  // our share is used: come back after the other handlers
        post_yield();
    }

    /// A read returned `r` ≤ 0: true to read again (EINTR), false when done reading for now
    /// (would block) or for good (EOF or a reset: the session decides what it means).
    bool handle_read_error(tcp_link& l, ssize_t r) {
        if (r < 0 && errno == EINTR) return true;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        l.read_done = true;
        l.update_interest();
        report_closed(l, r == 0 ? std::error_code{} : last_error());
        return false;
    }

    void report_closed(tcp_link& l, std::error_code ec) {
        if (l.reported) return;
        l.reported = true;
        sess().on_connection_closed(l.index, clock::now(), ec);
    }

    void write_tcp(tcp_link& l, time_point now) {
        if (l.write_blocked || l.write_failed) return;
        for (int round = 0; round < detail::tcp_write_rounds; ++round) {
            if (!l.pending()) {
                if (!l.wbuf) {
                    l.wcap = detail::write_buffer_min;
                    l.wbuf.reset(new std::byte[l.wcap]);
                }
                // Zeros the session hands out as a count leave from our own zero source.
                const auto p = sess().write_parts(l.index, now, std::span<std::byte>(l.wbuf.get(), l.wcap),
                                                  l.zerocopy ? detail::zero_room : 0);
                if (p.literal == 0 && p.zeros == 0) return;
                if (p.literal) trace(l.index, true, std::span<const std::byte>(l.wbuf.get(), p.literal));
                l.wpos = 0;
                l.wlen = p.literal;
                l.zleft = p.zeros;
            }
            const std::size_t n = l.wlen;
            std::error_code ec;
            switch (l.send_pending(ec, counters_)) {
            case tcp_link::send_result::done: break;
            case tcp_link::send_result::blocked:
                l.write_blocked = true;
                l.update_interest();
                return;
            case tcp_link::send_result::failed:
                l.write_failed = true;
                report_closed(l, ec);
                return;
            }
            counters_.add(detail::shared_counters::tcp_writes);
            // The session filled most of the buffer: give it more room per call.
            if (n > l.wcap / 2 && l.wcap < detail::write_buffer_max) {
                l.wcap = std::min(l.wcap * 2, detail::write_buffer_max);
                l.wbuf.reset(new std::byte[l.wcap]);
            }
        }
        post_yield();  // an unpaced session always has more: let other handlers run first
    }

    // ---- UDP -------------------------------------------------------------------------------

    void send_udp(time_point now) {
        if (udp_.empty() || !sess().running() || sess().params().proto != protocol::udp) return;
        if (udp_blocked_) return;  // waits for writability
        std::size_t blocked = 0;
        const auto o = sender_.send(sess(), now, udp_, [this](const datagram& d) { return udp_destination(d); },
                                    counters_, blocked);
        if (o == detail::udp_outcome::blocked) {
            udp_blocked_ = true;
            r_.want(udp_watch_[blocked], true, true);
        } else if (o == detail::udp_outcome::more) {
            post_yield();
        }
    }

    void on_udp_ready(std::uint32_t k, std::uint8_t ready) {
        auto self = this->shared_from_this();
        if (done_ || k >= udp_.size()) return;
        if (ready & ready_write) {
            udp_blocked_ = false;
            r_.want(udp_watch_[k], true, false);
        }
        if (ready & (ready_read | ready_error)) receive(k);
        pump();
    }

    void receive(std::uint32_t k) {
        udp_more_[k] = detail::receive_udp(sess(), udp_[k], k, counters_) == detail::udp_outcome::more;
        if (udp_more_[k]) post_yield();
    }

    // ---- timer -----------------------------------------------------------------------------

    void timer_fired() {
        auto self = this->shared_from_this();
        if (done_) return;
        armed_.reset();
        counters_.add(detail::shared_counters::timer_wakeups);
        sess().on_timer(clock::now());
        pump();
    }

    void arm_timer(time_point now) {
        const auto d = sess().next_deadline();
        if (!d) {
            if (armed_) {
                armed_.reset();
                timer_.cancel();
            }
            return;
        }
        // Wake no sooner than the granularity: what falls due meanwhile goes out in one batch.
        const time_point at = std::max(*d, now + std::chrono::duration_cast<duration>(dp_.timer_granularity));
        // An armed timer that fires no later than needed stays (firing early is harmless).
        if (armed_ && *armed_ <= at) return;
        armed_ = at;
        timer_.arm(at);
    }

    detail::shared_counters& counters_;
    typename R::timer timer_;
    std::optional<time_point> armed_;
    std::vector<std::unique_ptr<tcp_link>> links_;
    std::vector<udp_socket> udp_;
    std::vector<typename R::watch> udp_watch_;
    std::vector<bool> udp_more_;
    detail::udp_sender sender_;
    detail::trace_fn trace_;
    bool udp_blocked_ = false;
    bool pumping_ = false;
    bool done_ = false;
    bool yield_posted_ = false;
};

} // namespace btest::transport
