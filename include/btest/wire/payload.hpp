// Test payload — PROTOCOL §2.9, §2.10, §9.2.
//
// UDP datagram:  seq (u32 BIG-endian, per sending socket, first 1, wrapping) ‖ fill
// TCP stream:    chunks of S bytes of fill; with random fill a chunk never starts with 07, so
//                a chunk boundary can never look like a STATUS record.
//
// Random fill is copied from a ring of random bytes made once per session (no randomness drawn
// per packet); the offset into the ring moves with the sequence number, so consecutive
// datagrams differ.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "btest/core/bytes.hpp"
#include "btest/core/entropy.hpp"

namespace btest::wire {

inline constexpr std::size_t udp_seq_size = 4;
/// Ring size for random fill: larger than any chunk or datagram (≤ 65535).
inline constexpr std::size_t payload_ring_size = 128 * 1024;

/// Where fill bytes come from. Zero fill needs no ring.
struct payload_fill {
    std::span<const std::byte> ring;  ///< empty: zero fill

    bool random() const noexcept { return !ring.empty(); }

    /// Fills `out` with the fill for unit number `n` (a datagram seq or a chunk counter).
    void fill(std::uint32_t n, std::span<std::byte> out) const noexcept {
        if (out.empty()) return;
        if (!random() || ring.size() < out.size()) {
            std::memset(out.data(), 0, out.size());
            return;
        }
        const std::size_t span = ring.size() - out.size() + 1;
        const std::size_t off = static_cast<std::size_t>((std::uint64_t(n) * 2654435761u) % span);
        std::memcpy(out.data(), ring.data() + off, out.size());
    }
};

/// Makes a random ring from `rng` into `ring` (called once per session).
inline void make_payload_ring(entropy& rng, std::span<std::byte> ring) { rng.fill(ring); }

/// UDP payload bytes for a whole-IP-datagram size S and header overhead H (§8.3):
/// max(S, H + 4) − H.
constexpr std::uint32_t udp_payload_size(std::uint32_t s, std::uint32_t h) noexcept {
    return std::max(s, h + 4) - h;
}

/// Writes the 4-byte BE sequence number at the front of `datagram` and the fill after it.
/// Precondition: datagram.size() ≥ 4.
inline void fill_udp_packet(std::uint32_t seq, std::span<std::byte> datagram,
                            const payload_fill& fill) noexcept {
    bytes::store_be32(datagram.data(), seq);
    fill.fill(seq, datagram.subspan(udp_seq_size));
}

/// The sequence number of a received datagram, or nullopt for a payload shorter than 4 bytes
/// (NAT probes, neighbour-discovery probes: ignored entirely, §8.5).
inline std::optional<std::uint32_t> udp_packet_seq(std::span<const std::byte> payload) noexcept {
    if (payload.size() < udp_seq_size) return std::nullopt;
    return bytes::load_be32(payload.data());
}

/// Writes one TCP chunk of fill. Random fill replaces a leading 07 by 00 (§9.2).
inline void fill_tcp_chunk(std::uint32_t chunk_no, std::span<std::byte> chunk,
                           const payload_fill& fill) noexcept {
    fill.fill(chunk_no, chunk);
    if (!chunk.empty() && chunk[0] == std::byte{0x07}) chunk[0] = std::byte{0};
}

} // namespace btest::wire
