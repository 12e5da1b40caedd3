// Per-IP policies for public servers: failed-authentication throttling and connection caps.
#include <catch2/catch.hpp>

#include <btest/server/limits.hpp>

using namespace btest;
using namespace std::chrono_literals;

namespace {
const ip_address a = ip_address::v4(198, 51, 100, 1);
const ip_address b = ip_address::v4(198, 51, 100, 2);
} // namespace

TEST_CASE("limits: ten failed logins in a minute block that address for a minute") {
    auth_throttle t;
    time_point now{};
    for (int i = 0; i < 9; ++i) {
        CHECK_FALSE(t.record_failure(a, now));
        now += 5s;
    }
    CHECK_FALSE(t.blocked(a, now));
    CHECK(t.record_failure(a, now));  // the tenth, 45 s after the first
    CHECK(t.blocked(a, now));
    CHECK_FALSE(t.blocked(b, now));    // others are not affected
    CHECK(t.blocked(a, now + 59s));
    CHECK_FALSE(t.blocked(a, now + 60s));
}

TEST_CASE("limits: failures spread over more than the window never block") {
    auth_throttle t;
    time_point now{};
    for (int i = 0; i < 100; ++i) {
        CHECK_FALSE(t.record_failure(a, now));
        now += 7s;  // at most 9 in any window that starts with a failure
    }
}

TEST_CASE("limits: the throttle remembers a bounded number of addresses") {
    auth_throttle t({3, 60s, 60s, 100});
    time_point now{};
    // The attacker first: blocked.
    for (int i = 0; i < 3; ++i) t.record_failure(a, now);
    CHECK(t.blocked(a, now));
    // A flood of one failure each from 1000 other addresses.
    for (std::uint32_t i = 0; i < 1000; ++i) {
        t.record_failure(ip_address::v4(10, std::uint8_t(i >> 16), std::uint8_t(i >> 8), std::uint8_t(i)), now);
        CHECK(t.tracked() <= 100);
    }
    // Once the flood's records have expired, they make room before a still-blocked one goes.
    now += 61s;
    CHECK_FALSE(t.blocked(a, now));
    t.record_failure(b, now);
    CHECK(t.tracked() <= 100);
}

TEST_CASE("limits: max_failures 0 turns throttling off") {
    auth_throttle t({0, 60s, 60s, 10});
    for (int i = 0; i < 100; ++i) CHECK_FALSE(t.record_failure(a, {}));
    CHECK_FALSE(t.blocked(a, {}));
}

TEST_CASE("limits: connections per source IP") {
    connection_counter c(2);
    CHECK(c.try_add(a));
    CHECK(c.try_add(a));
    CHECK_FALSE(c.try_add(a));
    CHECK(c.try_add(b));
    CHECK(c.count(a) == 2);
    c.remove(a);
    CHECK(c.try_add(a));
    c.remove(a);
    c.remove(a);
    c.remove(a);  // more removes than adds: harmless
    CHECK(c.count(a) == 0);
    CHECK(c.addresses() == 1);
    connection_counter unlimited(0);
    for (int i = 0; i < 1000; ++i) CHECK(unlimited.try_add(a));
}
