// UDP receive accounting (PROTOCOL §8.5) against a model of the section's rules, per source
// port: payloads under 4 bytes are ignored; bytes count payload + H; loss from sequence gaps
// (a gap above 1 000 000 is a restart), a reordered or duplicate arrival takes one back. The
// fuzzer chooses ports, sequence numbers (next, near, far, wrapping), sizes, header overhead,
// arrival times and the source-table size; every datagram is an exactly-sized heap copy.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include <btest/stats/udp_receiver.hpp>

#include "fuzz/support.hpp"

namespace {

struct model_source {
    bool seen = false;
    std::uint32_t highest = 0;
    std::uint64_t lost = 0;
    std::uint64_t reordered = 0;

    void on_seq(std::uint32_t seq) {
        if (!seen) {
            seen = true;
            highest = seq;
            return;
        }
        const std::uint32_t d = seq - highest;
        if (d != 0 && d < 0x80000000u) {
            if (d - 1u <= btest::stats::loss_restart_gap) lost += d - 1u;
            highest = seq;
            return;
        }
        ++reordered;
        if (lost) --lost;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace btest;
    FuzzedDataProvider in(data, size);
    const auto max_sources = in.ConsumeIntegralInRange<std::size_t>(0, 12);
    std::uint32_t header = 28;
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: header = 28; break;
    case 1: header = 48; break;
    default: header = in.ConsumeIntegral<std::uint32_t>(); break;
    }
    stats::udp_receiver rx(max_sources);
    std::map<std::uint16_t, model_source> model;  // in order of first appearance: see `order`
    std::vector<std::uint16_t> order;
    std::uint64_t bytes = 0, packets = 0, interval = 0;
    time_point now{};
    std::vector<std::uint8_t> payload;

    while (in.remaining_bytes() > 0) {
        now += std::chrono::microseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 100'000));
        const auto port = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint16_t>(0, 15)
                                           : in.ConsumeIntegral<std::uint16_t>();
        auto& ms = model[port];
        std::uint32_t seq = 0;
        switch (in.ConsumeIntegralInRange<int>(0, 4)) {
        case 0: seq = ms.highest + 1; break;
        case 1: seq = ms.highest + in.ConsumeIntegralInRange<std::uint32_t>(0, 64); break;
        case 2: seq = ms.highest - in.ConsumeIntegralInRange<std::uint32_t>(0, 64); break;
        case 3: seq = ms.highest + in.ConsumeIntegralInRange<std::uint32_t>(999'990, 1'000'010); break;
        default: seq = in.ConsumeIntegral<std::uint32_t>(); break;
        }
        const auto len = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::size_t>(0, 8)
                                          : in.ConsumeIntegralInRange<std::size_t>(0, 2000);
        payload.assign(len, 0);
        for (std::size_t i = 0; i < 4 && i < len; ++i) payload[i] = std::uint8_t(seq >> (24 - 8 * i));
        if (in.ConsumeBool()) {  // raw bytes from the input instead
            const auto raw = in.ConsumeBytes<std::uint8_t>(len);
            std::copy(raw.begin(), raw.end(), payload.begin());
            if (len >= 4) seq = std::uint32_t(payload[0]) << 24 | std::uint32_t(payload[1]) << 16 |
                                std::uint32_t(payload[2]) << 8 | payload[3];
        }
        const fuzz::exact_copy dg(payload.data(), payload.size());
        const bool taken = rx.on_datagram(now, port, dg.span(), header);
        FUZZ_CHECK(taken == (len >= 4));
        if (taken) {
            bytes += len + header;
            interval += len + header;
            ++packets;
            if (std::find(order.begin(), order.end(), port) == order.end()) order.push_back(port);
            const auto rank = std::size_t(std::find(order.begin(), order.end(), port) - order.begin());
            if (rank < max_sources) ms.on_seq(seq);
        } else if (!ms.seen && std::find(order.begin(), order.end(), port) == order.end()) {
            model.erase(port);
        }
        FUZZ_CHECK(rx.bytes() == bytes);
        FUZZ_CHECK(rx.packets() == packets);
        FUZZ_CHECK(rx.sources() == std::min(order.size(), max_sources));
        std::uint64_t lost = 0, reordered = 0;
        for (const auto& [p, s] : model) {
            lost += s.lost;
            reordered += s.reordered;
        }
        FUZZ_CHECK(rx.lost() == lost);
        FUZZ_CHECK(rx.reordered() == reordered);
        const double j = rx.jitter_ns();
        FUZZ_CHECK(std::isfinite(j) && j >= 0);
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
            FUZZ_CHECK(rx.take_interval_bytes() == interval);
            interval = 0;
        }
    }
    return 0;
}
