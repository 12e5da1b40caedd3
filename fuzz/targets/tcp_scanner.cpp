// The TCP stream scanner (PROTOCOL §9.4) against a byte-at-a-time model of the section's state
// machine: whatever the split points the fuzzer chooses, the scanner reports the same STATUS
// records, the same data-byte count, the same switch to OPAQUE and the same protocol error
// (control-only mode) at the same offset. Each step gets an exactly-sized copy of the rest of
// its chunk, makes progress, and accounts for every byte it consumes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <btest/session/tcp_scanner.hpp>

#include "fuzz/support.hpp"

namespace {

using namespace btest;

struct outcome {
    std::vector<wire::status> statuses;
    std::uint64_t data_bytes = 0;
    int became_opaque = 0;
    std::optional<std::size_t> error_at;  ///< offset of the stray byte (control_only)
    std::size_t consumed = 0;             ///< bytes taken before the error (all without one)
};

/// §9.4, one byte at a time.
outcome model(tcp_scanner::mode m, std::span<const std::uint8_t> s) {
    enum { skip, record, opaque } st = m == tcp_scanner::mode::opaque ? opaque : skip;
    outcome o;
    std::vector<std::uint8_t> rec;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = s[i];
        switch (st) {
        case opaque: ++o.data_bytes; break;
        case record:
            rec.push_back(b);
            if (rec.size() == 12) {
                wire::status x;
                x.cpu_load = static_cast<std::uint8_t>(std::min(rec[1] & 0x7f, 100));
                x.seq = std::uint32_t(rec[4]) | std::uint32_t(rec[5]) << 8 | std::uint32_t(rec[6]) << 16 |
                        std::uint32_t(rec[7]) << 24;
                x.bytes = std::uint32_t(rec[8]) | std::uint32_t(rec[9]) << 8 | std::uint32_t(rec[10]) << 16 |
                          std::uint32_t(rec[11]) << 24;
                o.statuses.push_back(x);
                rec.clear();
                st = skip;
            }
            break;
        case skip:
            if (b == 0x00) {
                ++o.data_bytes;
            } else if (b == 0x07) {
                rec.assign(1, b);
                st = record;
            } else if (m == tcp_scanner::mode::control_only) {
                o.error_at = i;
                o.consumed = i;
                return o;
            } else {
                ++o.became_opaque;
                ++o.data_bytes;
                st = opaque;
            }
            break;
        }
    }
    o.consumed = s.size();
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto m = static_cast<tcp_scanner::mode>(in.ConsumeIntegralInRange<int>(0, 2));
    std::vector<std::size_t> cuts(in.ConsumeIntegralInRange<std::size_t>(0, 24));
    for (auto& c : cuts) c = in.ConsumeIntegral<std::uint16_t>();
    const auto stream = in.ConsumeRemainingBytes<std::uint8_t>();
    for (auto& c : cuts) c %= stream.size() + 1;
    cuts.push_back(stream.size());
    std::sort(cuts.begin(), cuts.end());

    const outcome want = model(m, stream);

    tcp_scanner sc(m);
    FUZZ_CHECK(sc.opaque() == (m == tcp_scanner::mode::opaque));
    outcome got;
    std::size_t pos = 0;
    bool stopped = false;
    for (const auto cut : cuts) {
        while (!stopped && pos < cut) {
            const fuzz::exact_copy chunk(stream.data() + pos, cut - pos);
            const auto r = sc.step(chunk.span());
            FUZZ_CHECK(r.consumed <= cut - pos);
            FUZZ_CHECK(r.data_bytes <= r.consumed);
            if (r.protocol_error) {
                FUZZ_CHECK(m == tcp_scanner::mode::control_only);
                FUZZ_CHECK(!r.status && !r.became_opaque);
                pos += r.consumed;
                got.error_at = pos;
                got.data_bytes += r.data_bytes;
                stopped = true;
                break;
            }
            FUZZ_CHECK(r.consumed > 0);  // progress on non-empty input
            if (r.became_opaque) {
                FUZZ_CHECK(m == tcp_scanner::mode::zero_fill);
                FUZZ_CHECK(sc.opaque());
                ++got.became_opaque;
            }
            if (r.status) got.statuses.push_back(*r.status);
            got.data_bytes += r.data_bytes;
            pos += r.consumed;
        }
        // An empty span is harmless anywhere.
        if (!stopped) {
            const fuzz::exact_copy none(stream.data(), 0);
            const auto r = sc.step(none.span());
            FUZZ_CHECK(r.consumed == 0 && r.data_bytes == 0 && !r.status && !r.protocol_error && !r.became_opaque);
        }
    }
    got.consumed = pos;
    FUZZ_CHECK(got.statuses == want.statuses);
    FUZZ_CHECK(got.data_bytes == want.data_bytes);
    FUZZ_CHECK(got.became_opaque == want.became_opaque);
    FUZZ_CHECK(got.error_at == want.error_at);
    FUZZ_CHECK(got.consumed == want.consumed);
    return 0;
}
