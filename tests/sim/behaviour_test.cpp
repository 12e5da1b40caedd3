// Whole-test behaviour in the memory world: induced loss, pacing accuracy, speed adaptation and
// its cap, and every way a test fails, each checked for leftovers.
#include <cmath>

#include <btest/wire/command.hpp>

#include "sim_support.hpp"
#include "test/hex.hpp"

using namespace sim;

namespace {

client_config udp_cfg(direction d, std::uint64_t remote, std::uint64_t local, duration len = 10s) {
    client_config c;
    c.proto = protocol::udp;
    c.dir = d;
    c.remote_tx_speed = remote;
    c.local_tx_speed = local;
    c.test_duration = len;
    return c;
}

memory::link_model fast_link(duration delay = 1ms) {
    memory::link_model l;
    l.nic_bits_per_second = 10'000'000'000ULL;
    l.delay = delay;
    return l;
}

} // namespace

// ---- loss --------------------------------------------------------------------------------

TEST_CASE("sim: induced UDP loss is reported exactly, every 64th datagram") {
    auto link = fast_link();
    memory::link_model down = link;
    down.loss = memory::every_nth(64);
    memory::world w{memory::world_config{}};
    auto& client = w.add_client(udp_cfg(direction::receive, 100'000'000, 0), link, down);
    REQUIRE(w.run_until_finished(15s));
    w.run_for(1s);
    const auto s = client.summary();
    CHECK(client.down().datagrams_dropped > 1000);
    CHECK(s.rx.lost_packets == client.down().expected_lost());
    // Nothing is dropped after the last datagram received here, so every drop is a loss.
    CHECK(s.rx.lost_packets == client.down().datagrams_dropped);
    CHECK(s.rx.packets == client.down().datagrams_delivered);
    check_no_leaks(w);
}

TEST_CASE("sim: random loss with reordering is counted exactly") {
    auto link = fast_link();
    memory::link_model up = link;
    up.loss_probability = 0.01;
    up.reorder_probability = 0.02;
    up.reorder_delay = 300us;  // many datagrams overtake the delayed ones
    up.seed = 42;
    memory::world w{memory::world_config{}};
    auto& client = w.add_client(udp_cfg(direction::transmit, 0, 100'000'000), up, link);
    REQUIRE(w.run_until_finished(15s));
    w.run_for(1s);
    const auto* server = w.server_tests().at(0);
    const auto s = server->summary();
    CHECK(client.up().reordered > 1000);
    CHECK(client.up().datagrams_dropped > 500);
    CHECK(s.rx.lost_packets == client.up().expected_lost());
    CHECK(s.rx.packets == client.up().datagrams_delivered);
    CHECK(s.rx.bytes == client.up().delivered_bytes);
    check_no_leaks(w);
}

// ---- pacing ------------------------------------------------------------------------------

namespace {
void check_pacing(protocol p, std::uint64_t rate, std::uint16_t tx_size) {
    INFO(name(p) << " at " << rate << " bit/s, units of " << tx_size);
    client_config c;
    c.proto = p;
    c.dir = direction::receive;  // the server paces at remote_tx_speed
    c.remote_tx_speed = rate;
    c.tx_size = tx_size;
    c.test_duration = 10s;
    memory::world w{c, {}, fast_link()};
    REQUIRE(w.run_until_finished(15s));
    w.run_for(1s);
    const auto* server = w.server_tests().at(0);
    const auto rs = reports(w.server_events());
    REQUIRE(rs.size() >= 10);
    // Every one of the 10 seconds within 1 % of the rate, at the sender and at the receiver.
    for (int k = 0; k < 10; ++k) {
        INFO("second " << k);
        CHECK(double(rs[std::size_t(k)].tx.bits_per_second) == Approx(double(rate)).epsilon(0.01));
    }
    const auto cr = reports(w.client().events());
    for (int k = 1; k < 9; ++k) {
        INFO("receiver second " << k);
        CHECK(double(cr[std::size_t(k)].rx.bits_per_second) == Approx(double(rate)).epsilon(0.01));
    }
    // Over the 10 seconds within 0.5 %.
    std::uint64_t bytes10 = 0;
    for (int k = 0; k < 10; ++k) bytes10 += rs[std::size_t(k)].tx.bytes;
    CHECK(double(bytes10) * 8 / 10.0 == Approx(double(rate)).epsilon(0.005));
    CHECK(server->summary().tx.average10_bps > 0);
}
} // namespace

