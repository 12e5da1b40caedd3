// COMMAND — PROTOCOL §2.2. Client → server, 16 bytes:
//
//   off size type    field
//    0   1   u8      proto            00 UDP, 01 TCP
//    1   1   u8      direction        01 client transmits, 02 server transmits, 03 both
//    2   1   u8      zero_fill        01 zeros; 00 random (anything else: zeros)
//    3   1   u8      conn_count       00/01 one connection; N = 2..255
//    4   2   u16 LE  tx_size          TCP chunk size / server UDP datagram size (whole IP datagram)
//    6   2   u16 LE  buf_size         00 00 from RouterOS; carried, never interpreted
//    8   4   u32 LE  remote_tx_speed  server's transmit cap, bit/s, 0 = unlimited
//   12   4   u32 LE  local_tx_speed   client's own transmit cap, bit/s (informational)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "btest/core/bytes.hpp"
#include "btest/core/result.hpp"

namespace btest {

enum class protocol : std::uint8_t { udp = 0, tcp = 1 };

/// Named from the client's point of view, as RouterOS does (`direction=transmit` = upstream).
enum class direction : std::uint8_t {
    transmit = 1,  ///< upstream only: client sends, server receives
    receive = 2,   ///< downstream only: server sends, client receives
    both = 3,
};

constexpr bool client_sends(direction d) noexcept { return d != direction::receive; }
constexpr bool server_sends(direction d) noexcept { return d != direction::transmit; }

} // namespace btest

namespace btest::wire {

inline constexpr std::size_t command_size = 16;
inline constexpr std::uint16_t default_tcp_chunk = 32768;

struct command {
    protocol proto = protocol::tcp;
    direction dir = direction::receive;
    bool random_data = false;          ///< zero_fill byte 00
    std::uint8_t conn_count = 0;       ///< raw byte: 0 and 1 both mean one connection
    std::uint16_t tx_size = default_tcp_chunk;
    std::uint16_t buf_size = 0;
    std::uint32_t remote_tx_speed = 0;
    std::uint32_t local_tx_speed = 0;

    /// Number of connections (TCP) or UDP streams: max(1, conn_count).
    std::uint32_t connections() const noexcept { return conn_count < 2 ? 1u : conn_count; }
    /// TCP chunk size: tx_size, 0 → 32768 (PROTOCOL §9.2).
    std::uint32_t tcp_chunk() const noexcept { return tx_size == 0 ? default_tcp_chunk : tx_size; }

    friend bool operator==(const command&, const command&) = default;
};

/// Decodes the first 16 bytes of `in`. Errors: truncated, bad_command_proto,
/// bad_command_direction. A zero_fill byte other than 00 reads as "zeros" (§13.3).
inline result<command> decode_command(std::span<const std::byte> in) noexcept {
    if (in.size() < command_size) return errc::truncated;
    const auto proto = std::to_integer<std::uint8_t>(in[0]);
    const auto dir = std::to_integer<std::uint8_t>(in[1]);
    if (proto > 1) return errc::bad_command_proto;
    if (dir < 1 || dir > 3) return errc::bad_command_direction;
    command c;
    c.proto = static_cast<protocol>(proto);
    c.dir = static_cast<direction>(dir);
    c.random_data = in[2] == std::byte{0};
    c.conn_count = std::to_integer<std::uint8_t>(in[3]);
    c.tx_size = bytes::load_le16(&in[4]);
    c.buf_size = bytes::load_le16(&in[6]);
    c.remote_tx_speed = bytes::load_le32(&in[8]);
    c.local_tx_speed = bytes::load_le32(&in[12]);
    return c;
}

inline std::array<std::byte, command_size> encode_command(const command& c) noexcept {
    std::array<std::byte, command_size> out{};
    out[0] = std::byte(static_cast<std::uint8_t>(c.proto));
    out[1] = std::byte(static_cast<std::uint8_t>(c.dir));
    out[2] = c.random_data ? std::byte{0} : std::byte{1};
    out[3] = std::byte(c.conn_count);
    bytes::store_le16(&out[4], c.tx_size);
    bytes::store_le16(&out[6], c.buf_size);
    bytes::store_le32(&out[8], c.remote_tx_speed);
    bytes::store_le32(&out[12], c.local_tx_speed);
    return out;
}

} // namespace btest::wire
