// The part of a session both roles share: connections and their output queues, the test phase
// (TCP streams with STATUS interleaving, UDP datagrams with pacing and adaptation, the STATUS
// schedule, statistics and report intervals), the deadlines and the end of the test.
//
// The handshakes live in server_session and client_session, which derive from this class and
// implement the four hooks at the bottom. PROTOCOL sections are cited where rules are applied.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/entropy.hpp"
#include "btest/core/error.hpp"
#include "btest/core/time.hpp"
#include "btest/pacing/adaptation.hpp"
#include "btest/pacing/pacer.hpp"
#include "btest/session/config.hpp"
#include "btest/session/detail/event_queue.hpp"
#include "btest/session/event.hpp"
#include "btest/session/stats.hpp"
#include "btest/session/tcp_scanner.hpp"
#include "btest/stats/rate_meter.hpp"
#include "btest/stats/udp_receiver.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/frame_buffer.hpp"
#include "btest/wire/payload.hpp"
#include "btest/wire/status.hpp"

namespace btest {

/// One UDP datagram to send (see next_datagram()).
struct datagram {
    std::size_t size = 0;      ///< UDP payload bytes written to the caller's buffer (0: NAT probe)
    std::uint32_t stream = 0;  ///< client: the sending socket, 0..N−1 (bound at P+256+stream)
    std::uint16_t port = 0;    ///< destination port (server: P+256+k or the peer's source; client: P)
};

/// Smallest write_to() buffer that can carry any chunk (tx_size ≤ 65535) with a STATUS ahead
/// of it; transports typically pass 256 KiB.
inline constexpr std::size_t min_write_buffer = 65535 + 512;
/// Buffer next_datagram() needs for any datagram size.
inline constexpr std::size_t max_datagram_payload = 65535;

namespace detail {

inline constexpr std::size_t control_capacity = 320;

/// One TCP connection of a session.
struct connection {
    bool open = true;
    bool in_test = false;        ///< carries the test (joined / started)
    std::uint8_t phase = 0;      ///< handshake sub-state, owned by the role
    std::array<std::byte, control_capacity> ctl{};  ///< control bytes to write first
    std::size_t ctl_len = 0;
    wire::frame_buffer<wire::ecsrp5_max_frame> frame;  ///< handshake input

    tcp_scanner scanner;
    bool tx_data = false;        ///< we write test data on it
    bool rx_data = false;        ///< the peer writes test data on it
    bool sends_status = false;   ///< we write a STATUS every second on it
    bool tx_starved = false;     ///< the last write_to() found no chunk due (pacing)
    pacing::pacer pacer;
    std::uint32_t chunk_no = 0;
    std::uint32_t status_seq = 0;
    bool status_pending = false;
    wire::status pending_status{};
    std::uint64_t status_rx = 0;  ///< data bytes since the last STATUS we built
    std::uint64_t report_tx = 0;  ///< since the last report
    std::uint64_t report_rx = 0;
    time_point last_rx{};
    connection_stats stats;

    bool queue(std::span<const std::byte> b) noexcept {
        if (ctl_len + b.size() > ctl.size()) return false;
        std::memcpy(ctl.data() + ctl_len, b.data(), b.size());
        ctl_len += b.size();
        return true;
    }
};

enum class role : std::uint8_t { server, client };

/// What the handshake negotiated for the test phase.
struct test_params {
    protocol proto = protocol::tcp;
    direction dir = direction::receive;
    std::uint32_t streams = 1;          ///< UDP streams (N of §8.6)
    bool random_data = false;
    std::uint32_t tcp_chunk = wire::default_tcp_chunk;
    std::uint32_t udp_size = 1500;      ///< whole IP datagram size S of what we send
    std::uint64_t tx_cap = 0;           ///< bit/s; 0 = unlimited
    std::uint16_t udp_port = 0;         ///< the server's port P
    bool udp_single_destination = false;
    bool udp_reply_to_source = false;
    duration duration_limit{};          ///< client: test duration (0 = until stop)
    std::string user;
};

class session_core {
public:
    session_core(const session_core&) = delete;
    session_core& operator=(const session_core&) = delete;
    virtual ~session_core() = default;

