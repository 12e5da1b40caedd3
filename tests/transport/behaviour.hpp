// Transport behaviour over loopback beyond the matrix, for a server of transport S and clients
// of transport C: rate accuracy, many tests at once with port reuse, multi-connection TCP and
// multi-stream UDP, a server that stops mid-test, nobody listening, max sessions, a wrong
// password, CPU samples.
#pragma once

#include <catch2/catch.hpp>

#include <set>

#include "loopback.hpp"

namespace behaviour {

using namespace std::chrono_literals;

template <class S>
typename S::server_options server_on(loopback::ports p) {
    typename S::server_options so;
    so.port = p.tcp;
    so.udp_ports.base = p.udp_base;
    so.udp_ports.last = static_cast<std::uint16_t>(p.udp_base + 40);
    S::listen_loopback(so, false);
    return so;
}

template <class C>
typename C::client_options client_to(loopback::ports p, btest::protocol proto, btest::direction dir, std::uint64_t rate,
                                      std::chrono::milliseconds length) {
    typename C::client_options co;
    co.host = "127.0.0.1";
    co.port = p.tcp;
    co.session.proto = proto;
    co.session.dir = dir;
    co.session.local_tx_speed = rate;
    co.session.remote_tx_speed = rate;
    co.session.test_duration = length;
    return co;
}

/// -b 100M both ways for 5 s: both senders hold the rate within 2 %; CPU samples flow both ways.
template <class S, class C = S>
void rate_holds(btest::protocol proto, unsigned slot) {
    const auto p = loopback::slot(slot);
    loopback::rig<S, C> rig(server_on<S>(p));
    REQUIRE_FALSE(rig.start());
    constexpr std::uint64_t rate = 100'000'000;
    auto& c = rig.add_client(client_to<C>(p, proto, btest::direction::both, rate, 5000ms));
    REQUIRE(rig.run_until([&] { return c.done && rig.log().closed_tests == 1; }, 20s));
    REQUIRE(c.summary);
    const auto& cs = *c.summary;
    const auto ss = rig.on_server([&] { return rig.log().finished().at(0).summary; });
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
    // Each side sampled its CPU load (once a second) and read the peer's from its STATUS.
    CHECK(cs.local_cpu.has_value());
    CHECK(ss.local_cpu.has_value());
    CHECK(cs.remote_cpu.has_value());
    CHECK(ss.remote_cpu.has_value());
}

/// 20 tests at once (TCP and UDP, some with 4 connections), then a second wave on the same
/// UDP ports: everything was released.
template <class S, class C = S>
void concurrency(unsigned slot) {
    const auto p = loopback::slot(slot);
    auto so = server_on<S>(p);
    // Exactly enough UDP ports for one wave: the second wave can only run if they were released.
    so.udp_ports.last = static_cast<std::uint16_t>(p.udp_base + 9);
    // 32 connections from 127.0.0.1 at once: over the default per-address limit (20).
    so.max_connections_per_ip = 0;
    loopback::rig<S, C> rig(so);
    REQUIRE_FALSE(rig.start());
    std::set<std::uint16_t> wave_ports[2];
    for (int wave = 0; wave < 2; ++wave) {
        std::vector<loopback::client_log<C>*> clients;
        for (int i = 0; i < 20; ++i) {
            const auto proto = i % 2 ? btest::protocol::udp : btest::protocol::tcp;
            const auto dir = static_cast<btest::direction>(1 + i % 3);
            auto co = client_to<C>(p, proto, dir, 10'000'000, 2000ms);
            if (proto == btest::protocol::tcp && i % 6 == 0) co.session.connection_count = 4;  // joins, too
            clients.push_back(&rig.add_client(co, std::chrono::milliseconds(5 * i)));
        }
        const auto before = rig.on_server([&] { return rig.log().closed_tests; });
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
        CHECK(rig.on_server([&] { return rig.server().udp_blocks_in_use(); }) == 0);
        CHECK(rig.on_server([&] { return rig.server().pending_joins(); }) == 0);
        CHECK(wave_ports[wave].size() == 10);
    }
    CHECK(wave_ports[0] == wave_ports[1]);
    CHECK(rig.on_server([&] { return rig.log().refused; }) == 0);
}

/// TCP with 8 connections and/or UDP with 4 streams, both directions, at once.
template <class S, class C = S>
void multi(unsigned slot, bool with_tcp, bool with_udp) {
    const auto p = loopback::slot(slot);
    loopback::rig<S, C> rig(server_on<S>(p));
    REQUIRE_FALSE(rig.start());
    auto tcp = client_to<C>(p, btest::protocol::tcp, btest::direction::both, 80'000'000, 2000ms);
    tcp.session.connection_count = 8;
    auto udp = client_to<C>(p, btest::protocol::udp, btest::direction::both, 40'000'000, 2000ms);
    udp.session.connection_count = 4;
    std::vector<loopback::client_log<C>*> clients;
    if (with_tcp) clients.push_back(&rig.add_client(tcp));
    if (with_udp) clients.push_back(&rig.add_client(udp));
    REQUIRE(rig.run_until([&] { return rig.clients_done() && rig.log().closed_tests == clients.size(); }, 15s));
    for (auto* c : clients) {
        REQUIRE(c->summary);
        CHECK(c->summary->reason == btest::end_reason::completed);
        REQUIRE(c->started);
        CHECK(c->started->connections == (c->started->proto == btest::protocol::tcp ? 8u : 4u));
        CHECK(c->summary->connections == (c->started->proto == btest::protocol::tcp ? 8u : 4u));
    }
    for (const auto& s : rig.on_server([&] { return rig.log().finished(); })) {
        const auto& ss = s.summary;
        const bool is_tcp = s.started->proto == btest::protocol::tcp;
        const auto& cs = *clients[is_tcp || !with_tcp ? 0 : 1]->summary;
        INFO((is_tcp ? "tcp" : "udp"));
        CHECK(ss.connections == cs.connections);
        CHECK(ss.rx.bytes <= cs.tx.bytes);
        CHECK(cs.tx.bytes - ss.rx.bytes <= 2'000'000);
        CHECK(cs.rx.bytes <= ss.tx.bytes);
        CHECK(ss.tx.bytes - cs.rx.bytes <= 2'000'000);
        CHECK(cs.tx.average_bps == Approx(is_tcp ? 80e6 : 40e6).epsilon(0.08));
        CHECK(ss.tx.average_bps == Approx(is_tcp ? 80e6 : 40e6).epsilon(0.08));
    }
    CHECK(rig.on_server([&] { return rig.server().pending_joins(); }) == 0);
}

/// The server stops mid-test: the client ends as peer_closed, the server frees everything.
template <class S, class C = S>
void server_stops(unsigned slot) {
    const auto p = loopback::slot(slot);
    loopback::rig<S, C> rig(server_on<S>(p));
    REQUIRE_FALSE(rig.start());
    auto& c = rig.add_client(client_to<C>(p, btest::protocol::udp, btest::direction::both, 20'000'000, 10000ms));
    REQUIRE(rig.run_until([&] { return !rig.log().tests.empty() && rig.log().tests.begin()->second.reports.size() >= 1; }, 5s));
    rig.on_server([&] { rig.server().stop(); });
    REQUIRE(rig.run_until([&] { return c.done; }, 5s));
    REQUIRE(c.summary);
    CHECK(c.summary->reason == btest::end_reason::peer_closed);
    CHECK(rig.on_server([&] { return rig.log().finished().at(0).summary.reason; }) == btest::end_reason::stopped);
    CHECK(rig.on_server([&] { return rig.server().live_sessions(); }) == 0);
    CHECK(rig.on_server([&] { return rig.server().udp_blocks_in_use(); }) == 0);
}

/// Nobody listening: one connect error (refused), no session.
template <class C>
void nobody_listening(unsigned slot) {
    const auto p = loopback::slot(slot);
    loopback::rig<C> rig(server_on<C>(p));  // not started
    auto& c = rig.add_client(client_to<C>(p, btest::protocol::tcp, btest::direction::receive, 0, 1000ms));
    REQUIRE(rig.run_until([&] { return c.done; }, 5s));
    CHECK_FALSE(c.summary);
    CHECK(c.connect_error == std::errc::connection_refused);
}

/// max_sessions = 1: a second test is refused (closed before HELLO) while the first runs; the
/// extra connections of a multi-connection test are still let in (they may be JOINs), and the
/// slot is free again once the test is over.
template <class S, class C = S>
void max_sessions(unsigned slot) {
    const auto p = loopback::slot(slot);
    auto so = server_on<S>(p);
    so.max_sessions = 1;
    loopback::rig<S, C> rig(so);
    REQUIRE_FALSE(rig.start());
    auto first = client_to<C>(p, btest::protocol::tcp, btest::direction::both, 20'000'000, 1500ms);
    first.session.connection_count = 4;
    auto& a = rig.add_client(first);
    REQUIRE(rig.run_until([&] { return !rig.log().tests.empty() && rig.log().tests.begin()->second.started; }, 5s));
    auto& b = rig.add_client(client_to<C>(p, btest::protocol::udp, btest::direction::receive, 10'000'000, 1000ms));
    REQUIRE(rig.run_until([&] { return b.done; }, 5s));
    REQUIRE(b.summary);  // connected, then closed without a greeting
    CHECK_FALSE(b.summary->started);
    CHECK(b.summary->error == btest::errc::peer_closed);
    CHECK(rig.on_server([&] { return rig.log().refused; }) == 1);
    REQUIRE(rig.run_until([&] { return a.done && rig.log().closed_tests == 1; }, 5s));
    REQUIRE(a.summary);
    CHECK(a.summary->reason == btest::end_reason::completed);
    CHECK(a.summary->connections == 4);
    // The slot is free again.
    REQUIRE(rig.run_until([&] { return rig.server().live_sessions() == 0; }, 3s));
    auto& c = rig.add_client(client_to<C>(p, btest::protocol::udp, btest::direction::both, 10'000'000, 1000ms));
    REQUIRE(rig.run_until([&] { return c.done && rig.log().closed_tests == 2; }, 5s));
    REQUIRE(c.summary);
    CHECK(c.summary->reason == btest::end_reason::completed);
    CHECK(rig.on_server([&] { return rig.log().refused; }) == 1);
}

/// A wrong password (MD5, then EC-SRP5): the server's refusal reaches the client before the
/// close, so the client ends with auth_failed; the server reports the failed attempt.
template <class S, class C = S>
void wrong_password(unsigned slot) {
    const auto p = loopback::slot(slot);
    for (const auto method : {btest::auth_method::md5, btest::auth_method::ec_srp5}) {
        INFO((method == btest::auth_method::md5 ? "md5" : "ec-srp5"));
        auto so = server_on<S>(p);
        so.session.auth = method;
        loopback::rig<S, C> rig(so, {{"admin", "s3cret"}});
        REQUIRE_FALSE(rig.start());
        auto co = client_to<C>(p, btest::protocol::tcp, btest::direction::receive, 10'000'000, 1000ms);
        co.session.user = "admin";
        co.session.password = "wrong";
        auto& c = rig.add_client(co);
        REQUIRE(rig.run_until([&] { return c.done && rig.server().live_sessions() == 0; }, 5s));
        REQUIRE(c.summary);
        CHECK_FALSE(c.summary->started);
        CHECK(c.summary->error == btest::errc::auth_failed);
        const auto auths = rig.on_server([&] { return rig.log().auths; });
        REQUIRE(auths.size() == 1);
        CHECK_FALSE(auths[0].ok);
        CHECK(auths[0].user == "admin");
    }
}

/// Per source IP: with max_connections_per_ip = 1 a second test from the same address is
/// closed before HELLO while the first runs, and admitted once it is over; after
/// auth_failures.max_failures failed logins the address is refused even with the right password.
template <class S, class C = S>
void per_ip_limits(unsigned slot) {
    const auto p = loopback::slot(slot);
    {
        auto so = server_on<S>(p);
        so.max_connections_per_ip = 1;
        loopback::rig<S, C> rig(so);
        REQUIRE_FALSE(rig.start());
        auto& a = rig.add_client(client_to<C>(p, btest::protocol::tcp, btest::direction::both, 20'000'000, 1500ms));
        REQUIRE(rig.run_until([&] { return !rig.log().tests.empty() && rig.log().tests.begin()->second.started; }, 5s));
        auto& b = rig.add_client(client_to<C>(p, btest::protocol::udp, btest::direction::receive, 10'000'000, 1000ms));
        REQUIRE(rig.run_until([&] { return b.done; }, 5s));
        REQUIRE(b.summary);
        CHECK_FALSE(b.summary->started);
        CHECK(b.summary->error == btest::errc::peer_closed);
        CHECK(rig.on_server([&] { return rig.log().refused; }) == 1);
        REQUIRE(rig.run_until([&] { return a.done && rig.server().live_sessions() == 0; }, 5s));
        REQUIRE(a.summary);
        CHECK(a.summary->reason == btest::end_reason::completed);
        auto& c = rig.add_client(client_to<C>(p, btest::protocol::tcp, btest::direction::receive, 10'000'000, 500ms));
        REQUIRE(rig.run_until([&] { return c.done; }, 5s));
        REQUIRE(c.summary);
        CHECK(c.summary->reason == btest::end_reason::completed);
    }
    {
        auto so = server_on<S>(p);
        so.session.auth = btest::auth_method::md5;
        so.auth_failures.max_failures = 2;
        loopback::rig<S, C> rig(so, {{"admin", "s3cret"}});
        REQUIRE_FALSE(rig.start());
        auto attempt = [&](const char* password) -> std::optional<btest::test_summary> {
            auto co = client_to<C>(p, btest::protocol::tcp, btest::direction::receive, 10'000'000, 500ms);
            co.session.user = "admin";
            co.session.password = password;
            auto& c = rig.add_client(co);
            if (!rig.run_until([&] { return c.done; }, 5s)) return std::nullopt;
            return c.summary;
        };
        for (int i = 0; i < 2; ++i) {
            const auto r = attempt("wrong");
            REQUIRE(r);
            CHECK(r->error == btest::errc::auth_failed);
        }
        const auto blocked = attempt("s3cret");
        REQUIRE(blocked);
        CHECK_FALSE(blocked->started);
        CHECK(blocked->error == btest::errc::peer_closed);  // closed before HELLO
        CHECK(rig.on_server([&] { return rig.log().refused; }) == 1);
    }
}

} // namespace behaviour
