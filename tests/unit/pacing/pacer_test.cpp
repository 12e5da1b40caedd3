// The send schedule of PROTOCOL §11 on an injected clock, and the adaptation rule of §10.3.
#include <catch2/catch.hpp>

#include <btest/pacing/adaptation.hpp>
#include <btest/pacing/pacer.hpp>

using namespace btest;
using namespace btest::pacing;
using namespace std::chrono_literals;

TEST_CASE("pacing: interval formula of PROTOCOL 11") {
    CHECK(interval_ns(1'000'000'000, 1500) == 12'000);          // 1 Gbit/s, 1500 B
    CHECK(interval_ns(100'000'000, 1500) == 120'000);
    CHECK(interval_ns(1'000'000, 1500) == 12'000'000);
    CHECK(interval_ns(3, 1) == 1'000'000'000);                   // floor(8e9/3) > 0.5 s → 1 s
    CHECK(interval_ns(7, 1) == 1'000'000'000);                   // 1.14 s → 1 s
    CHECK(interval_ns(16, 1) == 500'000'000);                    // exactly 0.5 s: kept
    CHECK(interval_ns(15, 1) == 1'000'000'000);                  // 0.533 s → 1 s
    CHECK(interval_ns(300, 1000) == 1'000'000'000);              // the captured 300 bit/s command
    CHECK(interval_ns(~0ULL, 64) == 1);                          // 0 → 1
}

TEST_CASE("pacing: no overflow at the extremes") {
    // 10 Gbit/s with 64-byte packets and 4 Gbit/s with 64000-byte packets.
    CHECK(interval_ns(10'000'000'000ULL, 64) == 51);
    CHECK(interval_ns(4'000'000'000ULL, 64000) == 128'000);
    CHECK(interval_ns(1, 65535) == 1'000'000'000);
    CHECK(interval_ns(1, 0xffffffffu) == 1'000'000'000);
    // Over 10 virtual seconds at 10 Gbit/s, 64 B: the count of units matches the rate within
    // the 51-vs-51.2 ns rounding of the integer interval.
    pacer p(0xffffffffu);
    time_point t{};
    p.set_rate(10'000'000'000ULL, 64, t);
    std::uint64_t units = 0;
    for (int ms = 0; ms < 10'000; ++ms) {
        t += 1ms;
        units += p.take(t, 0xffffffffu);
    }
    CHECK(units == 10'000'000'000ULL / 51 + 1);
}

TEST_CASE("pacing: one unit per interval, none early") {
    pacer p;
    const time_point t0{};
    p.set_rate(1'000'000, 1500, t0);  // 12 ms
    CHECK(p.take(t0) == 1);
    CHECK(p.take(t0) == 0);
    CHECK(*p.next_due() == t0 + 12ms);
    CHECK(p.take(t0 + 11ms) == 0);
    CHECK(p.take(t0 + 12ms) == 1);
    CHECK(*p.next_due() == t0 + 24ms);
}

TEST_CASE("pacing: calls at one instant form one poll bounded by BURST_MAX") {
    pacer p(64);
    time_point t{};
    p.set_rate(1'000'000'000, 1500, t);  // 12 us
    t += 10ms;                            // 834 units due
    std::uint32_t n = 0;
    for (int i = 0; i < 1000; ++i) n += p.take(t);
    CHECK(n == 64);
    // The poll ended on BURST_MAX far behind: the schedule restarts at now (drift clamp), so
    // the next unit is due at once in the next poll and then one per interval.
    REQUIRE(p.next_due());
    CHECK(*p.next_due() == t + 1ns);
    CHECK(p.take(t + 1ns) == 1);
    CHECK(p.take(t + 1ns) == 0);
    CHECK(*p.next_due() == t + 12us);
}

TEST_CASE("pacing: a late poll within BURST_MAX keeps its credit") {
    pacer p(64);
    time_point t{};
    p.set_rate(1'000'000'000, 1500, t);
    CHECK(p.take(t, 100) == 1);
    // A wake-up 10 intervals late: all 10 are due in this poll, none is dropped.
    t += 120us;
    CHECK(p.take(t, 100) == 10);
    CHECK(*p.next_due() == t + 12us);
}

TEST_CASE("pacing: no catch-up burst after a long stall") {
    pacer p(64);
    time_point t{};
    p.set_rate(100'000'000, 1500, t);  // 120 us
    CHECK(p.take(t, 1000) == 1);
    t += 1s;                            // 8333 units behind
    CHECK(p.take(t, 1000) == 64);       // one poll's worth, then the clamp
    std::uint64_t next_second = 0;
    for (auto u = t + 1ns; u < t + 1s; u += 1ms) next_second += p.take(u, 1000);
    // Restarted at t: units fall due at t, t+120us, ... up to the last poll at t+999ms+1ns:
    // 999000/120 + 1 — the steady rate, nothing of the stall caught up.
    CHECK(next_second == 999'000 / 120 + 1);
}

TEST_CASE("pacing: a rate change restarts the schedule at now") {
    pacer p;
    time_point t{};
    p.set_rate(1'000'000, 1500, t);
    CHECK(p.take(t) == 1);
    t += 1ms;
    p.set_rate(10'000'000, 1500, t);    // 1.2 ms
    CHECK(p.take(t) == 1);              // due at once
    CHECK(*p.next_due() == t + 1200us);
    p.set_rate(0, 1500, t);
    CHECK(p.unpaced());
    CHECK_FALSE(p.next_due());
    CHECK(p.take(t, 77) == 77);
}

TEST_CASE("pacing: the 0.5 s clamp sends one unit per second") {
    pacer p;
    time_point t{};
    p.set_rate(20'000, 1500, t);        // 0.6 s → 1 s
    std::uint32_t n = 0;
    for (auto u = t; u < t + 10s; u += 10ms) n += p.take(u, 10);
    CHECK(n == 10);
}

TEST_CASE("adaptation: PROTOCOL 10.3 rule") {
    rate_adapter capped(200'000'000);
    CHECK(capped.rate() == 200'000'000);
    CHECK_FALSE(capped.on_status(0));                   // B = 0 keeps the rate
    CHECK(*capped.on_status(1'000'000) == 12'000'000);  // B × 12
    CHECK(*capped.on_status(100'000'000) == 200'000'000); // never above the cap
    CHECK_FALSE(capped.on_status(100'000'000));           // unchanged

    rate_adapter open;                                    // R_cap = 0: unpaced until a STATUS
    CHECK(open.rate() == 0);
    CHECK(*open.on_status(0xffffffffu) == 0xffffffffULL * 12);  // 64-bit: no u32 overflow

    rate_adapter fixed(0, true, initial_rate{initial_rate::mode::fixed, 1'000'000});
    CHECK(fixed.rate() == 1'000'000);
    rate_adapter off(5'000'000, false);
    CHECK_FALSE(off.on_status(1));
    CHECK(off.rate() == 5'000'000);
}
