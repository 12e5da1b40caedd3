// max_sessions admission (PROTOCOL §12.4): tests counted from their COMMAND, connections in
// their handshake capped, a pending multi-connection test's joins let in at the limit.
#include <catch2/catch.hpp>

#include <btest/core/entropy.hpp>
#include <btest/server/admission.hpp>

using namespace btest;

namespace {
const ip_address a = ip_address::v4(198, 51, 100, 1);
const ip_address b = ip_address::v4(198, 51, 100, 2);
} // namespace

TEST_CASE("admission: a test counts from its COMMAND until released") {
    session_admission adm({2, 4});
    join_registry joins;
    session_admission::ticket t1, t2, t3;
    REQUIRE(adm.admit_connection(a, joins, t1));
    CHECK(adm.handshaking() == 1);
    CHECK(adm.tests() == 0);
    CHECK(adm.admit_command(t1));
    CHECK(t1.counts_as_test());
    CHECK(adm.handshaking() == 0);
    CHECK(adm.tests() == 1);
    REQUIRE(adm.admit_connection(b, joins, t2));
    CHECK(adm.admit_command(t2));
    CHECK(adm.tests() == 2);
    // Full: the next connection is closed before HELLO.
    CHECK_FALSE(adm.admit_connection(a, joins, t3));
    CHECK(adm.handshaking() == 0);
    adm.release(t1);
    CHECK(adm.tests() == 1);
    CHECK(adm.admit_connection(a, joins, t3));
    adm.release(t3);  // e.g. closed during its handshake
    adm.release(t3);  // idempotent
    adm.release(t2);
    CHECK(adm.tests() == 0);
    CHECK(adm.handshaking() == 0);
}

TEST_CASE("admission: at the limit a pending test's peer may still connect (a JOIN), but a COMMAND is refused") {
    session_admission adm({1, 4});
    join_registry joins;
    seeded_entropy rng{7};
    session_admission::ticket first, join, other, sneaky;
    REQUIRE(adm.admit_connection(a, joins, first));
    REQUIRE(adm.admit_command(first));
    REQUIRE(joins.add(nullptr, a, 3, rng));  // the test waits for 3 more connections from a
    CHECK(adm.admit_connection(a, joins, join));         // may be a JOIN
    CHECK_FALSE(adm.admit_connection(b, joins, other));  // nothing pending from b
    REQUIRE(adm.admit_connection(a, joins, sneaky));
    CHECK_FALSE(adm.admit_command(sneaky));              // it was a COMMAND after all: refused
    CHECK_FALSE(sneaky.counts_as_test());
    CHECK(adm.handshaking() == 1);
    adm.release(join);                                   // handed off to the test it joined
    CHECK(adm.handshaking() == 0);
    CHECK(adm.tests() == 1);
}

TEST_CASE("admission: connections in their handshake are capped at max_sessions + slack") {
    session_admission adm({2, 1});
    join_registry joins;
    session_admission::ticket t[4];
    CHECK(adm.admit_connection(a, joins, t[0]));
    CHECK(adm.admit_connection(a, joins, t[1]));
    CHECK(adm.admit_connection(a, joins, t[2]));
    CHECK_FALSE(adm.admit_connection(a, joins, t[3]));
    adm.release(t[0]);
    CHECK(adm.admit_connection(a, joins, t[3]));
}
