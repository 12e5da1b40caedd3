// What every btest session is, in either role: its connections and their output queues, the
// test phase (TCP streams with STATUS between chunks, UDP datagrams with pacing and adaptation,
// the STATUS schedule, statistics and report intervals), the byte budget, the one deadline and
// the end of the test. server_session and client_session add their handshakes (PROTOCOL §4,
// §5); a transport drives either through this surface:
//
//   inputs   feed(), feed_datagram(), on_timer(), on_connection_closed(), stop() — each returns
//            the sticky error (empty while the session is healthy);
//   outputs  poll_event(), poll_request(), write_to(), next_datagram(), read_limit(),
//            next_deadline() — drain them after every input.
//
// Thread safety: one thread at a time per session. Rules are cited by PROTOCOL section.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/entropy.hpp"
#include "btest/core/error.hpp"
#include "btest/core/time.hpp"
#include "btest/pacing/pacer.hpp"
#include "btest/session/budget.hpp"
#include "btest/session/config.hpp"
#include "btest/session/detail/connection.hpp"
#include "btest/session/params.hpp"
#include "btest/session/detail/event_queue.hpp"
#include "btest/session/detail/reporting.hpp"
#include "btest/session/detail/udp_path.hpp"
#include "btest/session/event.hpp"
#include "btest/session/request.hpp"
#include "btest/session/stats.hpp"
#include "btest/session/tcp_scanner.hpp"
#include "btest/stats/udp_receiver.hpp"
#include "btest/wire/payload.hpp"
#include "btest/wire/status.hpp"

namespace btest {

/// Smallest write_to() buffer that can carry any chunk (tx_size ≤ 65535) with a STATUS ahead
/// of it; transports typically pass 256 KiB.
inline constexpr std::size_t min_write_buffer = 65535 + 512;
/// plan_read(): bytes read past a chunk boundary to see what follows it (a STATUS and the first
/// bytes of the next chunk).
inline constexpr std::size_t read_head = 64;
/// Buffer next_datagram() needs for any datagram size.
inline constexpr std::size_t max_datagram_payload = 65535;

class session {
public:
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    virtual ~session() = default;

    // ---- outputs ---------------------------------------------------------------------------

    /// Bytes to write on connection `conn`: queued control frames, then (in the test) a due
    /// STATUS and as many whole data chunks as fit, are due and fit the byte budget. Every byte
    /// returned must be written before the next call for this connection (STATUS only goes
    /// between chunks). Returns 0 when there is nothing to write now. A sender whose budget is
    /// spent ends the test here (poll_event() then yields session_closed).
    std::size_t write_to(std::uint32_t conn, time_point now, std::span<std::byte> out) {
        return write_parts(conn, now, out, 0).literal;
    }

    /// What write_parts() produced for one connection.
    struct tcp_parts {
        std::size_t literal = 0;  ///< bytes written into `out`: send them first
        std::size_t zeros = 0;    ///< then this many zero bytes of chunk payload, not written
    };
    /// write_to() for a transport with a zero source of its own (a file of zeros it sends by
    /// reference): the same bytes, but whole zero-filled chunks, up to `zero_room` bytes of
    /// them, are not written into `out` and come back as a count. `literal` bytes of `out`
    /// followed by `zeros` zero bytes are exactly what write_to() would have returned, and the
    /// same rule holds: all of them are written before the next call for this connection. With
    /// random fill (or `zero_room` below one chunk) the chunks are literal bytes as usual.
    tcp_parts write_parts(std::uint32_t conn, time_point now, std::span<std::byte> out, std::size_t zero_room) {
        if (conn >= conns_.size() || done_) return {};
        auto& c = conns_[conn];
        if (!c.open) return {};
        std::size_t n = 0;
        if (c.ctl_len && !out.empty()) {  // (an empty span may have no storage at all)
            n = std::min(c.ctl_len, out.size());
            std::memcpy(out.data(), c.ctl.data(), n);
            std::memmove(c.ctl.data(), c.ctl.data() + n, c.ctl_len - n);
            c.ctl_len -= n;
            if (closing_) {
                maybe_done();
                return {n, 0};
            }
            if (c.ctl_len) return {n, 0};  // the rest of the frame first
        }
        if (!running_ || !c.in_test) return {n, 0};
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
        if (!c.tx_data || params_.proto != protocol::tcp) return {n, 0};
        if (!fill_.random() && zero_room >= params_.tcp_chunk) return {n, write_chunks(c, now, zero_room, nullptr)};
        n += write_chunks(c, now, out.size() - n, out.data() + n);
        return {n, 0};
    }

