// UDP GSO on send and GRO on receive must not change what is counted: every datagram of a
// coalesced buffer carries its own sequence number and is accounted on its own (PROTOCOL §8.5),
// so a paced test on loopback (no drops) ends with loss 0 and the receiver's datagram count
// equal to the sender's, whatever the offloads did. Refused or disabled GSO falls back to one
// message per datagram with the same result.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include "perf_rig.hpp"

using namespace perf;
using btest::direction;
using btest::protocol;

namespace {

struct outcome {
    btest::test_summary client;
    btest::test_summary server;
    btest::asio::io_counters client_io;
    btest::asio::io_counters server_io;
};

/// One UDP test on loopback; both sides' summaries and counters.
outcome run_udp(unsigned slot, direction dir, std::uint64_t rate, std::uint16_t size,
                const std::function<void(btest::asio::client_options&)>& tune_client = {},
                const std::function<void(btest::asio::server_options&)>& tune_server = {}) {
    auto so = server_opts(slot);
    if (tune_server) tune_server(so);
    rig r(so);
    REQUIRE_FALSE(r.start());
    auto co = client_opts(slot, protocol::udp, dir, rate, 1500ms);
    co.session.tx_size = size;
    co.session.local_udp_tx_size = size;
    if (tune_client) tune_client(co);
    auto& c = r.add_client(co);
    REQUIRE(r.run_until([&] { return c.done; }, 15s));
    REQUIRE(c.summary);
    // The server's summary follows the client's close.
    REQUIRE(r.run_until([&] { return r.log().finished().size() == 1; }, 5s));
    outcome o{*c.summary, r.log().finished().at(0).summary, r.client(0).counters(), r.server().counters()};
    r.stop_server();
    return o;
}

/// The receiver got every datagram the sender counted, each with its own sequence number:
/// nothing lost, and at most a few still in flight when the test ended (2 %).
void check_exact(const btest::direction_summary& tx, const btest::direction_summary& rx) {
    INFO("sent " << tx.packets << ", received " << rx.packets << ", lost " << rx.lost_packets);
    REQUIRE(tx.packets > 1000);
    CHECK(rx.lost_packets == 0);
    CHECK(rx.packets <= tx.packets);
    CHECK(rx.packets + tx.packets / 50 >= tx.packets);
}

} // namespace

TEST_CASE("GSO runs and GRO buffers account every datagram with its own sequence number", "[udp]") {
    const bool gso = kernel_has_udp_gso();
    const bool gro = kernel_has_udp_gro();
    if (!gso || !gro) WARN("kernel without UDP GSO/GRO: only the fallback path runs here");
    struct size_case {
        std::uint16_t size;
        std::uint64_t rate;
    };
    // 1500 (44 per GSO message), 64 (64 per message: the segment-count limit), 9000 (7 per
    // message: the 64 KiB limit), at rates that put several datagrams in each wake-up.
    const size_case cases[] = {{1500, 1'000'000'000}, {64, 60'000'000}, {9000, 3'000'000'000}};
    unsigned slot = 0;
    for (const auto& sc : cases) {
        SECTION("client sends, " + std::to_string(sc.size) + "-byte datagrams") {
            const auto o = run_udp(slot, direction::transmit, sc.rate, sc.size);
            check_exact(o.client.tx, o.server.rx);
            CHECK(o.server_io.udp_datagrams_received >= o.server.rx.packets);
            if (gso) CHECK(o.client_io.udp_gso_messages > 0);
            if (gso && gro) CHECK(o.server_io.udp_gro_messages > 0);
            CHECK(o.client_io.udp_gso_fallbacks == 0);
        }
        ++slot;
    }
    SECTION("server sends") {
        const auto o = run_udp(3, direction::receive, 1'000'000'000, 1500);
        check_exact(o.server.tx, o.client.rx);
        if (gso) CHECK(o.server_io.udp_gso_messages > 0);
        if (gso && gro) CHECK(o.client_io.udp_gro_messages > 0);
    }
    SECTION("both directions at once") {
        const auto o = run_udp(4, direction::both, 500'000'000, 1500);
        check_exact(o.client.tx, o.server.rx);
        check_exact(o.server.tx, o.client.rx);
    }
}

TEST_CASE("GRO off on the receiver: the kernel splits GSO runs, counts unchanged", "[udp]") {
    const auto o = run_udp(5, direction::transmit, 1'000'000'000, 1500, {},
                           [](btest::asio::server_options& so) { so.data_plane.udp_gro = false; });
    check_exact(o.client.tx, o.server.rx);
    CHECK(o.server_io.udp_gro_messages == 0);
    CHECK(o.server_io.udp_recv_messages == o.server_io.udp_datagrams_received);
}

TEST_CASE("GSO off: one message per datagram, counts unchanged", "[udp]") {
    const auto o = run_udp(6, direction::transmit, 1'000'000'000, 1500,
                           [](btest::asio::client_options& co) { co.data_plane.udp_gso = false; });
    check_exact(o.client.tx, o.server.rx);
    CHECK(o.client_io.udp_gso_messages == 0);
    CHECK(o.client_io.udp_send_messages == o.client_io.udp_datagrams_sent);
    // Still batched: several datagrams per sendmmsg() call.
    CHECK(o.client_io.udp_datagrams_sent > 2 * o.client_io.udp_send_calls);
}

TEST_CASE("a GSO send the kernel refuses falls back to single datagrams without losing any", "[udp]") {
    if (!kernel_has_udp_gso()) {
        WARN("kernel without UDP GSO: nothing to refuse");
        return;
    }
    // Without UDP checksums the kernel refuses GSO sends (EINVAL) but takes plain datagrams.
    const auto o = run_udp(7, direction::transmit, 1'000'000'000, 1500, [](btest::asio::client_options& co) {
        co.data_plane.on_udp_socket = [](int fd) {
            const int one = 1;
            ::setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one);
        };
    });
    check_exact(o.client.tx, o.server.rx);
    CHECK(o.client_io.udp_gso_fallbacks == 1);
    CHECK(o.client_io.udp_gso_messages == 0);
}
