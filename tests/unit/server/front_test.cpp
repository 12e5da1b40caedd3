// The server front end (server/front.hpp): HELLO, routing by the first message, T_hs, and the
// policy settled exactly once per connection whatever way it goes.
#include <catch2/catch.hpp>

#include <array>
#include <variant>

#include <btest/core/entropy.hpp>
#include <btest/server/front.hpp>
#include <btest/server/policy.hpp>

#include "test/hex.hpp"

using namespace btest;
using namespace std::chrono_literals;

namespace {
const endpoint peer{ip_address::v4(192, 0, 2, 10), 50000};
const endpoint other{ip_address::v4(192, 0, 2, 11), 50001};
const char* cmd_tcp = "01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00";

std::string hello_of(server_front& f, conn_id id) {
    std::array<std::byte, 16> out{};
    return test::hex(std::span(out).first(f.write_to(id, {}, out)));
}
} // namespace

TEST_CASE("front: HELLO, then a COMMAND routes a new test and the rest of the bytes stay") {
    server_policy policy;
    server_front f({}, policy);
    const auto id = f.accept({}, peer);
    CHECK(hello_of(f, id) == "01000000");
    CHECK(hello_of(f, id).empty());  // once
    auto bytes = test::unhex(cmd_tcp);
    bytes.push_back(std::byte{0x42});
    CHECK(f.feed(id, {}, std::span(bytes).first(10)) == 10);
    CHECK_FALSE(f.poll_route());
    CHECK(f.feed(id, {}, std::span(bytes).subspan(10)) == 6);  // the 0x42 is not the front end's
    auto r = f.poll_route();
    REQUIRE(r);
    auto* t = std::get_if<route_test>(&*r);
    REQUIRE(t);
    CHECK(t->conn == id);
    CHECK(t->peer == peer);
    CHECK(t->command.dir == direction::receive);
    CHECK(t->ticket.counts_as_test());
    CHECK(f.pending() == 0);
    CHECK(policy.admission().tests() == 1);
    CHECK(policy.connections().count(peer.address) == 1);  // counted until the transport closes it
    policy.release(t->ticket);
    policy.connection_closed(peer.address);
    CHECK(policy.admission().tests() == 0);
    CHECK(policy.connections().addresses() == 0);
}

TEST_CASE("front: a JOIN of a pending test from the same address is routed to it, others are not") {
    server_policy policy;
    server_front f({}, policy);
    seeded_entropy rng{3};
    int owner = 0;  // stands in for the pending session
    auto* pending = reinterpret_cast<server_session*>(&owner);
    const auto token = f.joins().add(pending, peer.address, 2, rng);
    REQUIRE(token);
    const auto join = wire::encode_join(*token);

    const auto a = f.accept({}, peer);
    f.feed(a, {}, join);
    auto r = f.poll_route();
    REQUIRE(r);
    auto* j = std::get_if<route_join>(&*r);
    REQUIRE(j);
    CHECK(j->session == pending);
    CHECK(policy.admission().handshaking() == 0);  // its handshake slot went back
    CHECK(policy.connections().count(peer.address) == 1);

    // The same token from another address reads as a COMMAND: not a valid one.
    const auto b = f.accept({}, other);
    f.feed(b, {}, join);
    r = f.poll_route();
    REQUIRE(r);
    auto* c = std::get_if<route_close>(&*r);
    REQUIRE(c);
    CHECK(c->error == errc::invalid_command);
    CHECK_FALSE(c->refused);
    CHECK(policy.connections().count(other.address) == 0);  // the front end settled it
}

TEST_CASE("front: conn_count above the maximum and garbage are closed without a reply") {
    server_policy policy;
    front_config cfg;
    cfg.max_conn_count = 10;
    server_front f(cfg, policy);
    for (const char* bad : {"01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00",
                            "02 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00",
                            "ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"}) {
        INFO(bad);
        const auto id = f.accept({}, peer);
        f.feed(id, {}, test::unhex(bad));
        auto r = f.poll_route();
        REQUIRE(r);
        REQUIRE(std::holds_alternative<route_close>(*r));
        CHECK(std::get<route_close>(*r).error == errc::invalid_command);
    }
    CHECK(policy.admission().handshaking() == 0);
    CHECK(policy.connections().addresses() == 0);
}

TEST_CASE("front: T_hs closes a connection whose first message does not come, byte by byte or not") {
    server_policy policy;
    front_config cfg;
    cfg.handshake = 10s;
    server_front f(cfg, policy);
    const time_point t0{};
    const auto id = f.accept(t0, peer);
    REQUIRE(f.next_deadline() == t0 + 10s);
    for (int i = 1; i < 10; ++i) {
        f.feed(id, t0 + std::chrono::seconds(i), test::unhex("01"));
        f.on_timer(t0 + std::chrono::seconds(i));
        CHECK_FALSE(f.poll_route());
    }
    f.on_timer(t0 + 10s);
    auto r = f.poll_route();
    REQUIRE(r);
    REQUIRE(std::holds_alternative<route_close>(*r));
    CHECK(std::get<route_close>(*r).error == errc::handshake_timeout);
    CHECK_FALSE(f.next_deadline());
    CHECK(policy.connections().addresses() == 0);
}

