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
#pragma once

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
            if (i == in.size()) break;
            if (in[i] == wire::status_type) {
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
};

} // namespace btest
