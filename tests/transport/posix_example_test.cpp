// The README's "The POSIX transport" snippet, compiled and run: a server and a client on one
// event_loop over loopback, EC-SRP5, UDP both ways. The README quotes run_on_one_loop() line
// for line (checked by "docs: README code snippets match the examples line for line").
#include <catch2/catch.hpp>

#include <cstdio>
#include <optional>

#include <botan/system_rng.h>

#include "btest/auth/botan_entropy.hpp"
#include "btest/auth/credentials.hpp"
#include "btest/transport/posix/client.hpp"
#include "btest/transport/posix/server.hpp"
#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;

// Prints the client's reports; stops the loop when its test is over.
struct printer final : btest::posix::client_observer {
    explicit printer(btest::posix::event_loop& l) : loop(l) {}
    void on_event(const btest::client_session&, const btest::event& ev) override {
        if (auto* r = std::get_if<btest::interval_report>(&ev))
            std::printf("%4.1f s  tx %.1f Mbit/s  rx %.1f Mbit/s\n", std::chrono::duration<double>(r->end).count(),
                        double(r->tx.bits_per_second) / 1e6, double(r->rx.bits_per_second) / 1e6);
    }
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string& what) override {
        if (s) summary = s->summary();
        else std::printf("%s: %s\n", what.c_str(), ec.message().c_str());
        loop.stop();
    }
    btest::posix::event_loop& loop;
    std::optional<btest::test_summary> summary;
};

std::optional<btest::test_summary> run_on_one_loop(std::uint16_t port, std::uint16_t udp_ports) {
    btest::posix::event_loop loop;
    Botan::System_RNG system_rng;
    btest::auth::botan_entropy rng{system_rng};

    // The server: 127.0.0.1 only, EC-SRP5 for one account.
    btest::auth::memory_credentials users{rng};
    users.add("admin", "secret");
    btest::posix::server_options so;
    so.listen_v4 = btest::posix::parse_address("127.0.0.1");
    so.listen_v6.reset();
    so.port = port;
    so.udp_ports.base = udp_ports;
    so.session.auth = btest::auth_method::ec_srp5;
    btest::posix::server_observer server_log;  // override on_event() to see each test
    btest::posix::server server{loop, so, rng, &users, server_log};
    if (auto ec = server.start()) return std::nullopt;

    // The client: UDP both ways at 50 Mbit/s for 2 s.
    btest::posix::client_options co;
    co.host = "127.0.0.1";
    co.port = port;
    co.session.proto = btest::protocol::udp;
    co.session.dir = btest::direction::both;
    co.session.local_tx_speed = co.session.remote_tx_speed = 50'000'000;
    co.session.test_duration = 2s;
    co.session.user = "admin";
    co.session.password = "secret";
    printer out{loop};
    btest::posix::client client{loop, co, rng, out};
    client.start();

    loop.run();  // until printer::on_finished() stops it
    return out.summary;
}

} // namespace

TEST_CASE("transport: posix README example runs a UDP test with EC-SRP5 on one loop", "[example][posix]") {
    const auto p = loopback::slot(130);
    const auto summary = run_on_one_loop(p.tcp, p.udp_base);
    REQUIRE(summary);
    CHECK(summary->reason == btest::end_reason::completed);
    CHECK(summary->tx.average_bps == Approx(50e6).epsilon(0.08));
    CHECK(summary->rx.average_bps == Approx(50e6).epsilon(0.08));
}