    // ---- outputs ---------------------------------------------------------------------------

    /// Bytes to write on connection `conn`: queued control frames, then (in the test) a due
    /// STATUS and as many whole data chunks as fit and are due. Every byte returned must be
    /// written before the next call for this connection (STATUS only goes between chunks).
    /// Returns 0 when there is nothing to write now.
    std::size_t write_to(std::uint32_t conn, time_point now, std::span<std::byte> out) {
        if (conn >= conns_.size() || done_) return 0;
        auto& c = conns_[conn];
        if (!c.open) return 0;
        std::size_t n = 0;
        if (c.ctl_len && !out.empty()) {  // (an empty span may have no storage at all)
            n = std::min(c.ctl_len, out.size());
            std::memcpy(out.data(), c.ctl.data(), n);
            std::memmove(c.ctl.data(), c.ctl.data() + n, c.ctl_len - n);
            c.ctl_len -= n;
            if (closing_) {
                maybe_done();
                return n;
            }
            if (c.ctl_len) return n;  // the rest of the frame first
        }
        if (!running_ || !c.in_test) return n;
        if (c.status_pending && out.size() - n >= wire::status_size) {
            const auto s = wire::encode_status(c.pending_status);
            std::memcpy(out.data() + n, s.data(), s.size());
            n += s.size();
            c.status_pending = false;
            // Counted when written: a STATUS merged into its successor is one message.
            c.stats.status_sent++;
            status_sent_++;
            status_bytes_sent_ += c.pending_status.bytes;
        }
        if (c.tx_data && params_.proto == protocol::tcp) n += write_chunks(c, now, out.subspan(n));
        return n;
    }

    /// The next UDP datagram to send, written into `out` (≥ max_datagram_payload bytes for any
    /// size), or nullopt when none is due. Unpaced senders always have one until the test ends.
    std::optional<datagram> next_datagram(time_point now, std::span<std::byte> out) {
        if (!running_ || params_.proto != protocol::udp || !udp_tx_) return std::nullopt;
        if (nat_probes_left_ > 0) {
            --nat_probes_left_;
            const auto stream = static_cast<std::uint32_t>(nat_probes_left_);
            return datagram{0, stream, udp_destination(stream)};
        }
        const std::uint32_t payload = wire::udp_payload_size(params_.udp_size, header_);
        if (out.size() < payload) return std::nullopt;
        if (udp_pacer_.take(now, 1) == 0) {
            udp_starved_ = true;
            return std::nullopt;
        }
        udp_starved_ = false;
        const std::uint32_t stream = udp_rr_;
        if (++udp_rr_ == udp_seq_.size()) udp_rr_ = 0;
        const std::uint32_t seq = ++udp_seq_[stream];
        wire::fill_udp_packet(seq, out.first(payload), fill_);
        const std::uint64_t wire_bytes = std::uint64_t(payload) + header_;
        tx_bytes_ += wire_bytes;
        ++tx_packets_;
        return datagram{payload, stream, udp_destination(stream)};
    }

    /// Drain after every call until nullopt.
    std::optional<event> poll_event() { return events_.pop(); }

    /// The one deadline: handshake/join/idle/max timeouts, STATUS and report ticks, the end of
    /// the test, and pacing credit the transport asked for. Call on_timer() at or after it;
    /// early or repeated calls are harmless. nullopt: no timer needed.
    std::optional<time_point> next_deadline() const {
        if (done_) return std::nullopt;
        std::optional<time_point> d;
        auto take = [&](time_point t) { if (!d || t < *d) d = t; };
        if (closing_) {
            take(linger_deadline_);
            return d;
        }
        if (hs_deadline_) take(*hs_deadline_);
        if (join_deadline_) take(*join_deadline_);
        if (running_) {
            take(next_second_);
            take(next_report_);
            if (idle_check_) take(*idle_check_);
            if (end_deadline_) take(*end_deadline_);
            if (udp_tx_ && udp_starved_) if (auto t = udp_pacer_.next_due()) take(*t);
            if (udp_tx_) if (auto t = adapter_.next_backoff()) take(*t);  // silent receiver (§10.3)
            for (const auto& c : conns_)
                if (c.tx_starved) if (auto t = c.pacer.next_due()) take(*t);
        }
        return d;
    }

