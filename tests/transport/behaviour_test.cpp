// The Asio transport over loopback beyond the matrix: rate accuracy, many tests at once with
// port reuse, multi-connection TCP and multi-stream UDP, and a server that stops mid-test.
#include <catch2/catch.hpp>

#include <set>

#include "loopback.hpp"

using namespace std::chrono_literals;

namespace {

btest::asio::server_options server_on(loopback::ports p) {
    btest::asio::server_options so;
    so.port = p.tcp;
    so.udp_ports.base = p.udp_base;
    so.udp_ports.last = static_cast<std::uint16_t>(p.udp_base + 40);
    so.listen_v4 = boost::asio::ip::make_address("127.0.0.1");
    so.listen_v6.reset();
    return so;
}

btest::asio::client_options client_to(loopback::ports p, btest::protocol proto, btest::direction dir,
                                      std::uint64_t rate, std::chrono::milliseconds length) {
    btest::asio::client_options co;
    co.host = "127.0.0.1";
    co.port = p.tcp;
    co.session.proto = proto;
    co.session.dir = dir;
    co.session.local_tx_speed = rate;
    co.session.remote_tx_speed = rate;
    co.session.test_duration = length;
    return co;
}

void rate_holds(btest::protocol proto, unsigned slot) {
    const auto p = loopback::slot(slot);
    loopback::rig rig(server_on(p));
    REQUIRE_FALSE(rig.start());
    constexpr std::uint64_t rate = 100'000'000;
    auto& c = rig.add_client(client_to(p, proto, btest::direction::both, rate, 5000ms));
    REQUIRE(rig.run_until([&] { return c.done && rig.log().closed_tests == 1; }, 20s));
    REQUIRE(c.summary);
    const auto& cs = *c.summary;
    const auto& ss = rig.log().finished().at(0)->summary;
    INFO("client tx " << cs.tx.average_bps << ", server rx " << ss.rx.average_bps << ", server tx " << ss.tx.average_bps
                      << ", client rx " << cs.rx.average_bps << " bit/s over " << std::chrono::duration<double>(cs.elapsed).count()
                      << " s");
    CHECK(cs.reason == btest::end_reason::completed);
    // Both senders hold the requested rate within 2 %, and the receivers see it.
    CHECK(cs.tx.average_bps == Approx(rate).epsilon(0.02));
    CHECK(ss.tx.average_bps == Approx(rate).epsilon(0.02));
    CHECK(ss.rx.average_bps == Approx(rate).epsilon(0.02));
    CHECK(cs.rx.average_bps == Approx(rate).epsilon(0.02));
    // RouterOS's 10-second average covers the whole (5 s) test here.
    CHECK(cs.tx.average10_bps == Approx(rate).epsilon(0.02));
}

} // namespace

TEST_CASE("transport: rate -b 100M over TCP holds within 2 % over 5 s", "[rate]") { rate_holds(btest::protocol::tcp, 40); }
TEST_CASE("transport: rate -b 100M over UDP holds within 2 % over 5 s", "[rate]") { rate_holds(btest::protocol::udp, 41); }

TEST_CASE("transport: 20 concurrent tests (TCP and UDP mixed) then a second wave reusing the UDP ports", "[concurrency]") {
    const auto p = loopback::slot(42);
    auto so = server_on(p);
    // Exactly enough UDP ports for one wave: the second wave can only run if they were released.
    so.udp_ports.last = static_cast<std::uint16_t>(p.udp_base + 9);
    loopback::rig rig(so);
    REQUIRE_FALSE(rig.start());
    std::set<std::uint16_t> wave_ports[2];
    for (int wave = 0; wave < 2; ++wave) {
        std::vector<loopback::client_log*> clients;
        for (int i = 0; i < 20; ++i) {
            const auto proto = i % 2 ? btest::protocol::udp : btest::protocol::tcp;
            const auto dir = static_cast<btest::direction>(1 + i % 3);
            auto co = client_to(p, proto, dir, 10'000'000, 2000ms);
            if (proto == btest::protocol::tcp && i % 6 == 0) co.session.connection_count = 4;  // joins, too
            clients.push_back(&rig.add_client(co, std::chrono::milliseconds(5 * i)));
        }
        const auto before = rig.log().closed_tests;
        REQUIRE(rig.run_until(
            [&] {
                for (auto* c : clients)
                    if (!c->done) return false;
                return rig.log().closed_tests == before + 20;
            },
            30s));
        for (auto* c : clients) {
            REQUIRE(c->summary);
            CHECK(c->summary->reason == btest::end_reason::completed);
            CHECK(c->summary->error == std::error_code{});
            if (c->started && c->started->proto == btest::protocol::udp) wave_ports[wave].insert(c->started->udp_port);
            if (c->started && c->started->proto == btest::protocol::tcp)
                CHECK(c->started->connections == (c == clients[0] || c == clients[6] || c == clients[12] || c == clients[18] ? 4u : 1u));
        }
        // Everything released: no session, no UDP block, no pending join left.
        CHECK(rig.run_until([&] { return rig.server().live_sessions() == 0; }, 3s));
        CHECK(rig.server().udp_blocks_in_use() == 0);
        CHECK(rig.server().pending_joins() == 0);
        CHECK(wave_ports[wave].size() == 10);
    }
    CHECK(wave_ports[0] == wave_ports[1]);
    CHECK(rig.log().refused == 0);
}