TEST_CASE("front: a peer closing before its first message is forgotten and settled") {
    server_policy policy;
    server_front f({}, policy);
    const auto id = f.accept({}, peer);
    f.feed(id, {}, test::unhex("01 02"));
    f.closed(id, {});
    CHECK(f.pending() == 0);
    CHECK_FALSE(f.poll_route());
    CHECK_FALSE(f.next_deadline());
    CHECK(policy.admission().handshaking() == 0);
    CHECK(policy.connections().addresses() == 0);
    // A route decided but not yet taken goes back too.
    const auto id2 = f.accept({}, peer);
    f.feed(id2, {}, test::unhex(cmd_tcp));
    f.closed(id2, {});
    CHECK_FALSE(f.poll_route());
    CHECK(policy.admission().tests() == 0);
    CHECK(policy.connections().addresses() == 0);
}

TEST_CASE("front: refusals come before HELLO: per-address limit, login throttle, address filter, max sessions") {
    server_policy::limits l;
    l.sessions.max_sessions = 1;
    l.max_connections_per_ip = 2;
    l.auth_failures.max_failures = 1;
    address_filter filter;
    filter.deny(*ip_network::parse("198.51.100.0/24"));
    server_policy policy(l, filter);
    server_front f({}, policy);
    auto refused = [&](const endpoint& from) -> std::optional<refusal> {
        const auto id = f.accept({}, from);
        std::array<std::byte, 8> out{};
        const bool hello = f.write_to(id, {}, out) > 0;
        auto r = f.poll_route();
        if (!r) {
            CHECK(hello);
            return std::nullopt;
        }
        CHECK_FALSE(hello);
        return std::get<route_close>(*r).refused;
    };
    CHECK(refused({ip_address::v4(198, 51, 100, 9), 1}) == refusal::address_denied);
    CHECK_FALSE(refused(peer));
    CHECK_FALSE(refused(peer));
    CHECK(refused(peer) == refusal::connections_per_ip);
    policy.auth_failed(other.address, {});
    CHECK(refused(other) == refusal::auth_failures);
    // One test runs: the next COMMAND is refused after HELLO, a new connection before it.
    const endpoint third{ip_address::v4(192, 0, 2, 12), 1};
    const auto a = f.accept({}, third);
    f.feed(a, {}, test::unhex(cmd_tcp));
    auto r = f.poll_route();
    REQUIRE((r && std::holds_alternative<route_test>(*r)));
    CHECK(refused({ip_address::v4(192, 0, 2, 13), 1}) == refusal::max_sessions);
}

TEST_CASE("address filter: CIDR parsing and matching, IPv4 and IPv6") {
    auto n = ip_network::parse("192.0.2.7/24");
    REQUIRE(n);
    CHECK(n->to_string() == "192.0.2.0/24");
    CHECK(n->contains(ip_address::v4(192, 0, 2, 255)));
    CHECK_FALSE(n->contains(ip_address::v4(192, 0, 3, 1)));
    auto h = ip_network::parse("10.1.2.3");
    REQUIRE(h);
    CHECK(h->prefix == 32);
    auto v6 = ip_network::parse("2001:db8::/32");
    REQUIRE(v6);
    CHECK(v6->contains(*ip_network::parse_ip("2001:db8:ffff::1")));
    CHECK_FALSE(v6->contains(*ip_network::parse_ip("2001:db9::1")));
    CHECK_FALSE(v6->contains(ip_address::v4(32, 1, 13, 184)));  // families never mix
    CHECK(ip_network::parse_ip("::ffff:192.0.2.1").has_value());
    CHECK(ip_network::parse("::/0")->contains(*ip_network::parse_ip("fe80::1")));
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.4/33", "1.2.3.4/", "::1/129", "1::2::3",
                            "12345::", "1:2:3:4:5:6:7:8:9", "10.0.0.1/-1", "10.0.0.01 ", "fe80::1%eth0"}) {
        INFO(bad);
        CHECK_FALSE(ip_network::parse(bad));
    }
    address_filter f;
    CHECK(f.permits(ip_address::v4(1, 2, 3, 4)));
    f.allow(*ip_network::parse("127.0.0.0/8"));
    f.deny(*ip_network::parse("127.0.0.2"));
    CHECK(f.permits(ip_address::v4(127, 0, 0, 1)));
    CHECK_FALSE(f.permits(ip_address::v4(127, 0, 0, 2)));  // deny wins
    CHECK_FALSE(f.permits(ip_address::v4(10, 0, 0, 1)));   // not on the allow list
}
