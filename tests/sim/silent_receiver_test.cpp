// A UDP sender against a receiver that handles at most N datagrams a second (PROTOCOL §10.3):
// with honest STATUS it settles at 1.5 × what the receiver handles; when the STATUS lag or stop
// it backs off instead of flooding the receiver until T_idle. The receiver is
// memory::slow_receiver (a raw peer with a bounded socket buffer); the sender is the world's
// server session, whose one-second interval reports give its sending rate.
#include <btest/transport/memory/receiver_model.hpp>

#include "sim_support.hpp"

using namespace sim;
using status_mode = memory::slow_receiver::status_mode;

namespace {

constexpr std::uint64_t n_per_second = 20'000;                      // 1500-byte datagrams
constexpr double handled_bps = double(n_per_second) * 1500 * 8;      // 240 Mbit/s

struct outcome {
    std::vector<double> tx_bps;  ///< the server's sending rate per one-second interval
    std::uint64_t handled = 0, dropped = 0;
    std::optional<session_closed> closed;
};

outcome run(status_mode mode, duration length, std::uint32_t cap = 0) {
    memory::world w{memory::world_config{}};
    memory::slow_receiver r{w, {.datagrams_per_second = n_per_second, .mode = mode, .remote_tx_speed = cap}};
    REQUIRE(r.started());
    r.run_for(length);
    outcome o;
    for (const auto& rep : reports(w.server_events()))
        if (!rep.final) o.tx_bps.push_back(double(rep.tx.bits_per_second));
    o.handled = r.handled_datagrams();
    o.dropped = r.dropped_datagrams();
    o.closed = closed_event(w.server_events());
    r.close();
    w.run_for(1s);
    check_no_leaks(w);
    return o;
}

std::string show(const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += std::to_string(static_cast<long long>(x / 1e6)) + " ";
    return s + "Mbit/s";
}

} // namespace

TEST_CASE("silent receiver: honest STATUS settle the sender at 1.5 x what the receiver handles, no back-off") {
    const auto o = run(status_mode::honest, 10s);
    INFO(show(o.tx_bps));
    REQUIRE(o.tx_bps.size() >= 9);
    CHECK(o.tx_bps[0] > 1e9);  // unpaced until the first STATUS (at 1 s + the round trip)
    CHECK(o.tx_bps[1] == Approx(1.5 * handled_bps).epsilon(0.06));
    for (std::size_t k = 2; k < 9; ++k) {
        INFO("second " << k + 1);
        CHECK(o.tx_bps[k] == Approx(1.5 * handled_bps).epsilon(0.01));
    }
    CHECK(o.handled == Approx(10 * n_per_second).epsilon(0.01));
    CHECK_FALSE(o.closed);
}

TEST_CASE("silent receiver: STATUS that stop make the sender halve every second, below half within 2 s") {
    // STATUS at 1 s and 2 s, none after: the first one missing is due at 3 s.
    const auto o = run(status_mode::stop, 13s);
    INFO(show(o.tx_bps));
    REQUIRE(o.tx_bps.size() >= 11);
    const double flowing = o.tx_bps[2];  // [2, 3]: set by the STATUS at 2 s
    CHECK(flowing == Approx(1.5 * handled_bps).epsilon(0.01));
    // Second [3, 4]: half a second at the old rate, then half of it (1.5 s after the last STATUS).
    CHECK(o.tx_bps[3] == Approx(0.75 * flowing).epsilon(0.02));
    // Within two seconds of the first missing STATUS the rate is below half, and keeps halving
    // down to the 1 Mbit/s floor.
    CHECK(o.tx_bps[4] < 0.5 * flowing);
    CHECK(o.tx_bps[4] == Approx(0.375 * flowing).epsilon(0.02));
    for (std::size_t k = 5; k < 10; ++k) {
        INFO("second " << k + 1);
        CHECK(o.tx_bps[k] <= 0.55 * o.tx_bps[k - 1] + 1.1e6);
        CHECK(o.tx_bps[k] >= 0.95e6);  // the floor: a receiver that comes back can be heard again
    }
    // T_idle (10 s without STATUS) still ends the test.
    REQUIRE(o.closed);
    CHECK(o.closed->error == errc::peer_silent);
}

TEST_CASE("silent receiver: STATUS every 2.5 s keep the sender near what the receiver handles, not 2.5 x 1.5 x") {
    const auto o = run(status_mode::late, 12s);
    INFO(show(o.tx_bps));
    REQUIRE(o.tx_bps.size() >= 11);
    double sent = 0;
    for (std::size_t k = 3; k < 11; ++k) sent += o.tx_bps[k];
    const double mean = sent / 8;
    // Counted per second of its span, each late STATUS sets 1.5 × what was handled, and the
    // silence before the next one halves that: on average no more than 1.5 × (it was 3.75 ×,
    // 900 Mbit/s, when a late STATUS counted as one second's worth).
    CHECK(mean < 1.5 * handled_bps);
    CHECK(mean > 0.8 * handled_bps);
    // And the receiver is still served most of what it can handle.
    CHECK(double(o.handled) > 0.8 * 12 * n_per_second);
    CHECK_FALSE(o.closed);
}

TEST_CASE("silent receiver: no STATUS at all: the unpaced sender halves what it sends from 2 s on") {
    const auto o = run(status_mode::none, 9s);
    INFO(show(o.tx_bps));
    REQUIRE(o.tx_bps.size() >= 8);
    CHECK(o.tx_bps[0] > 5e9);  // unpaced: the 10 Gbit/s interface
    CHECK(o.tx_bps[1] > 5e9);
    for (std::size_t k = 3; k < 8; ++k) {
        INFO("second " << k + 1);
        CHECK(o.tx_bps[k] == Approx(0.5 * o.tx_bps[k - 1]).epsilon(0.05));
    }
}

TEST_CASE("silent receiver: a capped sender backs off from its cap and recovers when STATUS return") {
    // Capped at 100 Mbit/s, below what the receiver handles: honest STATUS keep the cap exactly.
    const auto o = run(status_mode::honest, 6s, 100'000'000);
    INFO(show(o.tx_bps));
    for (std::size_t k = 0; k < 5; ++k) CHECK(o.tx_bps[k] == Approx(100e6).epsilon(0.01));
}
