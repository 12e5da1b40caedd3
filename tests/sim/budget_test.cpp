// Byte budgets (PROTOCOL §12.5) enforced by the server session in the data path, in the memory
// world: {TCP, UDP} × {transmit, receive, both} × {1, 4} connections/streams, unpaced, with a
// budget far smaller than what the test would move. Exactly:
//   - a sender never goes past its budget, and stops less than one unit (a TCP chunk or a UDP
//     datagram, headers included) short of it;
//   - a receiver ends the test on the bytes that crossed it: TCP one byte past the budget (the
//     transport reads no further than read_limit()), UDP at most one datagram past;
//   - the test ends as quota_exhausted (or quota_unavailable when the budget said so), the
//     client sees the server close, and nothing is left behind.
#include "sim_support.hpp"

using namespace sim;

namespace {

struct budget_case {
    protocol p;
    direction d;
    std::uint32_t conns;
};

void check_budget(const budget_case& bc, budget_end end) {
    client_config c;
    c.proto = bc.p;
    c.dir = bc.d;
    c.connection_count = bc.conns;
    c.tx_size = bc.p == protocol::tcp ? 8192 : 1500;
    c.local_udp_tx_size = 1500;
    c.test_duration = 30s;
    const std::uint64_t unit = bc.p == protocol::tcp ? 8192 : 1500;  // IPv4: 1472 + 28
    const std::uint64_t budget = 3'000'000;
    memory::world_config wc;
    wc.server.ask_admission = true;
    wc.admission = [&](const server_session&) {
        memory::admission_decision a;
        // The server's tx is the client's receive direction and vice versa; both: a total.
        if (bc.d == direction::receive) a.budget.tx = budget;
        else if (bc.d == direction::transmit) a.budget.rx = budget;
        else a.budget.total = budget;
        a.end = end;
        return a;
    };
    memory::link_model link;
    link.bits_per_second = 100'000'000;
    link.delay = 1ms;
    memory::world w{c, wc, link};
    REQUIRE(w.run_until_finished(20s));
    w.run_for(3s);

    // (A multi-connection upload may spend its budget before its last JOIN gets through the
    // bottleneck: data that arrives before the start counts for the test, so it ends unstarted.)
    auto tests = w.server_sessions();
    REQUIRE(tests.size() == 1);
    const auto s = tests[0]->summary();
    CHECK(s.reason == (end == budget_end::quota_exhausted ? end_reason::quota_exhausted : end_reason::quota_unavailable));
    CHECK_FALSE(s.error);
    switch (bc.d) {
    case direction::receive:  // the server sends
        CHECK(s.tx.bytes <= budget);
        CHECK(s.tx.bytes > budget - unit);
        break;
    case direction::transmit:  // the server receives
        CHECK(s.rx.bytes > budget);
        CHECK(s.rx.bytes <= budget + (bc.p == protocol::tcp ? 1 : unit));
        break;
    case direction::both:
        CHECK(s.tx.bytes + s.rx.bytes > budget - unit);
        CHECK(s.tx.bytes + s.rx.bytes <= budget + (bc.p == protocol::tcp ? 1 : unit));
        break;
    }
    // The client saw the server end the test. Over one connection everything the server sent
    // arrives before its FIN; over several, the first FIN (on a connection with nothing in
    // flight) ends the client's test while data still crosses the others (§12.1).
    CHECK(w.client().summary().reason == end_reason::peer_closed);
    if (server_sends(bc.d) && bc.p == protocol::tcp && bc.conns == 1) CHECK(w.client().summary().rx.bytes == s.tx.bytes);
    check_no_leaks(w);
}

} // namespace

TEST_CASE("budget: the server stops at its byte budget, in every combination") {
    for (auto p : {protocol::tcp, protocol::udp})
        for (auto d : {direction::transmit, direction::receive, direction::both})
            for (std::uint32_t n : {1u, 4u}) {
                INFO(name(p) << " " << name(d) << " × " << n);
                check_budget({p, d, n}, budget_end::quota_exhausted);
            }
}

TEST_CASE("budget: a budget that ran out while the quota store was unreachable ends as quota_unavailable") {
    check_budget({protocol::tcp, direction::receive, 1}, budget_end::quota_unavailable);
    check_budget({protocol::udp, direction::transmit, 2}, budget_end::quota_unavailable);
}