    /// True once the session is over and its last bytes were taken by write_to(): close every
    /// connection and socket. (A connection handed off to another session is not closed.)
    bool finished() const noexcept { return done_; }
    /// The failure, if the session ended in one (sticky).
    std::error_code error() const noexcept { return error_; }
    bool running() const noexcept { return running_; }

    // ---- inputs ----------------------------------------------------------------------------

    /// A UDP datagram's payload received from `src` on the test's socket `stream` (client:
    /// the socket bound at P+256+stream; server: 0). Datagrams from another IP than the
    /// peer's, outside the test, or shorter than 4 bytes are dropped (PROTOCOL §8.2, §13.9).
    void feed_datagram(time_point now, const endpoint& src, std::span<const std::byte> payload,
                       std::uint32_t stream = 0) {
        if (!running_ || params_.proto != protocol::udp || !udp_rx_) return;
        if (src.address != peer_.address) return;
        if (params_.udp_reply_to_source && !reply_port_) reply_port_ = src.port;
        udp_rx_stats_.on_datagram(now, src.port, payload, header_, stream);
    }

    /// The transport saw EOF (ec empty), a reset or an I/O error on `conn`. Any connection
    /// ending ends the whole session (PROTOCOL §12.1).
    void on_connection_closed(std::uint32_t conn, time_point now, std::error_code ec = {}) {
        if (conn >= conns_.size() || done_) return;
        conns_[conn].open = false;
        if (closing_) {
            maybe_done();
            return;
        }
        if (!conns_[conn].in_test && !is_primary(conn) && !running_) {
            on_extra_connection_lost(conn, now);
            return;
        }
        if (running_) {
            finish(now, end_reason::peer_closed, {});
            return;
        }
        handshake_closed(conn, now, ec);
    }

    /// Ends the test now: everything is closed, nothing more is sent (PROTOCOL §12.1).
    void stop(time_point now) {
        if (done_ || closing_) return;
        finish(now, end_reason::stopped, {});
    }

    /// The CPU load (0..100) sent in our STATUS messages (0 until the embedder supplies one);
    /// the embedder samples it.
    void set_local_cpu(std::uint8_t load) noexcept { local_cpu_ = std::min<std::uint8_t>(load, 100); }

    // ---- observation -----------------------------------------------------------------------

    std::size_t connection_count() const noexcept { return conns_.size(); }
    const connection_stats& conn_stats(std::uint32_t conn) const { return conns_.at(conn).stats; }
    /// A UDP test's receive side per stream (source port), e.g. for a per-stream report.
    const stats::udp_receiver& udp_receive_stats() const noexcept { return udp_rx_stats_; }
    const endpoint& peer() const noexcept { return peer_; }
    const test_params& params() const noexcept { return params_; }

    /// Totals so far (or final, once finished).
    test_summary summary(std::optional<time_point> now = std::nullopt) const {
        test_summary s;
        s.started = started_;
        s.connections = params_.proto == protocol::udp ? params_.streams
                                                       : static_cast<std::uint32_t>(std::count_if(
                                                             conns_.begin(), conns_.end(),
                                                             [](const auto& c) { return c.in_test; }));
        const time_point end = end_time_ ? *end_time_ : (now ? *now : last_now_);
        s.elapsed = started_ ? end - start_ : duration{};
        s.tx.active = tx_active();
        s.rx.active = rx_active();
        s.tx.bytes = tx_bytes_;
        s.tx.packets = tx_packets_;
        s.rx.bytes = rx_total();
        s.rx.packets = params_.proto == protocol::udp ? udp_rx_stats_.packets() : 0;
        s.rx.lost_packets = udp_rx_stats_.lost();
        s.rx.jitter_ms = udp_rx_stats_.jitter_ns() / 1e6;
        s.tx.average_bps = stats::rate_meter::bps(s.tx.bytes, s.elapsed);
        s.rx.average_bps = stats::rate_meter::bps(s.rx.bytes, s.elapsed);
        s.tx.average10_bps = tx_meter_.average10_bps();
        s.rx.average10_bps = rx_meter_.average10_bps();
        s.tx.current_bps = tx_meter_.current_bps();
        s.rx.current_bps = rx_meter_.current_bps();
        s.local_cpu = local_cpu_;
        s.remote_cpu = remote_cpu_;
        s.status_bytes_sent = status_bytes_sent_;
        s.status_bytes_received = status_bytes_received_;
        s.status_sent = status_sent_;
        s.status_received = status_received_;
        s.reason = reason_;
        s.error = error_;
        return s;
    }

protected:
    session_core(role r, const timeouts& t, duration report_interval, const udp_send_config& udp,
                 entropy& rng, const endpoint& peer)
        : role_(r), limits_(t), report_interval_(report_interval > duration::zero() ? report_interval
                                                                                   : std::chrono::seconds(1)),
          udp_cfg_(udp), rng_(rng), peer_(peer), header_(udp_header_overhead(peer.address.family)) {}

