// Every combination of {TCP, UDP} × {transmit, receive, both} × {no auth, MD5, EC-SRP5} as a
// whole 10-second test in the memory world, with exact equalities:
//   - what each side counted equals what its link delivered (TCP: data + 12 × STATUS +
//     handshake bytes; UDP: datagrams and bytes, headers included);
//   - every second, the STATUS a receiver sent carries exactly the bytes it counted in that
//     second (compared with its own interval report);
//   - the test ends as the client's duration says, and nothing is left behind.
#include "sim_support.hpp"

using namespace sim;

namespace {

void check_combination(protocol p, direction d, auth_method a) {
    client_config c;
    c.proto = p;
    c.dir = d;
    c.test_duration = 10s;
    c.remote_tx_speed = 50'000'000;  // paced both ways: a steady, exactly countable test
    c.local_tx_speed = 50'000'000;
    c.tx_size = p == protocol::tcp ? 8192 : 1500;
    if (a != auth_method::none) {
        c.user = "user";
        c.password = "secret";
    }
    memory::world_config wc;
    wc.server.auth = a;
    wc.users = {{"user", "secret"}};
    memory::link_model link;
    link.bits_per_second = 1'000'000'000;
    link.delay = 1ms;
    memory::world w{c, wc, link};
    auto& client = w.client();

    REQUIRE(w.run_until([&] { return has_started(client.events()); }, 5s));
    const auto t0 = w.now();
    const server_session* server = nullptr;

    // Half a second after each tick, the STATUS of that second has arrived: it must carry what
    // the receiver counted in the second, as its own report says.
    for (int k = 1; k <= 9; ++k) {
        w.run_until([] { return false; }, t0 + k * 1s + 500ms - w.now());
        auto tests = w.server_tests();
        REQUIRE(tests.size() == 1);
        server = tests[0];
        INFO("second " << k);
        const auto server_report = last_report(w.server_events());
        const auto client_report = last_report(client.events());
        REQUIRE(server_report);
        REQUIRE(client_report);
        if (client_sends(d)) {
            REQUIRE(client.session().conn_stats(0).peer_bytes);
            CHECK(*client.session().conn_stats(0).peer_bytes == server_report->rx.bytes);
            CHECK(server_report->rx.bytes > 0);
        }
        if (server_sends(d)) {
            REQUIRE(server->conn_stats(0).peer_bytes);
            CHECK(*server->conn_stats(0).peer_bytes == client_report->rx.bytes);
            CHECK(client_report->rx.bytes > 0);
        }
    }
    REQUIRE(w.run_until_finished(5s));
    w.run_for(1s);  // the server sees the close

    const auto cs = client.summary();
    const auto ss = server->summary();
    CHECK(cs.reason == end_reason::completed);
    CHECK(ss.reason == end_reason::peer_closed);
    CHECK_FALSE(cs.error);
    CHECK_FALSE(ss.error);
    CHECK(cs.elapsed == 10s);
    CHECK(cs.tx.active == client_sends(d));
    CHECK(cs.rx.active == server_sends(d));

    // Reports: one per second; a partial one at the end only when the test ended off-boundary.
    for (const auto* evs : {&client.events(), &w.server_events()}) {
        const auto rs = reports(*evs);
        REQUIRE(rs.size() >= 10);
        for (std::size_t i = 0; i + 1 < rs.size(); ++i) CHECK_FALSE(rs[i].final);
        CHECK(rs.size() == (rs.back().final ? 11u : 10u));
    }
    CHECK_FALSE(reports(client.events()).back().final);    // the client ends at exactly 10 s
    CHECK(reports(w.server_events()).back().final);        // the server a little later

    const auto hs = handshake_size(p, a, c.user);
    if (p == protocol::tcp) {
        // Every byte the client wrote reached the server before its FIN.
        CHECK(ss.rx.bytes == cs.tx.bytes);
        CHECK(ss.rx.bytes + 12 * ss.status_received + hs.up == client.up().tcp_bytes_delivered);
        CHECK(cs.rx.bytes + 12 * cs.status_received + hs.down == client.down().tcp_bytes_delivered);
        // The server may still have been writing when the client left: in flight, not lost.
        CHECK(ss.tx.bytes >= cs.rx.bytes);
    } else {
        CHECK(ss.rx.bytes == client.up().delivered_bytes);
        CHECK(ss.rx.packets == client.up().datagrams_delivered);
        CHECK(cs.rx.bytes == client.down().delivered_bytes);
        CHECK(cs.rx.packets == client.down().datagrams_delivered);
        CHECK(ss.rx.lost_packets == client.up().expected_lost());
        CHECK(cs.rx.lost_packets == client.down().expected_lost());
        CHECK(cs.tx.packets == client.up().datagrams_sent);
        CHECK(ss.tx.packets == client.down().datagrams_sent);
        CHECK(cs.status_sent == 9);   // the 10th falls due as the test ends: never written
        CHECK(ss.status_sent >= 10);
    }
    // Paced at 50 Mbit/s: the sender's average is the requested rate.
    if (client_sends(d)) CHECK(double(cs.tx.average_bps) == Approx(50e6).epsilon(0.01));
    if (server_sends(d)) CHECK(double(cs.rx.average_bps) == Approx(50e6).epsilon(0.01));
    check_no_leaks(w);
}

} // namespace

#define BTEST_MATRIX(P, D, A)                                                    \
    TEST_CASE("matrix: " #P " " #D " auth=" #A) {                                \
        check_combination(protocol::P, direction::D, auth_method::A);            \
    }

BTEST_MATRIX(tcp, transmit, none)
BTEST_MATRIX(tcp, receive, none)
BTEST_MATRIX(tcp, both, none)
BTEST_MATRIX(udp, transmit, none)
BTEST_MATRIX(udp, receive, none)
BTEST_MATRIX(udp, both, none)
BTEST_MATRIX(tcp, transmit, md5)
BTEST_MATRIX(tcp, receive, md5)
BTEST_MATRIX(tcp, both, md5)
BTEST_MATRIX(udp, transmit, md5)
BTEST_MATRIX(udp, receive, md5)
BTEST_MATRIX(udp, both, md5)
BTEST_MATRIX(tcp, transmit, ec_srp5)
BTEST_MATRIX(tcp, receive, ec_srp5)
BTEST_MATRIX(tcp, both, ec_srp5)
BTEST_MATRIX(udp, transmit, ec_srp5)
BTEST_MATRIX(udp, receive, ec_srp5)
BTEST_MATRIX(udp, both, ec_srp5)
