// The byte budget (session/budget.hpp) and the admission request of a server session: a test
// admitted with a budget sends no byte past it and ends as quota_exhausted; one refused gets no
// OK word.
#include <catch2/catch.hpp>

#include <array>
#include <limits>
#include <vector>

#include <btest/session/budget.hpp>
#include <btest/session/server_session.hpp>

#include "test/hex.hpp"
#include "test/pair.hpp"

using namespace btest;
using namespace std::chrono_literals;

TEST_CASE("budget meter: rooms, spending, the refill mark, and unlimited dimensions") {
    detail::budget_meter m;
    CHECK_FALSE(m.limited());
    CHECK(m.tx_room() == detail::budget_meter::unlimited);
    m.grant(byte_budget{1000, std::nullopt, 1500}, 300, budget_end::quota_exhausted);
    CHECK(m.tx_room() == 1000);
    CHECK(m.rx_room() == 1500);  // no rx limit: the total binds
    m.spend_tx(600);
    CHECK(m.tx_room() == 400);
    CHECK(m.rx_room() == 900);
    CHECK_FALSE(m.refill_due());
    CHECK_FALSE(m.spend_rx(700));  // 200 left in total
    CHECK(m.tx_room() == 200);
    CHECK(m.refill_due());         // below 300: once
    CHECK_FALSE(m.refill_due());
    CHECK(m.refill_pending());
    CHECK(m.spend_rx(201));        // past the budget by one byte
    CHECK(m.rx_room() == 0);
    m.add(byte_budget{100, 100, 1000}, budget_end::quota_unavailable);
    CHECK_FALSE(m.refill_pending());
    CHECK(m.tx_room() == 500);     // 400 + 100, the total allows 1000
    CHECK(m.rx_room() == 1000);
    CHECK(m.end() == budget_end::quota_unavailable);
    CHECK_FALSE(m.left().rx);      // a dimension without a limit stays unlimited
}

namespace {

const time_point t0{};

/// A server session for `cmd` with admission asked; returns the bytes written before anything
/// was answered.
struct admitted {
    server_config cfg;
    seeded_entropy rng{5};
    server_services svc{rng, nullptr, nullptr, {}};
    std::unique_ptr<server_session> s;
    std::vector<std::byte> out = std::vector<std::byte>(min_write_buffer);

    explicit admitted(const char* cmd) {
        cfg.ask_admission = true;
        s = std::make_unique<server_session>(cfg, svc, endpoint{ip_address::v4(192, 0, 2, 1), 5000},
                                             *wire::decode_command(test::unhex(cmd)), time_point{});
    }
    std::size_t write(time_point now) { return s->write_to(0, now, out); }
};

} // namespace