    // ---- hooks for the roles ---------------------------------------------------------------

    /// Consume handshake bytes of `conn` from the front of `in` (advance it); leave the rest.
    virtual void handshake_input(std::uint32_t conn, time_point now, std::span<const std::byte>& in) = 0;
    /// True while `conn` still reads handshake messages.
    virtual bool in_handshake(std::uint32_t conn) const = 0;
    /// A connection closed before the test started.
    virtual void handshake_closed(std::uint32_t conn, time_point now, std::error_code ec) {
        (void)conn;
        (void)ec;
        fail(now, errc::peer_closed);
    }
    /// An extra (joining) connection was lost before the test started.
    virtual void on_extra_connection_lost(std::uint32_t conn, time_point now) { (void)conn; fail(now, errc::peer_closed); }
    /// T_join expired.
    virtual void join_expired(time_point now) { (void)now; }
    /// Random fill negotiated for the test (known from the COMMAND before the test starts):
    /// the peer's stream is then not expected to be zero-filled.
    virtual bool random_fill() const noexcept { return false; }
    /// Release ports/sockets and registrations; called exactly once, when the session ends.
    virtual void release(time_point now) { (void)now; }

    // ---- helpers for the roles -------------------------------------------------------------

    /// Buffers up to `n` bytes of the handshake message being read on `c`, taking them from the
    /// front of `in`; true once the message is complete (§13.1: bounded, surplus left in `in`).
    static bool take(detail::connection& c, std::size_t n, std::span<const std::byte>& in) {
        in = in.subspan(c.frame.fill_to(n, in));
        return c.frame.size() >= n;
    }

    /// Shared input path: handshake bytes first, then test data through the scanner.
    std::error_code feed_bytes(std::uint32_t conn, time_point now, std::span<const std::byte> in) {
        last_now_ = now;
        if (done_ || closing_) return error_;
        if (conn >= conns_.size() || !conns_[conn].open) return error_;
        while (!in.empty() && !done_ && !closing_) {
            if (in_handshake(conn)) {
                const auto before = in.size();
                handshake_input(conn, now, in);
                if (in.size() == before && in_handshake(conn)) break;  // waits for more
                continue;
            }
            data_input(conn, now, in);
            break;
        }
        return error_;
    }

    /// Shared timer path.
    std::error_code handle_timer(time_point now) {
        last_now_ = now;
        if (done_) return error_;
        if (closing_) {
            if (now >= linger_deadline_) {
                closing_ = false;
                done_ = true;
            }
            return error_;
        }
        if (hs_deadline_ && now >= *hs_deadline_) {
            fail(now, errc::handshake_timeout);
            return error_;
        }
        if (join_deadline_ && now >= *join_deadline_) {
            join_deadline_.reset();
            join_expired(now);
            if (done_ || closing_) return error_;
        }
        if (!running_) return error_;
        if (now >= next_second_) second_tick(now);
        if (now >= next_report_) report_tick(now);
        if (udp_tx_) if (auto r = adapter_.on_timer(now, tx_meter_.current_bps())) udp_pacer_.set_rate(*r, params_.udp_size, now);
        if (idle_check_ && now >= *idle_check_) idle_check(now);
        if (done_) return error_;
        if (end_deadline_ && now >= *end_deadline_) {
            finish(now, role_ == role::client && params_.duration_limit > duration::zero()
                            ? end_reason::completed
                            : end_reason::max_duration,
                   {});
            return error_;
        }
        // Pacing credit that fell due was offered by this wake-up. A driver that can write pulls
        // it now (and re-arms it by finding the next unit not yet due); one that cannot is
        // blocked and pulls when writable — either way the past due time leaves the deadline,
        // so a blocked driver is not woken again and again for it.
        if (udp_starved_) if (auto t = udp_pacer_.next_due(); t && *t <= now) udp_starved_ = false;
        for (auto& c : conns_)
            if (c.tx_starved) if (auto t = c.pacer.next_due(); t && *t <= now) c.tx_starved = false;
        return error_;
    }

