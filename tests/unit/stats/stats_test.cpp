// Counters, RouterOS's three figures, UDP loss per source (PROTOCOL §8.5) and jitter.
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include <btest/core/bytes.hpp>
#include <btest/stats/jitter.hpp>
#include <btest/stats/rate_meter.hpp>
#include <btest/stats/udp_receiver.hpp>

using namespace btest;
using namespace btest::stats;
using namespace std::chrono_literals;

namespace {
std::vector<std::byte> dgram(std::uint32_t seq, std::size_t len = 1472) {
    std::vector<std::byte> d(len);
    if (len >= 4) bytes::store_be32(d.data(), seq);
    return d;
}
} // namespace

TEST_CASE("stats: the three figures - current, 10-second and total average") {
    rate_meter m;
    CHECK(m.current_bps() == 0);
    for (std::uint64_t s = 1; s <= 15; ++s) m.push_second(s * 1'000'000);  // 8, 16, ... Mbit/s
    CHECK(m.current_bps() == 120'000'000);
    // last 10 seconds: 6..15 MB → mean 10.5 MB/s
    CHECK(m.average10_bps() == 84'000'000);
    // all 15: 120 MB over 15 s
    CHECK(m.total_average_bps() == 64'000'000);
    CHECK(m.total_bytes() == 120'000'000);
    // A short last fragment counts for its length.
    m.push_second(500'000, 500ms);
    CHECK(m.current_bps() == 8'000'000);
}

TEST_CASE("stats: bit rates never overflow 64 bits") {
    // 10 TB over 1000 s: bytes·8·1e9 would overflow a naive u64 product.
    CHECK(rate_meter::bps(10'000'000'000'000ULL, 1000s) == 80'000'000'000ULL);
    CHECK(rate_meter::bps(~0ULL / 8, 3600s) > 0);
    CHECK(rate_meter::bps(1, duration::zero()) == 0);
}

TEST_CASE("stats: loss counts gaps, reordering gives them back") {
    loss_tracker t;
    std::uint32_t steps = 0;
    CHECK(t.on_seq(1, steps) == loss_tracker::arrival::first);
    CHECK(t.on_seq(2, steps) == loss_tracker::arrival::in_order);
    CHECK(steps == 1);
    CHECK(t.on_seq(5, steps) == loss_tracker::arrival::in_order);  // 3, 4 missing
    CHECK(steps == 3);
    CHECK(t.lost == 2);
    CHECK(t.on_seq(3, steps) == loss_tracker::arrival::reordered);  // late: not lost after all
    CHECK(t.lost == 1);
    CHECK(t.on_seq(4, steps) == loss_tracker::arrival::reordered);
    CHECK(t.lost == 0);
    CHECK(t.on_seq(4, steps) == loss_tracker::arrival::reordered);  // duplicate: lost stays 0
    CHECK(t.lost == 0);
    CHECK(t.reordered == 3);
}

TEST_CASE("stats: loss across the 32-bit sequence wrap") {
    loss_tracker t;
    std::uint32_t steps = 0;
    t.on_seq(0xfffffffeu, steps);
    CHECK(t.on_seq(0xffffffffu, steps) == loss_tracker::arrival::in_order);
    CHECK(t.on_seq(1, steps) == loss_tracker::arrival::in_order);  // 0 missing
    CHECK(t.lost == 1);
    CHECK(t.on_seq(0, steps) == loss_tracker::arrival::reordered);
    CHECK(t.lost == 0);
    CHECK(t.highest == 1);
}

TEST_CASE("stats: a jump of more than a million is a restart, not loss") {
    loss_tracker t;
    std::uint32_t steps = 0;
    t.on_seq(10, steps);
    CHECK(t.on_seq(10 + 1'000'002, steps) == loss_tracker::arrival::restart);
    CHECK(t.lost == 0);
    // d − 1 = 1 000 000 exactly is still loss (the rule is "d − 1 > 1 000 000").
    CHECK(t.on_seq(10 + 1'000'002 + 1'000'001, steps) == loss_tracker::arrival::in_order);
    CHECK(t.lost == 1'000'000);
}

TEST_CASE("stats: UDP receiver counts headers, ignores short payloads, tracks sources apart") {
    udp_receiver r(4);
    const time_point t{};
    CHECK_FALSE(r.on_datagram(t, 2257, dgram(0, 0), 28));   // NAT probe
    CHECK_FALSE(r.on_datagram(t, 2257, dgram(0, 3), 28));   // too short for a sequence number
    CHECK(r.packets() == 0);
    CHECK(r.bytes() == 0);
    CHECK(r.on_datagram(t, 2257, dgram(1), 28));
    CHECK(r.on_datagram(t, 2258, dgram(1), 28));             // another stream: its own sequence
    CHECK(r.on_datagram(t, 2257, dgram(3), 28));
    CHECK(r.on_datagram(t, 2258, dgram(2), 28));
    CHECK(r.packets() == 4);
    CHECK(r.bytes() == 4 * 1500);
    CHECK(r.lost() == 1);
    CHECK(r.sources() == 2);
    // Per stream, in order of first arrival.
    CHECK(r.source(0).port == 2257);
    CHECK(r.source(0).packets == 2);
    CHECK(r.source(0).bytes == 3000);
    CHECK(r.source(0).lost == 1);
    CHECK(r.source(1).port == 2258);
    CHECK(r.source(1).packets == 2);
    CHECK(r.source(1).lost == 0);
    CHECK(r.take_interval_bytes() == 6000);
    CHECK(r.take_interval_bytes() == 0);
    // IPv6 header overhead.
    CHECK(r.on_datagram(t, 2257, dgram(4, 1452), 48));
    CHECK(r.bytes() == 7500);
}

TEST_CASE("stats: the source table is bounded and never reallocates") {
    udp_receiver r(2);
    const time_point t{};
    for (std::uint16_t port = 1000; port < 1100; ++port) {
        CHECK(r.on_datagram(t, port, dgram(1), 28));
        CHECK(r.on_datagram(t, port, dgram(5), 28));  // would be 3 lost per tracked source
    }
    CHECK(r.sources() == 2);
    CHECK(r.packets() == 200);           // every datagram still counts
    CHECK(r.lost() == 2 * 3);            // loss only for the tracked ones
}

TEST_CASE("stats: jitter is zero for a perfectly regular stream") {
    jitter_estimator j;
    time_point t{};
    j.restart(t);
    for (int i = 1; i <= 1000; ++i) j.on_arrival(t + i * 120us, 1);
    CHECK(j.jitter_ns() == Approx(0.0).margin(1e-6));
}

TEST_CASE("stats: jitter follows RFC 3550's running estimate of transit variation") {
    // Datagrams sent every 1 ms; every other one arrives 200 us late. |D| alternates around
    // 200 us, so J converges near 200 us (it is a 1/16 smoothed mean of |D|).
    jitter_estimator j;
    time_point t{};
    j.restart(t);
    for (int i = 1; i <= 4000; ++i) j.on_arrival(t + i * 1ms + (i % 2 ? 200us : 0us), 1);
    CHECK(j.jitter_ns() == Approx(200'000).epsilon(0.01));
}

TEST_CASE("stats: jitter leaves reordered datagrams out and survives loss") {
    udp_receiver r(4);
    time_point t{};
    for (std::uint32_t s = 1; s <= 1000; ++s) {
        if (s % 10 == 0) continue;  // lost: the next arrival spans 2 steps at 2 intervals
        r.on_datagram(t + s * 100us, 9, dgram(s), 28);
    }
    CHECK(r.lost() == 99);
    CHECK(r.jitter_ns() == Approx(0.0).margin(1.0));
}
