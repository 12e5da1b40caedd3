// Loopback throughput of each transport, unlimited rate, both directions, server and client on
// two threads: a measurement, not a test (hidden; ctest does not run it). Run by hand:
//   btest_transport_tests "[.speed]"     (BTEST_SPEED_SECONDS=10 for longer runs,
//                                         BTEST_SPEED_DIRECTION=transmit|receive|both,
//                                         BTEST_SPEED_TRANSPORT=asio|posix)
// and compare the lines it prints; numbers depend on the machine and what else runs on it.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include "behaviour.hpp"

namespace {

using namespace std::chrono_literals;

template <class T>
void measure(btest::protocol proto, unsigned slot) {
    if (const char* only = std::getenv("BTEST_SPEED_TRANSPORT"); only && std::string(only) != T::name) return;
    const char* env = std::getenv("BTEST_SPEED_SECONDS");
    const auto length = std::chrono::milliseconds(1000 * (env ? std::max(1, std::atoi(env)) : 5));
    const auto p = loopback::slot(slot);
    loopback::rig<T, T, true> rig(behaviour::server_on<T>(p));
    REQUIRE_FALSE(rig.start());
    const char* dir_env = std::getenv("BTEST_SPEED_DIRECTION");  // transmit, receive or both (default)
    const std::string d = dir_env ? dir_env : "both";
    const auto dir = d == "transmit" ? btest::direction::transmit : d == "receive" ? btest::direction::receive : btest::direction::both;
    auto co = behaviour::client_to<T>(p, proto, dir, 0, length);
    auto& c = rig.add_client(co);
    REQUIRE(rig.run_until([&] { return c.done && rig.log().closed_tests == 1; }, length + 10s));
    REQUIRE(c.summary);
    const auto ss = rig.on_server([&] { return rig.log().finished().at(0).summary; });
    const auto& cs = *c.summary;
    std::printf("%-5s %s %s %4.1f s: client tx %8.1f Mbit/s, server rx %8.1f Mbit/s | server tx %8.1f Mbit/s, "
                "client rx %8.1f Mbit/s | lost %llu/%llu\n",
                T::name, proto == btest::protocol::tcp ? "tcp" : "udp", d.c_str(), std::chrono::duration<double>(cs.elapsed).count(),
                double(cs.tx.average_bps) / 1e6, double(ss.rx.average_bps) / 1e6, double(ss.tx.average_bps) / 1e6,
                double(cs.rx.average_bps) / 1e6, static_cast<unsigned long long>(ss.rx.lost_packets),
                static_cast<unsigned long long>(cs.rx.lost_packets));
    if (std::getenv("BTEST_SPEED_INTERVALS"))
        for (const auto& r : c.reports)
            std::printf("  %4.1f s  tx %8.1f Mbit/s  rx %8.1f Mbit/s\n", std::chrono::duration<double>(r.end).count(),
                        double(r.tx.bits_per_second) / 1e6, double(r.rx.bits_per_second) / 1e6);
    std::fflush(stdout);
    CHECK(cs.reason == btest::end_reason::completed);
}

} // namespace

TEST_CASE("transport: speed tcp both unlimited, asio then posix", "[.speed]") {
    measure<loopback::asio_transport>(btest::protocol::tcp, 131);
    measure<loopback::posix_transport>(btest::protocol::tcp, 132);
}
TEST_CASE("transport: speed udp both unlimited, asio then posix", "[.speed]") {
    measure<loopback::asio_transport>(btest::protocol::udp, 133);
    measure<loopback::posix_transport>(btest::protocol::udp, 134);
}