    void arm_handshake(time_point now) { hs_deadline_ = now + limits_.handshake; }
    void disarm_handshake() { hs_deadline_.reset(); }
    void arm_join(time_point now) { join_deadline_ = now + limits_.join; }
    void disarm_join() { join_deadline_.reset(); }

    std::uint32_t add_conn() {
        conns_.emplace_back();
        return static_cast<std::uint32_t>(conns_.size() - 1);
    }
    bool is_primary(std::uint32_t conn) const noexcept { return conn == 0; }

    /// Ends the session with an error; `final_word` (auth failure) is flushed before closing.
    void fail(time_point now, std::error_code ec, std::span<const std::byte> final_bytes = {}) {
        if (!final_bytes.empty() && !conns_.empty() && conns_[0].open) {
            conns_[0].ctl_len = 0;
            conns_[0].queue(final_bytes);
        }
        finish(now, end_reason::failure, ec, !final_bytes.empty());
    }

    void finish(time_point now, end_reason reason, std::error_code ec, bool flush = false) {
        if (done_ || closing_) return;
        last_now_ = now;
        if (running_) {
            emit_final_report(now);
            end_time_ = now;
        }
        running_ = false;
        reason_ = reason;
        error_ = ec;
        hs_deadline_.reset();
        join_deadline_.reset();
        release(now);
        events_.push(session_closed{reason, ec});
        if (flush) {
            bool pending = false;
            for (auto& c : conns_) {
                if (c.open && c.ctl_len) pending = true;
                else c.ctl_len = 0;
            }
            if (pending) {
                closing_ = true;
                linger_deadline_ = now + limits_.linger;
                return;
            }
        }
        for (auto& c : conns_) c.ctl_len = 0;
        done_ = true;
    }

    /// Ends the session without a session_closed event (the connection was handed off).
    void retire() {
        running_ = false;
        hs_deadline_.reset();
        join_deadline_.reset();
        done_ = true;
    }

