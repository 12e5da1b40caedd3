// Pacing at 1 Gbit/s of 1500-byte datagrams (≈ 83k datagrams/s) must not cost a timer
// wake-up per datagram: the driver arms its timer no closer than the granularity and sends
// everything due at each wake-up, in batches. The schedule itself stays the kit's: the rate
// holds and nothing is lost on loopback.
#include <catch2/catch.hpp>

#include "perf_rig.hpp"

using namespace perf;
using btest::direction;
using btest::protocol;

namespace {

double seconds(btest::duration d) { return std::chrono::duration<double>(d).count(); }

} // namespace

TEST_CASE("1 Gbit/s of 1500-byte datagrams paced with one wake-up per batch", "[pacing]") {
    rig r(server_opts(20));
    REQUIRE_FALSE(r.start());
    auto& c = r.add_client(client_opts(20, protocol::udp, direction::transmit, 1'000'000'000, 2000ms));
    REQUIRE(r.run_until([&] { return c.done; }, 20s));
    REQUIRE(c.summary);
    REQUIRE(r.run_until([&] { return r.log().finished().size() == 1; }, 5s));
    const auto io = r.client(0).counters();
    const auto& s = *c.summary;
    const double secs = seconds(s.elapsed);
    const double pps = double(s.tx.packets) / secs;
    const double wakeups = double(io.timer_wakeups) / secs;
    const double per_call = double(io.udp_datagrams_sent) / double(std::max<std::uint64_t>(io.udp_send_calls, 1));
    INFO("rate " << double(s.tx.average_bps) / 1e6 << " Mbit/s, " << pps << " datagrams/s, " << wakeups
                 << " timer wake-ups/s, " << per_call << " datagrams per sendmmsg, " << io.udp_send_calls << " calls");
    // The schedule of §11 (the kit's): the requested rate, give or take a wake-up's worth.
    CHECK(double(s.tx.average_bps) == Approx(1e9).epsilon(0.05));
    // Default granularity 500 µs: at most ~2k timer wake-ups a second, not 83k.
    CHECK(wakeups < 5'000);
    CHECK(per_call >= 4);
    CHECK(io.udp_datagrams_sent == s.tx.packets);
    const auto srv = r.log().finished().at(0).summary;
    CHECK(srv.rx.lost_packets == 0);
}

TEST_CASE("a coarser granularity means fewer wake-ups and the same rate", "[pacing]") {
    auto co = client_opts(21, protocol::udp, direction::transmit, 200'000'000, 2000ms);
    co.data_plane.timer_granularity = std::chrono::microseconds(1000);
    rig r(server_opts(21));
    REQUIRE_FALSE(r.start());
    auto& c = r.add_client(co);
    REQUIRE(r.run_until([&] { return c.done; }, 20s));
    REQUIRE(c.summary);
    const auto io = r.client(0).counters();
    const double secs = seconds(c.summary->elapsed);
    INFO(double(io.timer_wakeups) / secs << " wake-ups/s");
    CHECK(double(c.summary->tx.average_bps) == Approx(2e8).epsilon(0.05));
    CHECK(double(io.timer_wakeups) / secs < 1'500);
}