TEST_CASE("sim: UDP pacing at 1 Mbit/s") { check_pacing(protocol::udp, 1'000'000, 1500); }
TEST_CASE("sim: UDP pacing at 100 Mbit/s") { check_pacing(protocol::udp, 100'000'000, 1500); }
TEST_CASE("sim: UDP pacing at 1 Gbit/s") { check_pacing(protocol::udp, 1'000'000'000, 1500); }
TEST_CASE("sim: TCP pacing at 1 Mbit/s") { check_pacing(protocol::tcp, 1'000'000, 1000); }
TEST_CASE("sim: TCP pacing at 100 Mbit/s") { check_pacing(protocol::tcp, 100'000'000, 32768); }
TEST_CASE("sim: TCP pacing at 1 Gbit/s") { check_pacing(protocol::tcp, 1'000'000'000, 32768); }

// ---- adaptation --------------------------------------------------------------------------

TEST_CASE("sim: UDP adaptation converges to a 200 Mbit/s bottleneck within 3 seconds") {
    memory::link_model link = fast_link(2ms);
    memory::link_model down = link;
    down.bits_per_second = 200'000'000;
    down.nic_bits_per_second = 1'000'000'000;
    memory::world w{memory::world_config{}};
    auto& client = w.add_client(udp_cfg(direction::receive, 0, 0), link, down);
    REQUIRE(w.run_until_finished(15s));
    w.run_for(1s);
    const auto rx = reports(client.events());
    const auto tx = reports(w.server_events());
    REQUIRE(rx.size() >= 10);
    REQUIRE(tx.size() >= 10);
    CHECK(tx[0].tx.bits_per_second > 600'000'000);  // unpaced until the first STATUS
    for (std::size_t k = 3; k < 10; ++k) {
        INFO("second " << k);
        // The receiver gets the bottleneck rate; the sender offers 1.5 × what was received.
        CHECK(double(rx[k].rx.bits_per_second) == Approx(200e6).epsilon(0.01));
        CHECK(double(tx[k].tx.bits_per_second) == Approx(300e6).epsilon(0.02));
    }
    check_no_leaks(w);
}

TEST_CASE("sim: UDP adaptation never exceeds the requested cap") {
    for (auto cap : {150'000'000ULL, 50'000'000ULL}) {
        INFO("cap " << cap);
        memory::link_model link = fast_link();
        memory::world w{memory::world_config{}};
        auto& client = w.add_client(udp_cfg(direction::transmit, 0, cap), link, link);
        REQUIRE(w.run_until_finished(15s));
        const auto tx = reports(client.events());
        REQUIRE(tx.size() >= 10);
        for (std::size_t k = 0; k < tx.size(); ++k) {
            INFO("second " << k);
            // One datagram of rounding in the first second (the unit due at time zero).
            CHECK(tx[k].tx.bytes * 8 <= cap + 1500 * 8);
        }
        CHECK(double(client.summary().tx.average_bps) == Approx(double(cap)).epsilon(0.01));
    }
}

TEST_CASE("sim: a capped sender behind a narrower bottleneck adapts below its cap") {
    memory::link_model link = fast_link();
    memory::link_model up = link;
    up.bits_per_second = 20'000'000;
    memory::world w{memory::world_config{}};
    auto& client = w.add_client(udp_cfg(direction::transmit, 0, 100'000'000), up, link);
    REQUIRE(w.run_until_finished(15s));
    const auto tx = reports(client.events());
    for (std::size_t k = 3; k < 10; ++k) {
        INFO("second " << k);
        CHECK(double(tx[k].tx.bits_per_second) == Approx(30e6).epsilon(0.02));
    }
}

// ---- failures and leftovers --------------------------------------------------------------

TEST_CASE("sim: a wrong password ends both sides with auth_failed and leaves nothing") {
    for (auto a : {auth_method::md5, auth_method::ec_srp5}) {
        INFO(name(a));
        client_config c;
        c.user = "user";
        c.password = "wrong";
        c.test_duration = 5s;
        memory::world_config wc;
        wc.server.auth = a;
        wc.users = {{"user", "secret"}};
        memory::world w{c, wc, fast_link()};
        REQUIRE(w.run_until_finished(5s));
        w.run_for(3s);
        CHECK(w.client().summary().error == errc::auth_failed);
        const auto server_closed = closed_event(w.server_events());
        REQUIRE(server_closed);
        CHECK(server_closed->error == errc::auth_failed);
        CHECK(w.server_tests().empty());
        check_no_leaks(w);
    }
}

TEST_CASE("sim: no credentials against an authenticating server") {
    memory::world_config wc;
    wc.server.auth = auth_method::ec_srp5;
    wc.users = {{"user", "secret"}};
    memory::world w{client_config{}, wc, fast_link()};
    REQUIRE(w.run_until_finished(5s));
    w.run_for(3s);
    CHECK(w.client().summary().error == errc::auth_required);
    check_no_leaks(w);
}

TEST_CASE("sim: a peer that says nothing hits the handshake timeout") {
    memory::world w{memory::world_config{}};
    const auto raw = w.connect_raw(ip_address::v4(10, 9, 9, 9));
    w.run_for(9s);
    CHECK(w.live_server_sessions() == 1);
    CHECK(test::hex(w.raw(raw).received) == "01000000");
    w.run_for(2s);
    CHECK(w.raw(raw).closed_by_server);
    const auto closed = closed_event(w.server_events());
    REQUIRE(closed);
    CHECK(closed->error == errc::handshake_timeout);
    w.raw_close(raw);
    w.run_for(1s);
    check_no_leaks(w);
}

TEST_CASE("sim: a UDP peer that goes silent hits T_idle and frees its port") {
    memory::world w{memory::world_config{}};
    const auto raw = w.connect_raw(ip_address::v4(10, 9, 9, 9));
    w.run_for(10ms);
    w.raw_write(raw, test::unhex("00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00"));
    w.run_for(10ms);
    CHECK(test::hex(w.raw(raw).received) == "01000000" "01000000" "07d1");
    CHECK(w.udp_blocks_in_use() == 1);
    w.run_for(11s);
    const auto closed = closed_event(w.server_events());
    REQUIRE(closed);
    CHECK(closed->error == errc::peer_silent);
    CHECK(w.udp_blocks_in_use() == 0);
    w.raw_close(raw);
    w.run_for(1s);
    check_no_leaks(w);
}

TEST_CASE("sim: a half-close mid-test ends the server's test as the client leaving") {
    memory::world w{memory::world_config{}};
    const auto raw = w.connect_raw(ip_address::v4(10, 9, 9, 9));
    w.run_for(10ms);
    w.raw_write(raw, test::unhex("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00"));
    w.raw_write(raw, std::vector<std::byte>(100'000));
    w.run_for(1500ms);
    w.raw_close(raw);  // FIN: the client's sending direction ends
    w.run_for(100ms);
    auto tests = w.server_tests();
    REQUIRE(tests.size() == 1);
    const auto s = tests[0]->summary();
    CHECK(s.reason == end_reason::peer_closed);
    CHECK_FALSE(s.error);
    CHECK(s.rx.bytes == 100'000);
    check_no_leaks(w);
}

TEST_CASE("sim: a server ending the test (T_max) ends the client's as peer_closed") {
    client_config c;
    c.proto = protocol::udp;
    c.dir = direction::both;
    c.remote_tx_speed = c.local_tx_speed = 10'000'000;
    c.test_duration = 30s;
    memory::world_config wc;
    wc.server.limits.max_test = 3s;
    memory::world w{c, wc, fast_link()};
    REQUIRE(w.run_until_finished(10s));
    w.run_for(1s);
    CHECK(w.client().summary().reason == end_reason::peer_closed);
    CHECK(w.server_tests().at(0)->summary().reason == end_reason::max_duration);
    check_no_leaks(w);
}

TEST_CASE("sim: max-sessions refuses the next connection and recovers") {
    memory::world_config wc;
    wc.max_sessions = 2;
    client_config c;
    c.test_duration = 2s;
    memory::world w{wc};
    w.add_client(c);
    w.add_client(c);
    auto& third = w.add_client(c);
    w.run_for(100ms);
    CHECK(w.refused_connections() == 1);
    REQUIRE(w.run_until_finished(5s));
    CHECK(third.summary().error == errc::peer_closed);  // closed instead of HELLO
    auto& fourth = w.add_client(c);
    REQUIRE(w.run_until_finished(5s));
    w.run_for(1s);
    CHECK(fourth.summary().reason == end_reason::completed);
    check_no_leaks(w);
}

TEST_CASE("sim: concurrent UDP tests get distinct port blocks, released afterwards") {
    memory::world w{memory::world_config{}};
    for (int i = 0; i < 20; ++i) {
        auto c = udp_cfg(direction::both, 1'000'000, 1'000'000, 3s);
        c.connection_count = 1 + i % 3;
        w.add_client(c);
    }
    w.run_for(500ms);
    CHECK(w.udp_blocks_in_use() == 20);
    REQUIRE(w.run_until_finished(10s));
    w.run_for(1s);
    for (std::size_t i = 0; i < w.client_count(); ++i) CHECK(w.client(i).summary().reason == end_reason::completed);
    check_no_leaks(w);
}

TEST_CASE("sim: each side's CPU load travels in its STATUS and shows as the peer's remote CPU") {
    for (auto p : {protocol::tcp, protocol::udp}) {
        INFO(name(p));
        client_config c;
        c.proto = p;
        c.dir = direction::both;
        c.remote_tx_speed = c.local_tx_speed = 10'000'000;
        c.test_duration = 3s;
        memory::world_config wc;
        wc.server_cpu = 62;
        memory::world w{c, wc, fast_link()};
        auto& client = w.client();
        REQUIRE(w.run_until([&] { return client.has_session(); }, 1s));
        client.session().set_local_cpu(20);
        REQUIRE(w.run_until_finished(10s));
        w.run_for(1s);
        CHECK(client.summary().local_cpu == 20);
        CHECK(client.summary().remote_cpu == std::optional<std::uint8_t>(62));
        const auto* server = w.server_tests().at(0);
        CHECK(server->summary().remote_cpu == std::optional<std::uint8_t>(20));
        const auto r = last_report(client.events());
        REQUIRE(r);
        CHECK(r->local_cpu == 20);
        CHECK(r->remote_cpu == std::optional<std::uint8_t>(62));
    }
}