    /// Starts the test phase on every connection marked in_test.
    void begin_test(time_point now, const test_params& p) {
        params_ = p;
        started_ = true;
        running_ = true;
        start_ = now;
        last_now_ = now;
        hs_deadline_.reset();
        join_deadline_.reset();
        next_second_ = now + std::chrono::seconds(1);
        next_report_ = now + report_interval_;
        last_report_ = now;
        if (p.random_data) {
            ring_.resize(wire::payload_ring_size);
            wire::make_payload_ring(rng_, ring_);
            fill_ = wire::payload_fill{ring_};
        }
        const bool we_send = role_ == role::server ? server_sends(p.dir) : client_sends(p.dir);
        const bool peer_sends = role_ == role::server ? client_sends(p.dir) : server_sends(p.dir);

        if (p.proto == protocol::tcp) {
            std::uint32_t n = 0;
            for (const auto& c : conns_) n += c.in_test ? 1 : 0;
            const std::uint64_t per_conn = p.tx_cap ? std::max<std::uint64_t>(1, p.tx_cap / std::max(1u, n)) : 0;
            for (auto& c : conns_) {
                if (!c.in_test) continue;
                c.tx_data = we_send;
                c.rx_data = peer_sends;
                c.sends_status = peer_sends;  // the receiving side reports (§9.3)
                // A connection that already received data (the primary after an OK with a token,
                // a joined connection waiting for the others) keeps its scanner: its state (a
                // partial STATUS record, an opaque stream) is part of the same test.
                if (c.stats.rx_bytes == 0 && c.stats.status_received == 0 && !c.scanner.opaque() && !c.scanner.in_record())
                    c.scanner = tcp_scanner(p.random_data && peer_sends ? tcp_scanner::mode::opaque
                                                                         : tcp_scanner::mode::zero_fill);
                else if (p.random_data && peer_sends)
                    c.scanner.make_opaque();
                c.stats.opaque = c.scanner.opaque();
                c.pacer = pacing::pacer(udp_cfg_.burst_max);
                c.pacer.set_rate(per_conn, p.tcp_chunk, now);
                c.last_rx = now;
            }
            if (peer_sends) idle_check_ = now + limits_.idle;
        } else {
            // UDP: the control connection carries STATUS both ways, every second (§10.1).
            auto& c = conns_[0];
            c.in_test = true;
            c.sends_status = true;
            c.scanner = tcp_scanner(tcp_scanner::mode::control_only);
            c.last_rx = now;
            udp_tx_ = we_send;
            udp_rx_ = peer_sends;
            udp_seq_.assign(std::max<std::uint32_t>(1, p.udp_single_destination ? 1 : p.streams), 0);
            udp_rx_stats_ = stats::udp_receiver(std::max<std::size_t>(p.streams, 1) + 8);
            adapter_ = pacing::rate_adapter(p.tx_cap, udp_cfg_.adapt, udp_cfg_.initial);
            adapter_.start(now);
            udp_pacer_ = pacing::pacer(udp_cfg_.burst_max);
            udp_pacer_.set_rate(adapter_.rate(), p.udp_size, now);
            last_status_rx_ = now;
            idle_check_ = now + limits_.idle;
        }
        if (limits_.max_test > duration::zero()) end_deadline_ = now + limits_.max_test;
        if (role_ == role::client && p.duration_limit > duration::zero()) end_deadline_ = now + p.duration_limit;
        events_.push(test_started{p.proto, p.dir, p.proto == protocol::udp ? p.streams : count_in_test(),
                                  p.udp_port, p.user});
    }

    void push_event(event e) { events_.push(std::move(e)); }
    entropy& rng() noexcept { return rng_; }
    std::vector<detail::connection>& conns() noexcept { return conns_; }
    const std::vector<detail::connection>& conns() const noexcept { return conns_; }
    const timeouts& limits() const noexcept { return limits_; }
    bool closing() const noexcept { return closing_; }
    std::uint32_t header_overhead() const noexcept { return header_; }
    std::optional<std::uint8_t> local_cpu() const noexcept { return local_cpu_; }

    /// Enables NAT probes: one empty datagram per stream before the first data (§8.7).
    void set_nat_probes(std::uint32_t streams) noexcept { nat_probes_left_ = streams; }

    /// For the client: the destination of its datagrams is always P; the server uses P+256+k.
    std::uint16_t udp_destination(std::uint32_t stream) const noexcept {
        if (role_ == role::client) return params_.udp_port;
        if (reply_port_) return *reply_port_;
        return static_cast<std::uint16_t>(params_.udp_port + 256u + stream);
    }

private:
    bool tx_active() const noexcept {
        return role_ == role::server ? server_sends(params_.dir) : client_sends(params_.dir);
    }
    bool rx_active() const noexcept {
        return role_ == role::server ? client_sends(params_.dir) : server_sends(params_.dir);
    }
    std::uint64_t rx_total() const noexcept {
        return params_.proto == protocol::udp ? udp_rx_stats_.bytes() : tcp_rx_bytes_;
    }
    std::uint32_t count_in_test() const noexcept {
        return static_cast<std::uint32_t>(std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return c.in_test; }));
    }

    std::size_t write_chunks(connection& c, time_point now, std::span<std::byte> out) {
        const std::uint32_t s = params_.tcp_chunk;
        const auto fit = static_cast<std::uint32_t>(out.size() / s);
        if (fit == 0) return 0;
        const std::uint32_t k = c.pacer.take(now, fit);
        c.tx_starved = (k == 0);
        for (std::uint32_t i = 0; i < k; ++i) wire::fill_tcp_chunk(c.chunk_no++, out.subspan(std::size_t(i) * s, s), fill_);
        const std::uint64_t n = std::uint64_t(k) * s;
        c.stats.tx_bytes += n;
        c.report_tx += n;
        tx_bytes_ += n;
        return static_cast<std::size_t>(n);
    }

