// A slow UDP receiver for the memory world (PROTOCOL §10.3 "Silent receiver"): a raw peer that
// runs a UDP receive test's handshake without auth, takes the server's datagrams into a
// bounded socket buffer that it drains at most N datagrams a second (the rest is dropped, as
// a kernel drops datagrams for a full socket), and sends its STATUS honestly, late, or not at
// all after a while. What it handled is what an honest STATUS reports.
//
//   memory::world w{memory::world_config{}};
//   memory::slow_receiver r{w, {.datagrams_per_second = 20'000, .mode = memory::slow_receiver::status_mode::stop}};
//   r.run_for(8s);     // virtual time; STATUS go out on the receiver's schedule
//
// Single-threaded like the world; time is the world's virtual clock.
#pragma once

#include <cassert>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "btest/core/bytes.hpp"
#include "btest/transport/memory/world.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/status.hpp"

namespace btest::memory {

/// A 10 Gbit/s interface and 1 ms each way: a fast LAN in front of a slow receiver.
inline link_model receiver_link() {
    link_model l;
    l.nic_bits_per_second = 10'000'000'000ULL;
    l.delay = std::chrono::milliseconds(1);
    return l;
}

class slow_receiver {
public:
    enum class status_mode : std::uint8_t {
        honest,  ///< a STATUS every second with the bytes handled since the previous one
        late,    ///< the same, but only every `late_every` (an event loop that lags)
        stop,    ///< honest until `stop_after`, then none (drowned, crashed, control path lost)
        none,    ///< never a STATUS
    };
    struct config {
        std::uint64_t datagrams_per_second = 20'000;  ///< N: what the receiver handles at most
        std::size_t buffer_datagrams = 256;           ///< its socket buffer, in datagrams
        status_mode mode = status_mode::honest;
        duration late_every = std::chrono::milliseconds(2500);
        duration stop_after = std::chrono::seconds(2);
        std::uint16_t tx_size = 1500;                 ///< the server's datagram size S
        std::uint32_t remote_tx_speed = 0;            ///< the server's cap (0 = unlimited)
        ip_address address = ip_address::v4(10, 9, 8, 7);
        link_model link = receiver_link();
    };

    /// Connects and runs the handshake (HELLO, COMMAND: UDP, server transmits; OK, PORT), then
    /// binds P + 256; started() tells whether the server let the test start.
    slow_receiver(world& w, config c) : w_(w), cfg_(std::move(c)) {
        raw_ = w_.connect_raw(cfg_.address, cfg_.link);
        w_.run_until([&] { return w_.raw(raw_).received.size() >= 4 || w_.raw(raw_).closed_by_server; }, std::chrono::seconds(1));
        wire::command cmd;
        cmd.proto = protocol::udp;
        cmd.dir = direction::receive;
        cmd.tx_size = cfg_.tx_size;
        cmd.remote_tx_speed = cfg_.remote_tx_speed;
        w_.raw_write(raw_, wire::encode_command(cmd));
        // Event by event, so the port is bound as soon as the PORT arrives (like a real
        // client's, datagrams that come before find no socket).
        const auto& got = w_.raw(raw_).received;
        w_.run_until([&] { return got.size() >= 10 || w_.raw(raw_).closed_by_server; }, std::chrono::seconds(1));
        if (got.size() < 10 || got[4] != std::byte{1}) return;
        const auto port = static_cast<std::uint16_t>(bytes::load_be16(got.data() + 8) + 256u);
        w_.bind_raw_udp(cfg_.address, port, [this](time_point t, std::uint32_t len, std::uint32_t header) {
            on_datagram(t, std::uint64_t(len) + header);
        });
        bound_port_ = port;
        start_ = w_.now();
        next_status_ = start_ + (cfg_.mode == status_mode::late ? cfg_.late_every : std::chrono::seconds(1));
    }
    slow_receiver(const slow_receiver&) = delete;
    slow_receiver& operator=(const slow_receiver&) = delete;
    ~slow_receiver() {
        if (bound_port_) w_.unbind_raw_udp(cfg_.address, *bound_port_);
    }

    bool started() const noexcept { return bound_port_.has_value(); }
    /// When the test started here (the PORT arrived).
    time_point start() const noexcept { return start_; }

    /// Runs the world for `d` of virtual time, sending STATUS when due.
    void run_for(duration d) {
        const time_point end = w_.now() + d;
        while (started() && !closed_ && sends_status() && next_status_ <= end) {
            w_.run_for(next_status_ - w_.now());
            send_status();
        }
        w_.run_for(end - w_.now());
    }

    /// Closes the control connection (the test ends; the server sees EOF).
    void close() {
        if (closed_) return;
        closed_ = true;
        w_.raw_close(raw_);
    }

    std::uint64_t handled_datagrams() const noexcept { return handled_; }
    std::uint64_t dropped_datagrams() const noexcept { return dropped_; }
    std::uint32_t status_sent() const noexcept { return seq_; }
    bool closed_by_server() const { return w_.raw(raw_).closed_by_server; }

private:
    bool sends_status() const noexcept {
        if (cfg_.mode == status_mode::none) return false;
        if (cfg_.mode == status_mode::stop) return next_status_ - start_ <= cfg_.stop_after;
        return true;
    }

    duration service_time() const noexcept {
        return duration(static_cast<std::int64_t>(1'000'000'000ULL / std::max<std::uint64_t>(cfg_.datagrams_per_second, 1)));
    }

    // A datagram of `wire_bytes` (payload + H) arrives at `t`: into the buffer if it has room,
    // handled one service time after the one before it.
    void on_datagram(time_point t, std::uint64_t wire_bytes) {
        while (!queue_.empty() && queue_.front().first <= t) settle();
        if (queue_.size() >= cfg_.buffer_datagrams) {
            ++dropped_;
            return;
        }
        busy_until_ = std::max(busy_until_, t) + service_time();
        queue_.emplace_back(busy_until_, wire_bytes);
    }
    void settle() {
        ++handled_;
        handled_bytes_ += queue_.front().second;
        queue_.pop_front();
    }

    void send_status() {
        const time_point now = w_.now();
        while (!queue_.empty() && queue_.front().first <= now) settle();
        const std::uint64_t bytes = handled_bytes_ - reported_bytes_;
        reported_bytes_ = handled_bytes_;
        const auto s = wire::encode_status(wire::status{0, ++seq_, wire::status::saturate(bytes)});
        w_.raw_write(raw_, s);
        next_status_ += cfg_.mode == status_mode::late ? cfg_.late_every : std::chrono::seconds(1);
    }

    world& w_;
    config cfg_;
    std::size_t raw_ = 0;
    std::optional<std::uint16_t> bound_port_;
    bool closed_ = false;
    time_point start_{};
    time_point next_status_{};
    time_point busy_until_{};
    std::deque<std::pair<time_point, std::uint64_t>> queue_;  ///< (handled at, wire bytes)
    std::uint64_t handled_ = 0, handled_bytes_ = 0, reported_bytes_ = 0, dropped_ = 0;
    std::uint32_t seq_ = 0;
};

} // namespace btest::memory
