// One TCP connection of a session as the session sees it. Kit-internal: the public surface is
// session.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "btest/core/time.hpp"
#include "btest/pacing/pacer.hpp"
#include "btest/session/stats.hpp"
#include "btest/session/tcp_scanner.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/frame_buffer.hpp"
#include "btest/wire/status.hpp"

namespace btest::detail {

/// Control bytes a connection may have queued at once (the largest handshake reply).
inline constexpr std::size_t control_capacity = 320;

enum class role : std::uint8_t { server, client };

struct connection {
    bool open = true;
    bool in_test = false;        ///< carries the test (joined / started)
    std::uint8_t phase = 0;      ///< handshake state: the role's phase enum
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

} // namespace btest::detail