    void data_input(std::uint32_t conn, time_point now, std::span<const std::byte> in) {
        // Bytes on a joined connection before the test starts count as test data too.
        auto& c = conns_[conn];
        c.last_rx = now;
        while (!in.empty()) {
            auto r = c.scanner.step(in);
            in = in.subspan(r.consumed);
            if (r.data_bytes) {
                c.stats.rx_bytes += r.data_bytes;
                c.status_rx += r.data_bytes;
                c.report_rx += r.data_bytes;
                tcp_rx_bytes_ += r.data_bytes;
            }
            if (r.became_opaque) {
                c.stats.opaque = true;
                if (!random_fill()) events_.push(notice{make_error_code(errc::protocol_error), "peer data not zero-filled"});
            }
            if (r.protocol_error) {
                fail(now, errc::protocol_error);
                return;
            }
            if (r.status) on_status(c, now, *r.status);
        }
    }

    void on_status(connection& c, time_point now, const wire::status& s) {
        c.stats.status_received++;
        c.stats.peer_bytes = s.bytes;
        remote_cpu_ = s.cpu_load;
        status_received_++;
        status_bytes_received_ += s.bytes;
        if (params_.proto == protocol::udp) {
            last_status_rx_ = now;
            if (udp_tx_) {
                if (auto r = adapter_.on_status(now, s.bytes)) udp_pacer_.set_rate(*r, params_.udp_size, now);
            }
        }
    }

    void second_tick(time_point now) {
        // STATUS for every connection that reports (§10.1), then the one-second meters.
        for (auto& c : conns_) {
            if (!c.in_test || !c.sends_status || !c.open) continue;
            std::uint64_t received = c.status_rx;
            c.status_rx = 0;
            if (params_.proto == protocol::udp) received = udp_rx_stats_.take_interval_bytes();
            if (c.status_pending) received += c.pending_status.bytes;  // the previous one never left
            else ++c.status_seq;
            c.pending_status = wire::status{local_cpu_.value_or(0), c.status_seq, wire::status::saturate(received)};
            c.status_pending = true;
        }
        const auto tx = tx_bytes_, rx = rx_total();
        tx_meter_.push_second(tx - second_tx_);
        rx_meter_.push_second(rx - second_rx_);
        second_tx_ = tx;
        second_rx_ = rx;
        next_second_ += std::chrono::seconds(1);
        if (next_second_ <= now) next_second_ = now + std::chrono::seconds(1);  // late: re-anchor, no burst
    }

    void report_tick(time_point now) {
        emit_report(last_report_, now);
        last_report_ = now;
        next_report_ += report_interval_;
        if (next_report_ <= now) next_report_ = now + report_interval_;
    }

    void emit_final_report(time_point now) {
        if (now > last_report_) emit_report(last_report_, now, true);
        // The meters' last fragment, so the 10-second average covers the test's end.
        const auto frag = now - (next_second_ - std::chrono::seconds(1));
        if (frag > duration::zero()) {
            tx_meter_.push_second(tx_bytes_ - second_tx_, frag);
            rx_meter_.push_second(rx_total() - second_rx_, frag);
            second_tx_ = tx_bytes_;
            second_rx_ = rx_total();
        }
    }

