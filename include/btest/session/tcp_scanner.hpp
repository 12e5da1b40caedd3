// The TCP data-stream scanner — PROTOCOL §9.4:
//
//   SKIP:   00 → one data byte, stay;  07 → start a 12-byte record (keep the 07), go RECORD;
//           anything else → OPAQUE (reported once: "peer data not zero-filled")
//   RECORD: collect 12 bytes, decode as STATUS, go SKIP
//   OPAQUE: every byte is data; no more STATUS parsing on this connection
//
// A random-fill stream starts in OPAQUE. The control connection of a UDP test uses the
// control-only mode: no OPAQUE, a byte other than 00/07 at a record boundary is a protocol
// error. Records may be split across reads.
//
// Chunk grid [Design]: a sender writes STATUS only between whole chunks of S bytes (§9.2). A
// scanner told S follows that grid through the stream (data bytes left in the current chunk);
// while every STATUS seen started on it, the rest of a chunk is known to be data and a
// receiver may drop it unseen (session::plan_read). A STATUS off the grid turns that off for
// good; the scanner itself still parses every byte it is given exactly as above.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "btest/wire/frame_buffer.hpp"
#include "btest/wire/status.hpp"

namespace btest {

class tcp_scanner {
public:
    enum class mode : std::uint8_t {
        zero_fill,     ///< TCP test stream, zero fill negotiated
        opaque,        ///< TCP test stream, random fill: everything is data
        control_only,  ///< control connection of a UDP test
    };

    /// The outcome of one step(); the caller loops while input remains.
    struct step_result {
        std::size_t consumed = 0;           ///< bytes of the input used by this step
        std::uint64_t data_bytes = 0;       ///< data bytes among them (STATUS bytes excluded)
        std::optional<wire::status> status; ///< a completed STATUS record
        bool became_opaque = false;         ///< zero_fill stream turned OPAQUE in this step
        bool protocol_error = false;        ///< control_only: stray byte at a record boundary
    };

    explicit tcp_scanner(mode m = mode::zero_fill) noexcept : opaque_(m == mode::opaque), control_only_(m == mode::control_only) {}

    bool opaque() const noexcept { return opaque_; }
    /// Inside a STATUS record (some of its 12 bytes seen).
    bool in_record() const noexcept { return record_.size() > 0; }
    /// From now on every byte is data (a random-fill stream; not for control_only).
    void make_opaque() noexcept {
        if (control_only_) return;
        opaque_ = true;
        record_.clear();
    }

    /// Follows the sender's chunk grid of `chunk` bytes from here (a chunk boundary: the start
    /// of the stream); 0 stops following it.
    void track_chunks(std::uint32_t chunk) noexcept {
        chunk_ = chunk;
        chunk_left_ = 0;
        on_grid_ = chunk != 0;
        grid_statuses_ = 0;
    }
    /// Every STATUS so far started on the chunk grid (false when not tracking).
    bool on_grid() const noexcept { return on_grid_; }
    /// STATUS records seen that started on the grid.
    std::uint64_t grid_statuses() const noexcept { return grid_statuses_; }
    /// Data bytes known to remain in the current chunk: the stream kept to the grid, no record
    /// is open and the stream is zero-filled so far. 0 otherwise.
    std::size_t chunk_rest() const noexcept {
        return on_grid_ && !opaque_ && !control_only_ && record_.size() == 0 ? chunk_left_ : 0;
    }
    /// The next `n` bytes were dropped unseen as data: the rest of the current chunk and, for a
    /// stream that should carry no STATUS at all, possibly whole chunks after it (see
    /// session::plan_read).
    void skip(std::size_t n) noexcept { advance_grid(n); }

    /// Processes a prefix of `in`: stops after one completed STATUS, at an error, or at the
    /// end of the input. Never reads past `in`.
    step_result step(std::span<const std::byte> in) noexcept {
        step_result r;
        if (opaque_) {
            r.consumed = in.size();
            r.data_bytes = in.size();
            return r;
        }
        std::size_t i = 0;
        while (i < in.size()) {
            if (record_.size() > 0) {
                i += record_.fill_to(wire::status_size, in.subspan(i));
                if (record_.size() < wire::status_size) break;
                r.status = *wire::decode_status(record_.bytes());  // byte 0 is 07: cannot fail
                record_.clear();
                r.consumed = i;
                return r;
            }
            const std::size_t zeros = count_zeros(in.subspan(i));
            r.data_bytes += zeros;
            i += zeros;
            advance_grid(zeros);
            if (i == in.size()) break;
            if (in[i] == wire::status_type) {
                if (on_grid_) {
                    if (chunk_left_ != 0) on_grid_ = false;  // a STATUS inside a chunk
                    else ++grid_statuses_;
                }
                record_.fill_to(1, in.subspan(i, 1));
                ++i;
                continue;
            }
            if (control_only_) {
                r.protocol_error = true;
                r.consumed = i;
                return r;
            }
            opaque_ = true;
            r.became_opaque = true;
            r.data_bytes += in.size() - i;
            i = in.size();
        }
        r.consumed = i;
        return r;
    }

private:
    // `n` data bytes went by: where in its chunk the stream now is.
    void advance_grid(std::size_t n) noexcept {
        if (!on_grid_ || n == 0) return;
        if (n <= chunk_left_) {
            chunk_left_ -= n;
            return;
        }
        const std::size_t rem = (n - chunk_left_) % chunk_;
        chunk_left_ = rem ? chunk_ - rem : 0;
    }

    // Length of the run of zero bytes at the front: 64 bytes at a time (eight words OR-ed, one
    // branch), then a word at a time, then bytes.
    static std::size_t count_zeros(std::span<const std::byte> s) noexcept {
        std::size_t i = 0;
        const std::size_t n = s.size();
        const std::byte* p = s.data();
        auto word = [](const std::byte* q) noexcept {
            std::uint64_t w;
            std::memcpy(&w, q, 8);
            return w;
        };
        while (i + 64 <= n) {
            const std::byte* q = p + i;
            if ((word(q) | word(q + 8) | word(q + 16) | word(q + 24) | word(q + 32) | word(q + 40) | word(q + 48) |
                 word(q + 56)) != 0)
                break;
            i += 64;
        }
        while (i + 8 <= n && word(p + i) == 0) i += 8;
        while (i < n && p[i] == std::byte{0}) ++i;
        return i;
    }

    wire::frame_buffer<wire::status_size> record_;
    bool opaque_ = false;
    bool control_only_ = false;
    bool on_grid_ = false;
    std::size_t chunk_ = 0;
    std::size_t chunk_left_ = 0;
    std::uint64_t grid_statuses_ = 0;
};

} // namespace btest