TEST_CASE("transport: TCP with 8 connections and UDP with 4 streams in both directions", "[multi]") {
    const auto p = loopback::slot(43);
    loopback::rig rig(server_on(p));
    REQUIRE_FALSE(rig.start());
    auto tcp = client_to(p, btest::protocol::tcp, btest::direction::both, 80'000'000, 2000ms);
    tcp.session.connection_count = 8;
    auto udp = client_to(p, btest::protocol::udp, btest::direction::both, 40'000'000, 2000ms);
    udp.session.connection_count = 4;
    auto& t = rig.add_client(tcp);
    auto& u = rig.add_client(udp);
    REQUIRE(rig.run_until([&] { return t.done && u.done && rig.log().closed_tests == 2; }, 15s));
    for (auto* c : {&t, &u}) {
        REQUIRE(c->summary);
        CHECK(c->summary->reason == btest::end_reason::completed);
    }
    CHECK(t.started->connections == 8);
    CHECK(t.summary->connections == 8);
    CHECK(u.started->connections == 4);
    for (const auto* s : rig.log().finished()) {
        const auto& ss = s->summary;
        const auto& cs = s->started->proto == btest::protocol::tcp ? *t.summary : *u.summary;
        INFO((s->started->proto == btest::protocol::tcp ? "tcp" : "udp"));
        CHECK(ss.connections == cs.connections);
        CHECK(ss.rx.bytes <= cs.tx.bytes);
        CHECK(cs.tx.bytes - ss.rx.bytes <= 2'000'000);
        CHECK(cs.rx.bytes <= ss.tx.bytes);
        CHECK(ss.tx.bytes - cs.rx.bytes <= 2'000'000);
        CHECK(cs.tx.average_bps == Approx(s->started->proto == btest::protocol::tcp ? 80e6 : 40e6).epsilon(0.08));
    }
}

TEST_CASE("transport: a server stopping mid-test ends the client test as peer_closed and frees everything", "[stop]") {
    const auto p = loopback::slot(44);
    loopback::rig rig(server_on(p));
    REQUIRE_FALSE(rig.start());
    auto& c = rig.add_client(client_to(p, btest::protocol::udp, btest::direction::both, 20'000'000, 10000ms));
    REQUIRE(rig.run_until([&] { return !rig.log().tests.empty() && rig.log().tests.begin()->second.reports.size() >= 1; }, 5s));
    rig.server().stop();
    REQUIRE(rig.run_until([&] { return c.done; }, 5s));
    REQUIRE(c.summary);
    CHECK(c.summary->reason == btest::end_reason::peer_closed);
    CHECK(rig.log().finished().at(0)->summary.reason == btest::end_reason::stopped);
    CHECK(rig.server().live_sessions() == 0);
    CHECK(rig.server().udp_blocks_in_use() == 0);
}

TEST_CASE("transport: nobody listening is a connect error reported once", "[connect]") {
    const auto p = loopback::slot(45);
    loopback::rig rig(server_on(p));  // not started
    auto& c = rig.add_client(client_to(p, btest::protocol::tcp, btest::direction::receive, 0, 1000ms));
    REQUIRE(rig.run_until([&] { return c.done; }, 5s));
    CHECK_FALSE(c.summary);
    CHECK(c.connect_error == std::errc::connection_refused);
}