    void emit_report(time_point from, time_point to, bool final = false) {
        interval_report r;
        r.final = final;
        r.start = from - start_;
        r.end = to - start_;
        const auto len = to - from;
        r.tx.active = tx_active();
        r.rx.active = rx_active();
        r.tx.bytes = tx_bytes_ - report_tx_base_;
        r.tx.packets = tx_packets_ - report_tx_packets_base_;
        r.rx.bytes = rx_total() - report_rx_base_;
        r.rx.packets = udp_rx_stats_.packets() - report_rx_packets_base_;
        r.rx.lost_packets = udp_rx_stats_.lost() - std::min(udp_rx_stats_.lost(), report_lost_base_);
        r.rx.jitter_ms = udp_rx_stats_.jitter_ns() / 1e6;
        r.tx.bits_per_second = stats::rate_meter::bps(r.tx.bytes, len);
        r.rx.bits_per_second = stats::rate_meter::bps(r.rx.bytes, len);
        r.local_cpu = local_cpu_;
        r.remote_cpu = remote_cpu_;
        // What the peer said it received of our data, per its one-second STATUS interval.
        std::uint64_t peer = 0;
        bool any = false, opaque = false;
        for (auto& c : conns_) {
            if (!c.in_test) continue;
            if (c.stats.peer_bytes && (params_.proto == protocol::udp || c.tx_data)) {
                peer += *c.stats.peer_bytes;
                any = true;
            }
            opaque = opaque || c.stats.opaque;
            c.stats.last_interval_tx_bytes = c.report_tx;
            c.stats.last_interval_rx_bytes = c.report_rx;
            c.report_tx = c.report_rx = 0;
        }
        if (any && !opaque) r.tx.peer_bits_per_second = peer * 8;
        report_tx_base_ = tx_bytes_;
        report_tx_packets_base_ = tx_packets_;
        report_rx_base_ = rx_total();
        report_rx_packets_base_ = udp_rx_stats_.packets();
        report_lost_base_ = udp_rx_stats_.lost();
        events_.push(r);
    }

    void idle_check(time_point now) {
        // T_idle (§12.3): UDP — no STATUS on the control connection; TCP — no byte on a
        // connection that should carry data to us.
        time_point oldest = now;
        if (params_.proto == protocol::udp) {
            oldest = last_status_rx_;
        } else {
            for (const auto& c : conns_)
                if (c.in_test && c.rx_data && c.last_rx < oldest) oldest = c.last_rx;
        }
        if (now - oldest >= limits_.idle) {
            fail(now, errc::peer_silent);
            return;
        }
        idle_check_ = oldest + limits_.idle;
    }

    void maybe_done() {
        for (const auto& c : conns_)
            if (c.open && c.ctl_len) return;
        closing_ = false;
        done_ = true;
    }

    role role_;
    timeouts limits_;
    duration report_interval_;
    udp_send_config udp_cfg_;
    entropy& rng_;
    endpoint peer_;
    std::uint32_t header_;

    std::vector<detail::connection> conns_;
    detail::event_queue events_;
    test_params params_;

    bool started_ = false;
    bool running_ = false;
    bool closing_ = false;
    bool done_ = false;
    std::optional<end_reason> reason_;
    std::error_code error_;

    time_point start_{};
    time_point last_now_{};
    std::optional<time_point> end_time_;
    std::optional<time_point> hs_deadline_;
    std::optional<time_point> join_deadline_;
    std::optional<time_point> idle_check_;
    std::optional<time_point> end_deadline_;
    time_point linger_deadline_{};
    time_point next_second_{};
    time_point next_report_{};
    time_point last_report_{};
    time_point last_status_rx_{};

    // payload
    std::vector<std::byte> ring_;
    wire::payload_fill fill_{};

    // UDP
    bool udp_tx_ = false;
    bool udp_rx_ = false;
    bool udp_starved_ = false;
    pacing::pacer udp_pacer_;
    pacing::rate_adapter adapter_;
    std::vector<std::uint32_t> udp_seq_;
    std::uint32_t udp_rr_ = 0;
    std::uint32_t nat_probes_left_ = 0;
    std::optional<std::uint16_t> reply_port_;
    stats::udp_receiver udp_rx_stats_{0};

    // counters
    std::uint64_t tx_bytes_ = 0;
    std::uint64_t tx_packets_ = 0;
    std::uint64_t tcp_rx_bytes_ = 0;
    std::uint64_t second_tx_ = 0, second_rx_ = 0;
    std::uint64_t report_tx_base_ = 0, report_rx_base_ = 0;
    std::uint64_t report_tx_packets_base_ = 0, report_rx_packets_base_ = 0, report_lost_base_ = 0;
    stats::rate_meter tx_meter_, rx_meter_;
    std::optional<std::uint8_t> local_cpu_;
    std::optional<std::uint8_t> remote_cpu_;
    std::uint64_t status_bytes_sent_ = 0, status_bytes_received_ = 0;
    std::uint64_t status_sent_ = 0, status_received_ = 0;
};

} // namespace detail
} // namespace btest
