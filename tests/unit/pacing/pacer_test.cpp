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
    const time_point t0{};
    rate_adapter capped(200'000'000);
    capped.start(t0);
    CHECK(capped.rate() == 200'000'000);
    CHECK_FALSE(capped.on_status(t0 + 1s, 0));                   // B = 0 keeps the rate
    CHECK(*capped.on_status(t0 + 2s, 1'000'000) == 12'000'000);  // B × 12
    CHECK(*capped.on_status(t0 + 3s, 100'000'000) == 200'000'000); // never above the cap
    CHECK_FALSE(capped.on_status(t0 + 4s, 100'000'000));           // unchanged

    rate_adapter open;                                    // R_cap = 0: unpaced until a STATUS
    open.start(t0);
    CHECK(open.rate() == 0);
    CHECK(*open.on_status(t0 + 1s, 0xffffffffu) == 0xffffffffULL * 12);  // 64-bit: no u32 overflow

    rate_adapter fixed(0, true, initial_rate{initial_rate::mode::fixed, 1'000'000});
    CHECK(fixed.rate() == 1'000'000);
    rate_adapter off(5'000'000, false);
    off.start(t0);
    CHECK_FALSE(off.on_status(t0 + 1s, 1));
    CHECK(off.rate() == 5'000'000);
    CHECK_FALSE(off.next_backoff());                      // adaptation off: no back-off either
    CHECK_FALSE(off.on_timer(t0 + 30s, 5'000'000));
    CHECK(off.rate() == 5'000'000);
}

TEST_CASE("pacing: a receiver whose STATUS stop is backed off, halving per missed interval (PROTOCOL 10.3)") {
    const time_point t0{};
    rate_adapter a;
    a.start(t0);
    // STATUS on time: the deadline follows each one by 1.5 s and nothing else happens.
    for (int k = 1; k <= 5; ++k) {
        const auto at = t0 + std::chrono::seconds(k) + 3ms;
        a.on_status(at, 30'000'000);                   // 240 Mbit/s received → 360 Mbit/s
        CHECK(a.rate() == 360'000'000);
        CHECK(*a.next_backoff() == at + 1500ms);
        CHECK_FALSE(a.on_timer(at + 1499ms, 360'000'000));  // early calls are harmless
        CHECK(a.backoffs() == 0);
    }
    // The last STATUS came at 5.003 s. 1.5 s later: half; then half again every second.
    const auto last = t0 + 5s + 3ms;
    CHECK(*a.on_timer(last + 1500ms, 360'000'000) == 180'000'000);
    CHECK(*a.next_backoff() == last + 2500ms);
    CHECK_FALSE(a.on_timer(last + 2s, 270'000'000));
    CHECK(*a.on_timer(last + 2500ms, 270'000'000) == 90'000'000);   // the rate, not what was sent
    CHECK(*a.on_timer(last + 3500ms, 0) == 45'000'000);
    // A late call applies every halving it missed: 3 steps at once.
    CHECK(*a.on_timer(last + 6500ms, 45'000'000) == 45'000'000 / 8);
    CHECK(a.backoffs() == 6);
    // Down to the floor (1 Mbit/s), where it stays and stops asking for wake-ups.
    while (a.next_backoff()) a.on_timer(*a.next_backoff(), 0);
    CHECK(a.rate() == 1'000'000);
    CHECK_FALSE(a.on_timer(last + 60s, 0));
    // The receiver speaks again: the ordinary rule, on a rate per second of its late report.
    CHECK(*a.on_status(last + 20s, 2'000'000) == 2'000'000ULL * 12 / 20);
    CHECK(a.backoffs() == 0);
    CHECK(*a.next_backoff() == last + 20s + 1500ms);
    CHECK(*a.on_status(last + 21s, 2'000'000) == 24'000'000);       // on time again: B × 12
}

TEST_CASE("pacing: back-off from an unpaced or capped start, and what it never does") {
    const time_point t0{};
    SECTION("no STATUS at all: unpaced halves what it sent, 2 s after the start") {
        rate_adapter a;
        a.start(t0);
        CHECK(*a.next_backoff() == t0 + 2s);           // grace + a round trip for the first
        CHECK_FALSE(a.on_timer(t0 + 1999ms, 9'000'000'000));
        CHECK(*a.on_timer(t0 + 2s, 8'000'000'000) == 4'000'000'000);
        CHECK(*a.on_timer(t0 + 3s, 4'000'000'000) == 2'000'000'000);
    }
    SECTION("unpaced that could send nothing falls to the floor") {
        rate_adapter a;
        a.start(t0);
        CHECK(*a.on_timer(t0 + 2s, 0) == 1'000'000);
    }
    SECTION("a cap halves from the cap, or from what was sent when that is lower") {
        rate_adapter a(100'000'000);
        a.start(t0);
        CHECK(*a.on_timer(t0 + 2s, 100'000'000) == 50'000'000);
        rate_adapter b(10'000'000'000);
        b.start(t0);
        CHECK(*b.on_timer(t0 + 2s, 900'000'000) == 450'000'000);
    }
    SECTION("a rate at or below the floor is left alone") {
        rate_adapter a(300);                            // the captured 300 bit/s command
        a.start(t0);
        CHECK_FALSE(a.next_backoff());
        CHECK_FALSE(a.on_timer(t0 + 10s, 300));
        CHECK(a.rate() == 300);
        rate_adapter b(1'500'000);
        b.start(t0);
        CHECK(*b.on_timer(t0 + 2s, 1'500'000) == 1'000'000);  // not below the floor
        CHECK_FALSE(b.next_backoff());
    }
    SECTION("a STATUS that is merely a little late costs one halving, then the rule resumes") {
        rate_adapter a;
        a.start(t0);
        a.on_status(t0 + 1s, 10'000'000);               // 120 Mbit/s
        CHECK(*a.on_timer(t0 + 2500ms, 120'000'000) == 60'000'000);
        // 1.6 s after the previous one, 10 MB: counted per second, 6.25 MB/s → 75 Mbit/s.
        CHECK(*a.on_status(t0 + 2600ms, 10'000'000) == 75'000'000);
        CHECK(*a.on_status(t0 + 3600ms, 10'000'000) == 120'000'000);
    }
    SECTION("the first STATUS: on time up to 2 s after the start, else counted per second since the start") {
        rate_adapter a;
        a.start(t0);
        CHECK(*a.on_status(t0 + 1900ms, 30'000'000) == 360'000'000);  // a 0.9 s round trip
        rate_adapter b;
        b.start(t0);
        CHECK(*b.on_status(t0 + 2500ms, 75'000'000) == 360'000'000);  // 75 MB over 2.5 s
    }
    SECTION("B = 0 ends the silence but keeps the rate") {
        rate_adapter a(100'000'000);
        a.start(t0);
        a.on_timer(t0 + 2s, 100'000'000);
        CHECK(a.rate() == 50'000'000);
        CHECK_FALSE(a.on_status(t0 + 2100ms, 0));
        CHECK(a.rate() == 50'000'000);
        CHECK(*a.next_backoff() == t0 + 3600ms);
    }
}