    /// The next UDP datagram to send, written into `out` (≥ max_datagram_payload bytes for any
    /// size), or nullopt when none is due. Unpaced senders always have one until the test ends
    /// (or its byte budget is spent: then the test ends here, as in write_to()).
    std::optional<datagram> next_datagram(time_point now, std::span<std::byte> out) {
        if (!running_ || params_.proto != protocol::udp || !udp_.sends()) return std::nullopt;
        if (!udp_.probe_next() && budget_.limited() && udp_.wire_size() > budget_.tx_room()) {
            out_of_budget(now);
            return std::nullopt;
        }
        auto d = udp_.next(now, out, fill_);
        if (d && d->size > 0) {
            const std::uint64_t wire_bytes = std::uint64_t(d->size) + udp_.header();
            tx_bytes_ += wire_bytes;
            ++tx_packets_;
            spend_tx(wire_bytes);
        }
        return d;
    }

    /// Drain after every call until nullopt.
    std::optional<event> poll_event() { return events_.pop(); }

    /// What the session needs from the transport (request.hpp); drain after every call.
    std::optional<request> poll_request() {
        if (requests_.empty()) return std::nullopt;
        request r = std::move(requests_.front());
        requests_.erase(requests_.begin());
        return r;
    }

    /// TCP bytes the session accepts on `conn` now: with a receive budget that can no longer
    /// grow, what is left of it plus one byte (so that the read that crosses it ends the test);
    /// while a refill may still come, only what is left — 0 when nothing is: the transport then
    /// stops reading (the peer waits in TCP flow control) until add_budget(), after which this
    /// is more than 0 again (more room, or the one byte past when the refill brought none) and
    /// the transport reads on. Without a budget, unlimited. A transport reads no more than this
    /// per feed(), so a quota holds to the byte.
    std::size_t read_limit(std::uint32_t conn) const noexcept {
        (void)conn;
        // Only TCP data counts against it: a UDP test's control connection, and a side that
        // receives no data (its peer's STATUS records), read freely.
        if (!budget_.limited() || !budget_counts_reads_) return std::numeric_limits<std::size_t>::max();
        const std::uint64_t room = budget_.rx_room();
        const std::uint64_t past = budget_.rx_final() ? 1 : 0;
        return room >= std::numeric_limits<std::size_t>::max() - past ? std::numeric_limits<std::size_t>::max()
                                                                      : static_cast<std::size_t>(room + past);
    }