TEST_CASE("admission: nothing is written until the transport answers, a refusal sends no OK word") {
    admitted a("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP, client receives
    auto rq = a.s->poll_request();
    REQUIRE(rq);
    REQUIRE(std::holds_alternative<admission_request>(*rq));
    CHECK(std::get<admission_request>(*rq).user.empty());
    CHECK(a.write({}) == 0);
    CHECK(a.s->next_deadline() == time_point{} + 10s);  // T_hs holds the connection meanwhile
    a.s->refuse({}, make_error_code(errc::quota_exhausted));
    CHECK(a.s->finished());
    CHECK(a.s->error() == errc::quota_exhausted);
    CHECK(a.write({}) == 0);
}

TEST_CASE("admission: an unanswered request times out like any handshake step") {
    admitted a("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");
    (void)a.s->poll_request();
    a.s->on_timer(time_point{} + 10s);
    CHECK(a.s->finished());
    CHECK(a.s->error() == errc::handshake_timeout);
}

TEST_CASE("budget: a TCP sender stops at its budget and the test ends as quota_exhausted") {
    admitted a("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // chunks of 32768
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{100'000, std::nullopt, std::nullopt});
    std::uint64_t data = 0;
    for (int i = 0; i < 100 && !a.s->finished(); ++i) data += a.write(t0 + std::chrono::milliseconds(i));
    // The OK word (4 bytes), then three whole chunks: a fourth would pass 100 000.
    CHECK(data == 4 + 3 * 32768);
    CHECK(a.s->summary().tx.bytes == 3 * 32768);
    REQUIRE(a.s->finished());
    CHECK(a.s->summary().reason == end_reason::quota_exhausted);
    CHECK_FALSE(a.s->error());
}

TEST_CASE("budget: a receiver ends on the chunk that went past it, and read_limit() says how far to read") {
    admitted a("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP, client transmits
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{std::nullopt, 50'000, std::nullopt}, 0, budget_end::quota_unavailable);
    CHECK(a.write({}) == 4);
    CHECK(a.s->read_limit(0) == 50'001);
    std::vector<std::byte> zeros(40'000);
    a.s->feed(0, {}, zeros);
    CHECK_FALSE(a.s->finished());
    CHECK(a.s->read_limit(0) == 10'001);
    a.s->feed(0, {}, std::span(zeros).first(10'001));
    REQUIRE(a.s->finished());
    CHECK(a.s->summary().reason == end_reason::quota_unavailable);
    CHECK(a.s->summary().rx.bytes == 50'001);  // what really arrived is what it counts
}

TEST_CASE("budget: a refill asked below the mark lets the sender go on, without one it stops") {
    admitted a("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{4 * 32768, std::nullopt, std::nullopt}, 2 * 32768);
    std::uint64_t data = a.write({}) - 4;
    while (!a.s->poll_request()) data += a.write(t0 + 1ms);  // a refill is asked for below the mark
    while (auto n = a.write(t0 + 2ms)) data += n;            // the rest is spent, then it waits
    CHECK(data == 4 * 32768);
    CHECK_FALSE(a.s->finished());
    a.s->add_budget(t0 + 3ms, byte_budget{32768, std::nullopt, std::nullopt});
    data += a.write(t0 + 4ms);
    CHECK(data == 5 * 32768);
    // Still below the mark after the refill: one more request (one per answer).
    auto again = a.s->poll_request();
    CHECK((again && std::holds_alternative<budget_request>(*again)));
    CHECK_FALSE(a.s->poll_request());
    a.s->add_budget(t0 + 5ms, byte_budget{});  // nothing more: the next chunk ends the test
    CHECK(a.write(t0 + 6ms) == 0);
    CHECK(a.s->finished());
    CHECK(a.s->summary().reason == end_reason::quota_exhausted);
}

TEST_CASE("budget: UDP datagrams count with their headers, a sender never goes past") {
    // UDP, client receives, 1500-byte datagrams: 1500 wire bytes each.
    admitted a("00 02 01 00 dc 05 00 00 00 00 00 00 00 00 00 00");
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{10'000, std::nullopt, std::nullopt});
    auto rq = a.s->poll_request();
    REQUIRE((rq && std::holds_alternative<udp_port_request>(*rq)));
    a.s->udp_port_ready({}, 2001);
    CHECK(test::hex(std::span(a.out).first(a.write({}))) == "01000000" "07d1");
    std::vector<std::byte> dg(max_datagram_payload);
    int sent = 0;
    while (a.s->next_datagram({}, dg)) ++sent;
    CHECK(sent == 6);  // 6 × 1500 = 9000; a seventh would pass 10 000
    CHECK(a.s->summary().tx.bytes == 9000);
    CHECK(a.s->finished());
    CHECK(a.s->summary().reason == end_reason::quota_exhausted);
}

TEST_CASE("budget: a receiver that may still be refilled reads only what is left, and one byte past only when "
          "no refill can come") {
    admitted a("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP, client transmits
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{std::nullopt, 100'000, std::nullopt}, 60'000);
    CHECK(a.write({}) == 4);
    CHECK(a.s->read_limit(0) == 100'000);  // a refill may come: nothing past what is left
    std::vector<std::byte> zeros(60'000);
    a.s->feed(0, t0 + 1ms, std::span(zeros).first(50'000));
    auto rq = a.s->poll_request();  // below the mark
    CHECK((rq && std::holds_alternative<budget_request>(*rq)));
    CHECK(a.s->read_limit(0) == 50'000);
    a.s->feed(0, t0 + 2ms, std::span(zeros).first(50'000));
    CHECK_FALSE(a.s->finished());
    CHECK(a.s->read_limit(0) == 0);  // spent, the refill on its way: the transport stops reading

    // A refill smaller than the mark: still only what is left (a read of it all plus one byte
    // would end a test that a further refill would have kept going), and the next bytes ask again.
    a.s->add_budget(t0 + 3ms, byte_budget{std::nullopt, 30'000, std::nullopt});
    CHECK(a.s->read_limit(0) == 30'000);
    a.s->feed(0, t0 + 4ms, std::span(zeros).first(30'000));
    CHECK_FALSE(a.s->finished());
    rq = a.s->poll_request();
    CHECK((rq && std::holds_alternative<budget_request>(*rq)));
    CHECK(a.s->read_limit(0) == 0);

    // A refill that brings nothing: no more can come, so the read goes one byte past and ends it.
    a.s->add_budget(t0 + 5ms, byte_budget{});
    CHECK_FALSE(a.s->poll_request());
    CHECK(a.s->read_limit(0) == 1);
    a.s->feed(0, t0 + 6ms, std::span(zeros).first(1));
    REQUIRE(a.s->finished());
    CHECK(a.s->summary().reason == end_reason::quota_exhausted);
    CHECK(a.s->summary().rx.bytes == 130'001);
}

TEST_CASE("budget: a side that receives no TCP data reads its peer's STATUS freely, whatever its receive budget") {
    admitted a("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP, client receives
    (void)a.s->poll_request();
    a.s->admit({}, byte_budget{1'000'000, 0, std::nullopt}, 100'000);
    CHECK(a.s->read_limit(0) == std::numeric_limits<std::size_t>::max());
}
