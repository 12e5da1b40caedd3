// The UDP side of a test — PROTOCOL §8, §10.3, §11: what this side sends (the schedule, speed
// adaptation to the peer's STATUS, a sequence number per stream, NAT probes, where datagrams
// go) and what it receives (bytes, loss with reordering, jitter, per stream). Kit-internal:
// session.hpp owns one and asks it for datagrams; the counters and the budget stay there.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/time.hpp"
#include "btest/pacing/adaptation.hpp"
#include "btest/pacing/pacer.hpp"
#include "btest/session/config.hpp"
#include "btest/session/detail/connection.hpp"
#include "btest/session/params.hpp"
#include "btest/stats/udp_receiver.hpp"
#include "btest/wire/payload.hpp"

namespace btest {

/// One UDP datagram to send (see session::next_datagram()).
struct datagram {
    std::size_t size = 0;      ///< UDP payload bytes written to the caller's buffer (0: NAT probe)
    std::uint32_t stream = 0;  ///< client: the sending socket, 0..N−1 (bound at P+256+stream)
    std::uint16_t port = 0;    ///< destination port (server: P+256+k or the peer's source; client: P)
};

namespace detail {

class udp_path {
public:
    explicit udp_path(role r, std::uint32_t header) : role_(r), header_(header) {}

    /// The test starts: `send`/`receive` say which way data flows for this side.
    void start(const test_params& p, const udp_send_config& cfg, bool send, bool receive, time_point now) {
        tx_ = send;
        rx_ = receive;
        port_ = p.udp_port;
        seq_.assign(std::max<std::uint32_t>(1, p.udp_single_destination ? 1 : p.streams), 0);
        receiver_ = stats::udp_receiver(std::max<std::size_t>(p.streams, 1) + 8);
        adapter_ = pacing::rate_adapter(p.tx_cap, cfg.adapt, cfg.initial);
        adapter_.start(now);
        pacer_ = pacing::pacer(cfg.burst_max);
        pacer_.set_rate(adapter_.rate(), p.udp_size, now);
        unit_ = p.udp_size;
        payload_ = wire::udp_payload_size(p.udp_size, header_);
        reply_to_source_ = p.udp_reply_to_source;
    }

    bool sends() const noexcept { return tx_; }
    bool receives() const noexcept { return rx_; }
    /// IP + UDP header bytes H counted with each datagram (§8.3).
    std::uint32_t header() const noexcept { return header_; }
    /// Wire bytes of one data datagram we send (payload + H).
    std::uint64_t wire_size() const noexcept { return std::uint64_t(payload_) + header_; }

    /// One empty datagram per stream before the first data (§8.7).
    void set_nat_probes(std::uint32_t streams) noexcept { nat_probes_left_ = streams; }

    /// The next datagram to send, written into `out`: a NAT probe, or a data datagram when one
    /// is due (`fill` writes its payload). nullopt when none is due or `out` is too short.
    std::optional<datagram> next(time_point now, std::span<std::byte> out, const wire::payload_fill& fill) {
        if (!tx_) return std::nullopt;
        if (nat_probes_left_ > 0) {
            --nat_probes_left_;
            const auto stream = static_cast<std::uint32_t>(nat_probes_left_);
            return datagram{0, stream, destination(stream)};
        }
        if (out.size() < payload_) return std::nullopt;
        if (pacer_.take(now, 1) == 0) {
            starved_ = true;
            return std::nullopt;
        }
        starved_ = false;
        const std::uint32_t stream = rr_;
        if (++rr_ == seq_.size()) rr_ = 0;
        const std::uint32_t seq = ++seq_[stream];
        wire::fill_udp_packet(seq, out.first(payload_), fill);
        return datagram{payload_, stream, destination(stream)};
    }
    /// True when the next call would produce a NAT probe (which costs no budget).
    bool probe_next() const noexcept { return nat_probes_left_ > 0; }

    /// A datagram from the peer's IP arrived on our socket `socket`. Returns the bytes it
    /// counts for (payload + H; 0 for one too short to carry a sequence number).
    std::uint64_t receive(time_point now, const endpoint& src, std::span<const std::byte> payload, std::uint32_t socket) {
        if (reply_to_source_ && !reply_port_) reply_port_ = src.port;
        return receiver_.on_datagram(now, src.port, payload, header_, socket) ? payload.size() + header_ : 0;
    }

    /// The `bytes` of a STATUS from the peer: adapt our rate (§10.3).
    void on_status(std::uint32_t peer_bytes, time_point now) {
        if (!tx_) return;
        if (auto r = adapter_.on_status(now, peer_bytes)) pacer_.set_rate(*r, unit_, now);
    }
    /// The timer fired: a receiver whose STATUS stopped makes us back off (§10.3);
    /// `sent_bps` is what we sent over the last second.
    void tick(time_point now, std::uint64_t sent_bps) {
        if (!tx_) return;
        if (auto r = adapter_.on_timer(now, sent_bps)) pacer_.set_rate(*r, unit_, now);
    }

    /// When this side needs the timer: pacing credit falling due (if the last next() found
    /// none) or the next back-off step of a silent receiver; nullopt otherwise.
    std::optional<time_point> due() const noexcept {
        if (!tx_) return std::nullopt;
        std::optional<time_point> d = starved_ ? pacer_.next_due() : std::nullopt;
        if (auto b = adapter_.next_backoff(); b && (!d || *b < *d)) d = b;
        return d;
    }
    /// A wake-up at `now` offered the credit that fell due: the driver pulls it (or, blocked,
    /// pulls when writable) — either way that time leaves the deadline.
    void offered(time_point now) noexcept {
        if (starved_) if (auto t = pacer_.next_due(); t && *t <= now) starved_ = false;
    }

    const stats::udp_receiver& receiver() const noexcept { return receiver_; }
    stats::udp_receiver& receiver() noexcept { return receiver_; }

private:
    /// For the client the destination of its datagrams is always P; the server uses P+256+k
    /// (or the port the peer's first datagram came from, §8.7).
    std::uint16_t destination(std::uint32_t stream) const noexcept {
        if (role_ == role::client) return port_;
        if (reply_port_) return *reply_port_;
        return static_cast<std::uint16_t>(port_ + 256u + stream);
    }

    role role_;
    std::uint32_t header_;
    bool tx_ = false;
    bool rx_ = false;
    bool starved_ = false;
    bool reply_to_source_ = false;
    std::uint16_t port_ = 0;
    std::uint32_t unit_ = 1500;
    std::uint32_t payload_ = 0;
    pacing::pacer pacer_;
    pacing::rate_adapter adapter_;
    std::vector<std::uint32_t> seq_;
    std::uint32_t rr_ = 0;
    std::uint32_t nat_probes_left_ = 0;
    std::optional<std::uint16_t> reply_port_;
    stats::udp_receiver receiver_{0};
};

} // namespace detail
} // namespace btest