    /// How a transport reads connection `conn` next (see plan_read()).
    struct read_plan {
        std::size_t discard = 0;  ///< > 0: drop this many bytes unseen, then call discarded()
        std::size_t read = 0;     ///< otherwise: read up to this many and feed() them
    };
    /// The cheapest read the protocol allows on `conn` now, within read_limit(). Where the
    /// stream is known to hold only data for a while, that much may be dropped unseen
    /// (`discard`, e.g. recv() with MSG_TRUNC): all of a random-fill (opaque) stream, which
    /// carries no STATUS (§9.4); the rest of the current chunk of a zero-fill stream that kept
    /// to the sender's chunk grid (tcp_scanner), once the grid is trusted — a STATUS seen on it
    /// [Design]. A peer we send no data has nothing to report and sends no STATUS (§9.3): its
    /// stream is trusted from the start, and whole chunks after the current one, up to
    /// `max_discard` bytes in all, go with it; the head read at the next boundary still sees a
    /// STATUS it sends anyway (if it kept to the grid) or stray bytes. A chunk rest is offered
    /// only when it is at least `min_discard` bytes; below that, `read` is cut to end just past
    /// the next chunk boundary, so the read after it can drop the next chunk.
    read_plan plan_read(std::uint32_t conn, std::size_t min_discard, std::size_t max_discard = 0) const noexcept {
        const std::size_t limit = read_limit(conn);
        if (!running_ || params_.proto != protocol::tcp || conn >= conns_.size()) return {0, limit};
        const auto& c = conns_[conn];
        if (!c.in_test || !c.rx_data || !c.open) return {0, limit};
        if (c.scanner.opaque()) return {limit, 0};
        if (!c.scanner.on_grid() || params_.tcp_chunk < min_discard) return {0, limit};
        if (c.tx_data && c.scanner.grid_statuses() == 0) return {0, limit};  // not trusted yet
        std::size_t rest = c.scanner.chunk_rest();
        if (!c.tx_data && rest > 0 && max_discard > rest)
            rest += (max_discard - rest) / params_.tcp_chunk * params_.tcp_chunk;  // whole chunks after it
        if (rest >= std::max<std::size_t>(min_discard, 1)) return {std::min(rest, limit), 0};
        // The head of the next item: a STATUS and the first bytes of the chunk after it.
        return {0, std::min(limit, rest + read_head)};
    }
    /// Bytes a read plan's `discard` let the transport drop (n ≤ that): counted as data, exactly
    /// as feeding them would have. Returns the sticky error.
    std::error_code discarded(std::uint32_t conn, time_point now, std::size_t n) {
        last_now_ = now;
        if (done_ || closing_ || conn >= conns_.size() || !conns_[conn].open || n == 0) return error_;
        auto& c = conns_[conn];
        c.last_rx = now;
        c.scanner.skip(n);
        count_rx(c, now, n);
        return error_;
    }

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
            take(reporting_.next_report());
            if (idle_check_) take(*idle_check_);
            if (end_deadline_) take(*end_deadline_);
            if (auto t = udp_.due()) take(*t);
            for (const auto& c : conns_)
                if (c.tx_starved) if (auto t = c.pacer.next_due()) take(*t);
        }
        return d;
    }

    /// True once the session is over and its last bytes were taken by write_to(): close every
    /// connection and socket, and release what the transport gave it (UDP ports, sockets).
    bool finished() const noexcept { return done_; }
    /// The failure, if the session ended in one (sticky).
    std::error_code error() const noexcept { return error_; }
    bool running() const noexcept { return running_; }

    // ---- inputs ----------------------------------------------------------------------------

    /// Bytes received on connection `conn`. Takes all of them (holding at most one bounded
    /// partial frame); returns the sticky error.
    std::error_code feed(std::uint32_t conn, time_point now, std::span<const std::byte> in) {
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

    /// A UDP datagram's payload received from `src` on the test's socket `stream` (client:
    /// the socket bound at P+256+stream; server: 0). Datagrams from another IP than the
    /// peer's, outside the test, or shorter than 4 bytes are dropped (PROTOCOL §8.2, §13.9).
    std::error_code feed_datagram(time_point now, const endpoint& src, std::span<const std::byte> payload,
                                  std::uint32_t stream = 0) {
        if (!running_ || params_.proto != protocol::udp || !udp_.receives()) return error_;
        if (src.address != peer_.address) return error_;
        if (const auto n = udp_.receive(now, src, payload, stream); n && budget_.limited()) spend_rx(now, n);
        return error_;
    }

    /// Call at or after next_deadline(); early or repeated calls are harmless.
    std::error_code on_timer(time_point now) {
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
        if (now >= reporting_.next_report()) report_tick(now);
        udp_.tick(now, reporting_.tx_meter().current_bps());  // a silent receiver (§10.3)
        if (idle_check_ && now >= *idle_check_) idle_check(now);
        if (done_) return error_;
        if (end_deadline_ && now >= *end_deadline_) {
            finish(now, role_ == detail::role::client && params_.duration_limit > duration::zero()
                            ? end_reason::completed
                            : end_reason::max_duration,
                   {});
            return error_;
        }
        // Pacing credit that fell due was offered by this wake-up. A driver that can write pulls
        // it now (and re-arms it by finding the next unit not yet due); one that cannot is
        // blocked and pulls when writable — either way the past due time leaves the deadline,
        // so a blocked driver is not woken again and again for it.
        udp_.offered(now);
        for (auto& c : conns_)
            if (c.tx_starved) if (auto t = c.pacer.next_due(); t && *t <= now) c.tx_starved = false;
        return error_;
    }

    /// The transport saw EOF (ec empty), a reset or an I/O error on `conn`. Any connection
    /// ending ends the whole session (PROTOCOL §12.1).
    std::error_code on_connection_closed(std::uint32_t conn, time_point now, std::error_code ec = {}) {
        if (conn >= conns_.size() || done_) return error_;
        conns_[conn].open = false;
        if (closing_) {
            maybe_done();
            return error_;
        }
        if (!conns_[conn].in_test && conn != 0 && !running_) {
            on_extra_connection_lost(conn, now);
            return error_;
        }
        if (running_) {
            finish(now, end_reason::peer_closed, {});
            return error_;
        }
        handshake_closed(conn, now, ec);
        return error_;
    }

    /// Ends the test now: everything is closed, nothing more is sent (PROTOCOL §12.1). `why`
    /// is how the summary says it ended: stopped (Ctrl-C, a server shutting down), or a reason
    /// the embedder decided (max_duration, quota_exhausted, quota_unavailable, ...); not failure.
    std::error_code stop(time_point now, end_reason why = end_reason::stopped) {
        assert(why != end_reason::failure);
        if (!done_ && !closing_) finish(now, why == end_reason::failure ? end_reason::stopped : why, {});
        return error_;
    }

    /// Tops up the byte budget granted at admission (the answer to a budget_request);
    /// `if_exhausted` says how the test ends should this not be enough.
    std::error_code add_budget(time_point now, const byte_budget& more, budget_end if_exhausted = budget_end::quota_exhausted) {
        (void)now;
        if (!done_ && !closing_) budget_.add(more, if_exhausted);
        return error_;
    }

    /// The CPU load (0..100) sent in our STATUS messages (0 until the embedder supplies one);
    /// the embedder samples it.
    void set_local_cpu(std::uint8_t load) noexcept { local_cpu_ = std::min<std::uint8_t>(load, 100); }

    // ---- observation -----------------------------------------------------------------------

    std::size_t connection_count() const noexcept { return conns_.size(); }
    const connection_stats& conn_stats(std::uint32_t conn) const { return conns_.at(conn).stats; }
    /// A UDP test's receive side per stream (source port), e.g. for a per-stream report.
    const stats::udp_receiver& udp_receive_stats() const noexcept { return udp_.receiver(); }
    const endpoint& peer() const noexcept { return peer_; }
    /// What is left of the byte budget (all nullopt: no budget).
    const byte_budget& budget_left() const noexcept { return budget_.left(); }
    /// The protocol, direction and stream count of the test (valid once it started).
    const test_params& params() const noexcept { return params_; }

    /// Totals so far (or final, once finished).
    test_summary summary(std::optional<time_point> now = std::nullopt) const {
        test_summary s;
        s.started = started_;
        s.connections = params_.proto == protocol::udp ? params_.streams : count_in_test();
        const time_point end = end_time_ ? *end_time_ : (now ? *now : last_now_);
        s.elapsed = started_ ? end - start_ : duration{};
        const auto c = snapshot();
        s.tx.active = tx_active();
        s.rx.active = rx_active();
        s.tx.bytes = c.tx_bytes;
        s.tx.packets = c.tx_packets;
        s.rx.bytes = c.rx_bytes;
        s.rx.packets = params_.proto == protocol::udp ? c.rx_packets : 0;
        s.rx.lost_packets = c.lost;
        s.rx.jitter_ms = c.jitter_ms;
        s.tx.average_bps = stats::rate_meter::bps(s.tx.bytes, s.elapsed);
        s.rx.average_bps = stats::rate_meter::bps(s.rx.bytes, s.elapsed);
        s.tx.average10_bps = reporting_.tx_meter().average10_bps();
        s.rx.average10_bps = reporting_.rx_meter().average10_bps();
        s.tx.current_bps = reporting_.tx_meter().current_bps();
        s.rx.current_bps = reporting_.rx_meter().current_bps();
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
    /// TCP connection `conn`'s data stream begins here, before the test starts (its handshake is
    /// over: a joined connection whose peer may send before the last connection joins): follow
    /// the sender's chunk grid of `chunk` bytes from here, so that data arriving before the
    /// start leaves the grid known (plan_read). No effect once data or a record arrived.
    void follow_chunk_grid(std::uint32_t conn, std::uint32_t chunk) noexcept {
        if (conn >= conns_.size()) return;
        auto& c = conns_[conn];
        if (c.stats.rx_bytes == 0 && c.stats.status_received == 0 && !c.scanner.in_record())
            c.scanner.track_chunks(chunk);
    }

    session(detail::role r, const timeouts& t, duration report_interval, const udp_send_config& udp, entropy& rng,
            const endpoint& peer)
        : role_(r), limits_(t), udp_cfg_(udp), rng_(rng), peer_(peer), reporting_(report_interval),
          udp_(r, udp_header_overhead(peer.address.family)) {}

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
    /// The session is over (called exactly once): let go of registrations and secrets.
    virtual void on_end() {}

    // ---- helpers for the roles -------------------------------------------------------------

    /// Buffers up to `n` bytes of the handshake message being read on `c`, taking them from the
    /// front of `in` (advancing it); true once the message is complete (§13.1: bounded, surplus
    /// left in `in`).
    static bool take(detail::connection& c, std::size_t n, std::span<const std::byte>& in) {
        in = in.subspan(c.frame.fill_to(n, in));
        return c.frame.size() >= n;
    }

    void arm_handshake(time_point now) { hs_deadline_ = now + limits_.handshake; }
    void disarm_handshake() { hs_deadline_.reset(); }
    void arm_join(time_point now) { join_deadline_ = now + limits_.join; }

    std::uint32_t add_conn() {
        conns_.emplace_back();
        return static_cast<std::uint32_t>(conns_.size() - 1);
    }

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
        requests_.clear();
        on_end();
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
        reporting_.start(now);
        if (p.random_data) {
            ring_.resize(wire::payload_ring_size);
            wire::make_payload_ring(rng_, ring_);
            fill_ = wire::payload_fill{ring_};
        }
        const bool we_send = tx_active();
        const bool peer_sends = rx_active();

        if (p.proto == protocol::tcp) {
            const std::uint32_t n = count_in_test();
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
                // The chunk grid is followed from a stream's first byte only: here, or where the
                // stream began before the start (follow_chunk_grid(), a joined connection).
                if (c.stats.rx_bytes == 0 && !c.scanner.in_record() && c.stats.status_received == 0)
                    c.scanner.track_chunks(p.tcp_chunk);
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
            udp_.start(p, udp_cfg_, we_send, peer_sends, now);
            if (nat_probes_) udp_.set_nat_probes(nat_probes_);
            last_status_rx_ = now;
            idle_check_ = now + limits_.idle;
        }
        if (limits_.max_test > duration::zero()) end_deadline_ = now + limits_.max_test;
        if (role_ == detail::role::client && p.duration_limit > duration::zero()) end_deadline_ = now + p.duration_limit;
        events_.push(test_started{p.proto, p.dir, p.proto == protocol::udp ? p.streams : count_in_test(), p.udp_port, p.user});
    }

    /// The byte budget of the test (before begin_test); below `refill_below` bytes left a
    /// budget_request follows.
    /// `tcp_receiver`: the test receives TCP data (what read_limit() holds back).
    void grant_budget(const byte_budget& b, std::uint64_t refill_below, budget_end end, bool tcp_receiver) noexcept {
        budget_.grant(b, refill_below, end);
        budget_counts_reads_ = tcp_receiver;
    }

    void push_event(event e) { events_.push(std::move(e)); }
    template <class Request>
    void push_request(Request r) {
        // Built in place: g++ 12 warns (falsely) about moving a variant of trivial types.
        requests_.emplace_back(std::in_place_type<Request>, std::move(r));
    }
    entropy& rng() noexcept { return rng_; }
    std::vector<detail::connection>& conns() noexcept { return conns_; }
    const std::vector<detail::connection>& conns() const noexcept { return conns_; }
    bool closing() const noexcept { return closing_; }

    /// Enables NAT probes: one empty datagram per stream before the first data (§8.7).
    void set_nat_probes(std::uint32_t streams) noexcept { nat_probes_ = streams; }

private:
    bool tx_active() const noexcept {
        return role_ == detail::role::server ? server_sends(params_.dir) : client_sends(params_.dir);
    }
    bool rx_active() const noexcept {
        return role_ == detail::role::server ? client_sends(params_.dir) : server_sends(params_.dir);
    }
    std::uint64_t rx_total() const noexcept {
        return params_.proto == protocol::udp ? udp_.receiver().bytes() : tcp_rx_bytes_;
    }
    std::uint32_t count_in_test() const noexcept {
        return static_cast<std::uint32_t>(std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return c.in_test; }));
    }
    detail::counter_snapshot snapshot() const noexcept {
        const auto& r = udp_.receiver();
        return {tx_bytes_, tx_packets_, rx_total(), r.packets(), r.lost(), r.jitter_ns() / 1e6};
    }

    // ---- the byte budget ---------------------------------------------------------------------

    void spend_tx(std::uint64_t n) {
        if (!budget_.limited()) return;
        budget_.spend_tx(n);
        if (budget_.refill_due()) push_request(budget_request{});
    }
    void spend_rx(time_point now, std::uint64_t n) {
        const bool over = budget_.spend_rx(n);
        if (budget_.refill_due()) push_request(budget_request{});
        if (over) out_of_budget(now, /*receiving=*/true);
    }
    /// A sender's next unit does not fit (or a receiver went past): a sender with a refill on
    /// its way waits for it; otherwise the test ends as the budget says.
    void out_of_budget(time_point now, bool receiving = false) {
        if (!receiving && budget_.refill_pending()) return;
        finish(now, budget_.end() == budget_end::quota_unavailable ? end_reason::quota_unavailable : end_reason::quota_exhausted, {});
    }

    // ---- TCP data ------------------------------------------------------------------------------

    /// Whole chunks that are due and fit `room` bytes, written at `dst` (nullptr: zero fill
    /// the transport supplies itself). Returns their bytes.
    std::size_t write_chunks(detail::connection& c, time_point now, std::size_t room, std::byte* dst) {
        const std::uint32_t s = params_.tcp_chunk;
        auto fit = static_cast<std::uint32_t>(std::min<std::size_t>(room / s, std::numeric_limits<std::uint32_t>::max()));
        if (fit == 0) return 0;
        if (budget_.limited()) {
            const std::uint64_t affordable = budget_.tx_room() / s;  // never past the budget, zeros or not
            if (affordable == 0) {
                out_of_budget(now);
                return 0;
            }
            fit = static_cast<std::uint32_t>(std::min<std::uint64_t>(fit, affordable));
        }
        const std::uint32_t k = c.pacer.take(now, fit);
        c.tx_starved = (k == 0);
        if (dst)
            for (std::uint32_t i = 0; i < k; ++i) wire::fill_tcp_chunk(c.chunk_no + i, std::span<std::byte>(dst + std::size_t(i) * s, s), fill_);
        c.chunk_no += k;
        const std::uint64_t n = std::uint64_t(k) * s;
        c.stats.tx_bytes += n;
        c.report_tx += n;
        tx_bytes_ += n;
        spend_tx(n);
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
                count_rx(c, now, r.data_bytes);
                if (done_ || closing_) return;
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

    void count_rx(detail::connection& c, time_point now, std::uint64_t n) {
        c.stats.rx_bytes += n;
        c.status_rx += n;
        c.report_rx += n;
        tcp_rx_bytes_ += n;
        if (budget_.limited()) spend_rx(now, n);
    }

    void on_status(detail::connection& c, time_point now, const wire::status& s) {
        c.stats.status_received++;
        c.stats.peer_bytes = s.bytes;
        remote_cpu_ = s.cpu_load;
        status_received_++;
        status_bytes_received_ += s.bytes;
        if (params_.proto == protocol::udp) {
            last_status_rx_ = now;
            udp_.on_status(s.bytes, now);
        }
    }

    // ---- ticks ---------------------------------------------------------------------------------

    void second_tick(time_point now) {
        // STATUS for every connection that reports (§10.1), then the one-second meters.
        for (auto& c : conns_) {
            if (!c.in_test || !c.sends_status || !c.open) continue;
            std::uint64_t received = c.status_rx;
            c.status_rx = 0;
            if (params_.proto == protocol::udp) received = udp_.receiver().take_interval_bytes();
            if (c.status_pending) received += c.pending_status.bytes;  // the previous one never left
            else ++c.status_seq;
            c.pending_status = wire::status{local_cpu_.value_or(0), c.status_seq, wire::status::saturate(received)};
            c.status_pending = true;
        }
        reporting_.second(snapshot());
        next_second_ += std::chrono::seconds(1);
        if (next_second_ <= now) next_second_ = now + std::chrono::seconds(1);  // late: re-anchor, no burst
    }

    void report_tick(time_point now) {
        emit_report(reporting_.last_report(), now);
        reporting_.advance(now);
    }

    void emit_final_report(time_point now) {
        if (now > reporting_.last_report()) emit_report(reporting_.last_report(), now, true);
        reporting_.last_fragment(snapshot(), now - (next_second_ - std::chrono::seconds(1)));
    }

    void emit_report(time_point from, time_point to, bool final = false) {
        auto r = reporting_.report(start_, from, to, snapshot(), tx_active(), rx_active(), final);
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

    detail::role role_;
    timeouts limits_;
    udp_send_config udp_cfg_;
    entropy& rng_;
    endpoint peer_;

    std::vector<detail::connection> conns_;
    detail::event_queue events_;
    std::vector<request> requests_;
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
    time_point last_status_rx_{};

    // payload
    std::vector<std::byte> ring_;
    wire::payload_fill fill_{};

    detail::reporting reporting_;
    detail::udp_path udp_;
    std::uint32_t nat_probes_ = 0;
    detail::budget_meter budget_;
    bool budget_counts_reads_ = false;  ///< read_limit() applies: a TCP test whose data we receive

    // counters
    std::uint64_t tx_bytes_ = 0;
    std::uint64_t tx_packets_ = 0;
    std::uint64_t tcp_rx_bytes_ = 0;
    std::optional<std::uint8_t> local_cpu_;
    std::optional<std::uint8_t> remote_cpu_;
    std::uint64_t status_bytes_sent_ = 0, status_bytes_received_ = 0;
    std::uint64_t status_sent_ = 0, status_received_ = 0;
};

} // namespace btest
