// Pending multi-connection sessions (PROTOCOL §7, §13.10) and UDP port blocks (§8.1).
#include <catch2/catch.hpp>

#include <set>

#include <btest/server/join_registry.hpp>
#include <btest/server/port_blocks.hpp>

using namespace btest;

namespace {
server_session* fake(std::uintptr_t n) { return reinterpret_cast<server_session*>(n * 16); }
const ip_address a = ip_address::v4(192, 0, 2, 1);
const ip_address b = ip_address::v4(192, 0, 2, 2);
} // namespace

TEST_CASE("joins: tokens never look like a COMMAND and are unique while pending") {
    seeded_entropy rng(1);
    join_registry r({1000, 1000, 10000});
    std::set<std::uint16_t> seen;
    for (std::uintptr_t i = 1; i <= 1000; ++i) {
        auto t = r.add(fake(i), ip_address::v4(10, 0, std::uint8_t(i >> 8), std::uint8_t(i)), 3, rng);
        REQUIRE(t);
        CHECK((*t >> 8) >= 2);      // HI ∉ {00, 01}
        CHECK((*t & 0xff) != 0);    // LO ≠ 00
        CHECK(seen.insert(*t).second);
    }
}

TEST_CASE("joins: a claim needs the token, the same IP and a missing slot") {
    seeded_entropy rng(2);
    join_registry r;
    auto t = r.add(fake(1), a, 2, rng);
    REQUIRE(t);
    CHECK(r.claim(static_cast<std::uint16_t>(*t ^ 1), a) == nullptr);  // wrong token
    CHECK(r.claim(*t, b) == nullptr);                                    // another IP
    CHECK(r.claim(*t, a) == fake(1));
    CHECK(r.claim(*t, a) == fake(1));
    CHECK(r.claim(*t, a) == nullptr);                                    // full: beyond N
    r.remove(fake(1));
    CHECK(r.pending() == 0);
    CHECK(r.claim(*t, a) == nullptr);                                    // forgotten
}

TEST_CASE("joins: pending sessions are capped in total and per IP") {
    seeded_entropy rng(3);
    join_registry r({3, 2});
    CHECK(r.add(fake(1), a, 1, rng));
    CHECK(r.add(fake(2), a, 1, rng));
    CHECK_FALSE(r.add(fake(3), a, 1, rng));   // per-IP cap
    CHECK(r.add(fake(4), b, 1, rng));
    CHECK_FALSE(r.add(fake(5), ip_address::v4(1, 1, 1, 1), 1, rng));  // total cap
    r.remove(fake(1));
    CHECK(r.add(fake(3), a, 1, rng));
}

TEST_CASE("joins: the connections pending sessions await are capped in total") {
    seeded_entropy rng(5);
    join_registry r({64, 64, 300});
    CHECK(r.add(fake(1), a, 254, rng));
    CHECK_FALSE(r.add(fake(2), b, 47, rng));  // 301 awaited
    CHECK(r.add(fake(2), b, 46, rng));
    r.remove(fake(1));
    CHECK(r.add(fake(3), a, 254, rng));
}

TEST_CASE("joins: 1000 random tokens never attach to the one pending session") {
    seeded_entropy rng(4), attacker(99);
    join_registry r;
    auto t = r.add(fake(1), a, 1, rng);
    REQUIRE(t);
    int attached = 0;
    for (int i = 0; i < 1000; ++i) {
        auto guess = static_cast<std::uint16_t>(attacker.u32());
        if (guess == *t) continue;  // a correct guess is not a random token
        attached += r.claim(guess, a) != nullptr;
        attached += r.claim(*t, b) != nullptr;  // right token, wrong IP
    }
    CHECK(attached == 0);
    CHECK(r.claim(*t, a) == fake(1));
}

TEST_CASE("ports: blocks ascend, never overlap, and are reused after release") {
    port_block_allocator p({2001, 65535 - 256, 64});
    auto yes = [](std::uint16_t) { return true; };
    CHECK(*p.acquire(1, yes) == 2001);
    CHECK(*p.acquire(20, yes) == 2002);     // 2002..2021
    CHECK(*p.acquire(1, yes) == 2022);
    p.release(2002);
    CHECK(*p.acquire(4, yes) == 2023);      // ascending from the last one handed out
    CHECK(p.active() == 3);
    CHECK(p.in_use(2025));
    CHECK_FALSE(p.in_use(2010));
}

TEST_CASE("ports: a port that cannot be bound is skipped, never announced") {
    port_block_allocator p;
    int tries = 0;
    auto port = p.acquire(1, [&](std::uint16_t q) { ++tries; return q >= 2005; });
    REQUIRE(port);
    CHECK(*port == 2005);
    CHECK(tries == 5);
    CHECK_FALSE(p.acquire(1, [](std::uint16_t) { return false; }));
}

TEST_CASE("ports: P + 256 + K - 1 stays within 65535, with wrap-around") {
    port_block_allocator p({65000, 65535, 8});
    auto yes = [](std::uint16_t) { return true; };
    auto first = p.acquire(10, yes);
    REQUIRE(first);
    CHECK(*first + 256 + 10 - 1 <= 65535);
    CHECK(*first == 65000);
    auto second = p.acquire(200, yes);
    REQUIRE(second);
    CHECK(*second + 256 + 200 - 1 <= 65535);
    CHECK_FALSE(p.acquire(300, yes));  // no room for a block that big
}

TEST_CASE("ports: the block limit refuses, release frees") {
    port_block_allocator p({2001, 3000, 2});
    auto yes = [](std::uint16_t) { return true; };
    auto x = p.acquire(1, yes);
    CHECK(p.acquire(1, yes));
    CHECK_FALSE(p.acquire(1, yes));
    p.release(*x);
    CHECK(p.acquire(1, yes));
}
