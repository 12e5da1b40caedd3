// One test of the real-socket matrix — a protocol, direction, auth method and address family —
// between a client of transport C and a server of transport S over loopback, 2 s at 100 Mbit/s
// per direction. Used by the matrix (C = S) and by the cross-transport tests.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "loopback.hpp"

namespace matrix {

using namespace std::chrono_literals;

inline constexpr std::uint64_t rate = 100'000'000;
inline constexpr auto test_length = 2s;

struct combo {
    btest::protocol proto;
    btest::direction dir;
    btest::auth_method auth;
    bool v6;
    unsigned slot;
};

/// Receiver got no more than was sent, and at most `margin` less.
inline void check_transfer(const char* what, std::uint64_t sent, std::uint64_t received, std::uint64_t margin) {
    INFO(what << ": sent " << sent << ", received " << received << ", margin " << margin);
    CHECK(sent > 0);
    CHECK(received <= sent);
    CHECK(sent - std::min(sent, received) <= margin);
}

/// `reporter` sent STATUS messages about what it received; `peer` read them.
inline void check_status(const char* what, const btest::test_summary& reporter, const btest::test_summary& peer,
                         std::uint64_t one_interval) {
    INFO(what << ": reporter sent " << reporter.status_sent << " STATUS (" << reporter.status_bytes_sent
              << " bytes reported, " << reporter.rx.bytes << " counted); peer read " << peer.status_received << " ("
              << peer.status_bytes_received << " bytes)");
    // One STATUS per second over the test; the last one may still have been in flight at the end.
    CHECK(reporter.status_sent >= 1);
    CHECK(peer.status_received <= reporter.status_sent);
    CHECK(peer.status_received + 1 >= reporter.status_sent);
    CHECK(peer.status_bytes_received <= reporter.status_bytes_sent);
    if (peer.status_received == reporter.status_sent) CHECK(peer.status_bytes_received == reporter.status_bytes_sent);
    // What was reported is what was counted, minus the part of the last second not yet reported.
    CHECK(reporter.status_bytes_sent <= reporter.rx.bytes);
    CHECK(reporter.rx.bytes - reporter.status_bytes_sent <= one_interval);
}

template <class S, class C>
void run(const combo& c) {
    if (c.v6 && !loopback::ipv6_available()) {
        WARN("SKIPPED: IPv6 loopback ([::1]) is not available on this host");
        return;
    }
    INFO("server " << S::name << ", client " << C::name);
    const auto ports = loopback::slot(c.slot);
    typename S::server_options so;
    so.port = ports.tcp;
    so.udp_ports.base = ports.udp_base;
    so.udp_ports.last = static_cast<std::uint16_t>(ports.udp_base + 40);
    S::listen_loopback(so, c.v6);
    so.session.auth = c.auth;
    loopback::rig<S, C> rig(so, {{"admin", "s3cret"}});
    REQUIRE_FALSE(rig.start());

    typename C::client_options co;
    co.host = c.v6 ? "::1" : "127.0.0.1";
    co.port = ports.tcp;
    co.session.proto = c.proto;
    co.session.dir = c.dir;
    co.session.local_tx_speed = rate;
    co.session.remote_tx_speed = rate;
    co.session.test_duration = test_length;
    if (c.auth != btest::auth_method::none) {
        co.session.user = "admin";
        co.session.password = "s3cret";
    }
    auto& client = rig.add_client(co);
    REQUIRE(rig.run_until([&] { return client.done && rig.log().closed_tests == 1; }, 15s));
    REQUIRE(client.summary);
    const auto& cs = *client.summary;
    const auto finished = rig.on_server([&] { return rig.log().finished(); });
    REQUIRE(finished.size() == 1);
    const auto& ss = finished[0].summary;

    // Both ran a test; the client ended it after its duration, the server saw it close.
    CHECK(cs.started);
    CHECK(ss.started);
    CHECK(cs.reason == btest::end_reason::completed);
    CHECK(ss.reason == btest::end_reason::peer_closed);
    CHECK(finished[0].started->user == (c.auth == btest::auth_method::none ? "" : "admin"));
    CHECK(cs.elapsed >= test_length);
    CHECK(cs.elapsed < test_length + 500ms);
    CHECK(rig.on_server([&] { return rig.server().udp_blocks_in_use(); }) == 0);

    const bool up = btest::client_sends(c.dir), down = btest::server_sends(c.dir);
    CHECK(cs.tx.active == up);
    CHECK(ss.rx.active == up);
    CHECK(cs.rx.active == down);
    CHECK(ss.tx.active == down);
    const std::uint64_t per_second = rate / 8;
    // In flight at the end: socket buffers (TCP; a paced sender keeps them near empty) or a few
    // datagrams (UDP), plus 2 % for a receiver that was briefly descheduled.
    const std::uint64_t margin = (c.proto == btest::protocol::tcp ? 1'500'000 : 200'000) + per_second * 2 / 50;
    if (up) check_transfer("client → server", cs.tx.bytes, ss.rx.bytes, margin);
    if (down) check_transfer("server → client", ss.tx.bytes, cs.rx.bytes, margin);
    // Rates held (loosely here; the accuracy test is tighter).
    if (up) CHECK(cs.tx.average_bps == Approx(rate).epsilon(0.08));
    if (down) CHECK(ss.tx.average_bps == Approx(rate).epsilon(0.08));

    // STATUS: UDP — both sides report every second; TCP — the receiving side(s).
    const std::uint64_t one_interval = per_second * 3 / 2 + 200'000;
    if (c.proto == btest::protocol::udp || up) check_status("server's STATUS", ss, cs, one_interval);
    if (c.proto == btest::protocol::udp || down) check_status("client's STATUS", cs, ss, one_interval);
    if (c.proto == btest::protocol::tcp && !up) CHECK(ss.status_sent == 0);
    if (c.proto == btest::protocol::tcp && !down) CHECK(cs.status_sent == 0);
    // UDP over loopback: nothing lost (the receive buffers are 4 MiB).
    if (c.proto == btest::protocol::udp) {
        if (up) CHECK(ss.rx.lost_packets <= cs.tx.packets / 100);
        if (down) CHECK(cs.rx.lost_packets <= ss.tx.packets / 100);
    }
    // Interval reports: about one a second on both sides, and the peer's view is there.
    CHECK(client.reports.size() >= 2);
    CHECK(finished[0].reports.size() >= 2);
}

} // namespace matrix