TEST_CASE("budget: refills keep a test going until the quota is spent") {
    // A 1 MB slice, refilled below 512 kB, up to 5 MB in all: the test moves 5 MB, not 1.
    client_config c;
    c.dir = direction::receive;
    c.tx_size = 8192;
    c.test_duration = 30s;
    std::uint64_t granted = 1'000'000;
    const std::uint64_t quota = 5'000'000;
    memory::world_config wc;
    wc.server.ask_admission = true;
    wc.admission = [&](const server_session&) {
        memory::admission_decision a;
        a.budget.tx = granted;
        a.refill_below = 512'000;
        return a;
    };
    int refills = 0;
    wc.refill = [&](const server_session&) -> std::optional<byte_budget> {
        ++refills;
        const auto more = std::min<std::uint64_t>(1'000'000, quota - granted);
        granted += more;
        return byte_budget{more, std::nullopt, std::nullopt};
    };
    memory::link_model link;
    link.bits_per_second = 100'000'000;
    memory::world w{c, wc, link};
    REQUIRE(w.run_until_finished(20s));
    const auto s = w.server_tests().at(0)->summary();
    CHECK(s.reason == end_reason::quota_exhausted);
    CHECK(s.tx.bytes <= quota);
    CHECK(s.tx.bytes > quota - 8192);
    CHECK(refills >= 4);
}

TEST_CASE("budget: a test refused at admission sends no OK word and moves nothing") {
    client_config c;
    c.dir = direction::both;
    c.test_duration = 5s;
    memory::world_config wc;
    wc.server.ask_admission = true;
    wc.admission = [](const server_session&) {
        memory::admission_decision a;
        a.admit = false;
        return a;
    };
    memory::world w{c, wc, memory::link_model{}};
    REQUIRE(w.run_until_finished(5s));
    w.run_for(1s);
    CHECK(w.client().summary().error == errc::peer_closed);  // closed without an OK word
    CHECK_FALSE(w.client().summary().started);
    const auto closed = closed_event(w.server_events());
    REQUIRE(closed);
    CHECK(closed->error == errc::quota_exhausted);
    CHECK(w.client().down().tcp_bytes_delivered == 4);  // HELLO only
    check_no_leaks(w);
}

TEST_CASE("budget: a refusal after a login is test_refused for EC-SRP5, a failed login for MD5 (§12.5)") {
    // EC-SRP5: the server's MSG4 proves it accepted the login, so a close without the result
    // word is the server refusing the test. MD5 has no such proof: EOF in WAIT_RESULT is
    // "authentication failed" (§5), and a refused test cannot be told from it.
    const auto method = GENERATE(auth_method::ec_srp5, auth_method::md5);
    INFO((method == auth_method::ec_srp5 ? "ec-srp5" : "md5"));
    client_config c;
    c.dir = direction::receive;
    c.test_duration = 5s;
    c.user = "user";
    c.password = "secret";
    memory::world_config wc;
    wc.server.auth = method;
    wc.users = {{"user", "secret"}};
    wc.server.ask_admission = true;
    wc.admission = [](const server_session&) {
        memory::admission_decision a;
        a.admit = false;
        return a;
    };
    memory::world w{c, wc, memory::link_model{}};
    REQUIRE(w.run_until_finished(5s));
    w.run_for(1s);
    const auto s = w.client().summary();
    CHECK_FALSE(s.started);
    CHECK(s.rx.bytes == 0);
    CHECK(s.error == (method == auth_method::ec_srp5 ? errc::test_refused : errc::auth_failed));
    const auto closed = closed_event(w.server_events());
    REQUIRE(closed);
    CHECK(closed->error == errc::quota_exhausted);
    check_no_leaks(w);
}

TEST_CASE("budget: a wrong EC-SRP5 password stays auth_failed with admission asked") {
    client_config c;
    c.user = "user";
    c.password = "wrong";
    memory::world_config wc;
    wc.server.auth = auth_method::ec_srp5;
    wc.users = {{"user", "secret"}};
    wc.server.ask_admission = true;
    bool asked = false;
    wc.admission = [&](const server_session&) {
        asked = true;
        return memory::admission_decision{};
    };
    memory::world w{c, wc, memory::link_model{}};
    REQUIRE(w.run_until_finished(5s));
    CHECK(w.client().summary().error == errc::auth_failed);
    CHECK_FALSE(asked);  // admission follows a login that succeeded, never a failed one
    check_no_leaks(w);
}
