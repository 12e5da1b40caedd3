// The multi-threaded server: sessions spread over io threads by client IP, a JOIN always
// lands on the thread (and join registry) of the session it joins, the UDP port blocks of
// all threads come from one pool, and max_sessions holds across threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "perf_rig.hpp"

using namespace perf;
using btest::direction;
using btest::protocol;

namespace {

btest::ip_address loopback_ip(unsigned k) { return btest::ip_address::v4(127, 0, 0, static_cast<std::uint8_t>(1 + k)); }

} // namespace

TEST_CASE("a 4-thread server spreads sessions by client IP and every JOIN finds its session", "[threads]") {
    auto so = server_opts(10);
    so.threads = 4;
    so.max_sessions = 64;
    rig r(so);
    REQUIRE_FALSE(r.start());
    REQUIRE(r.server().threads() == 4);

    // 8 client IPs, 3 tests from each: a 3-connection TCP test (its JOINs must reach the
    // session on its thread), a UDP test and a single-connection TCP test, all at once.
    constexpr unsigned ips = 8;
    std::vector<client_log*> multi, others;
    for (unsigned k = 0; k < ips; ++k) {
        auto tcp3 = client_opts(10, protocol::tcp, direction::both, 50'000'000, 2000ms);
        tcp3.session.connection_count = 3;
        tcp3.local_address = loopback_ip(k);
        multi.push_back(&r.add_client(tcp3));
        auto udp = client_opts(10, protocol::udp, direction::both, 20'000'000, 2000ms);
        udp.local_address = loopback_ip(k);
        others.push_back(&r.add_client(udp));
        auto tcp1 = client_opts(10, protocol::tcp, direction::transmit, 50'000'000, 2000ms);
        tcp1.local_address = loopback_ip(k);
        others.push_back(&r.add_client(tcp1));
    }
    std::size_t busiest_spread = 0;
    const bool done = r.run_until([&] { return r.clients_done(); }, 30s, [&] {
        const auto per = r.server().sessions_per_thread();
        busiest_spread = std::max<std::size_t>(busiest_spread, std::count_if(per.begin(), per.end(), [](auto n) { return n > 0; }));
    });
    REQUIRE(done);
    REQUIRE(r.run_until([&] { return r.log().finished().size() == 3 * ips; }, 5s));

    for (auto* c : multi) {
        REQUIRE(c->summary);
        CHECK(c->summary->started);
        CHECK(c->summary->connections == 3);
        CHECK(c->summary->reason == btest::end_reason::completed);
        CHECK(c->summary->tx.bytes > 0);
        CHECK(c->summary->rx.bytes > 0);
    }
    for (auto* c : others) {
        REQUIRE(c->summary);
        CHECK(c->summary->reason == btest::end_reason::completed);
        CHECK(c->summary->tx.bytes > 0);
    }
    std::size_t three = 0;
    for (const auto& t : r.log().finished()) three += t.summary.connections == 3 ? 1 : 0;
    CHECK(three == ips);
    // 8 addresses over 4 threads by hash: more than one thread had sessions.
    CHECK(busiest_spread >= 2);

    const auto left = r.stop_server();
    CHECK(left.live_sessions == 0);
    CHECK(left.udp_blocks == 0);
    CHECK(left.pending_joins == 0);
}

TEST_CASE("max_sessions holds across threads", "[threads]") {
    auto so = server_opts(11);
    so.threads = 4;
    so.max_sessions = 5;
    rig r(so);
    REQUIRE_FALSE(r.start());
    std::vector<client_log*> cs;
    for (unsigned k = 0; k < 12; ++k) {
        auto co = client_opts(11, protocol::tcp, direction::transmit, 10'000'000, 1500ms);
        co.local_address = loopback_ip(k);
        cs.push_back(&r.add_client(co));
    }
    REQUIRE(r.run_until([&] { return r.clients_done(); }, 30s));
    std::size_t ran = 0;
    for (auto* c : cs) ran += c->summary && c->summary->started ? 1 : 0;
    // All 12 overlap in time: exactly max_sessions ran, the others were refused.
    CHECK(ran == 5);
    CHECK(r.log().started_count() == 5);
    CHECK(r.log().refused >= 7);
    const auto left = r.stop_server();
    CHECK(left.live_sessions == 0);
}
