// The session's cheap data paths: write_parts() (whole zero chunks handed out as a count for a
// transport that sends zeros by reference) and plan_read()/discarded() (chunk payload a
// receiver drops unseen). Each must leave the session exactly where the plain write_to()/feed()
// would have: same bytes on the wire, same counts, same STATUS.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <variant>
#include <vector>

#include <btest/server/join_registry.hpp>
#include <btest/session/server_session.hpp>
#include <btest/wire/status.hpp>

#include "test/hex.hpp"

using namespace btest;
using namespace std::chrono_literals;

namespace {

const time_point t0{};
// TCP commands (PROTOCOL §2.2), chunks of 32768: direction 01 client transmits, 03 both; byte
// 2 is zero_fill (01 zeros, 00 random).
const char* cmd_rx = "01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00";
const char* cmd_both = "01 03 01 00 00 80 00 00 00 00 00 00 00 00 00 00";
const char* cmd_both_random = "01 03 00 00 00 80 00 00 00 00 00 00 00 00 00 00";
const char* cmd_rx_random = "01 01 00 00 00 80 00 00 00 00 00 00 00 00 00 00";
constexpr std::size_t chunk = 32768;

struct started {
    server_config cfg;
    seeded_entropy rng{11};
    server_services svc{rng, nullptr, nullptr, {}};
    std::unique_ptr<server_session> s;

    explicit started(const char* cmd) {
        s = std::make_unique<server_session>(cfg, svc, endpoint{ip_address::v4(192, 0, 2, 1), 5000},
                                             *wire::decode_command(test::unhex(cmd)), t0);
    }
};

/// A test whose admission hook answered at once with byte budget `b` (a refill is asked below
/// `refill_below` bytes left; 0: never).
struct budgeted {
    server_config cfg = [] {
        server_config c;
        c.ask_admission = true;
        return c;
    }();
    seeded_entropy rng;
    server_services svc{rng, nullptr, nullptr, {}};
    server_session s;

    budgeted(const char* cmd, std::uint64_t seed, const byte_budget& b, std::uint64_t refill_below)
        : rng(seed), s(cfg, svc, endpoint{ip_address::v4(192, 0, 2, 1), 5000}, *wire::decode_command(test::unhex(cmd)), t0) {
        (void)s.poll_request();
        s.admit(t0, b, refill_below, budget_end::quota_exhausted);
    }
};

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }
std::vector<std::byte> status_bytes(std::uint32_t seq, std::uint32_t b) {
    auto a = wire::encode_status({0x80, seq, b});
    return {a.begin(), a.end()};
}

// The bytes one write_parts() call stands for: the literal part, then the zeros.
std::vector<std::byte> expand(std::span<const std::byte> out, session::tcp_parts p) {
    std::vector<std::byte> v(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(p.literal));
    v.resize(v.size() + p.zeros);
    return v;
}

} // namespace

TEST_CASE("write_parts: literal bytes and then the zeros are exactly what write_to() writes") {
    for (const char* cmd : {cmd_both, cmd_both_random}) {
        INFO(cmd);
        started a(cmd), b(cmd);
        // Room for 7 chunks and a STATUS either way, so both calls take the same chunks.
        const std::size_t room = 7 * chunk + 100;
        std::vector<std::byte> out_a(room), out_b(room);
        std::vector<std::byte> wire_a, wire_b;
        std::uint64_t zeros_handed = 0;
        time_point now = t0;
        for (int step = 0; step < 40; ++step) {
            now += 150ms;  // STATUS falls due every few steps (both: the server reports)
            a.s->on_timer(now);
            b.s->on_timer(now);
            auto in = step % 3 ? zeros(5000) : zeros(chunk);
            a.s->feed(0, now, in);
            b.s->feed(0, now, in);
            const auto n = a.s->write_to(0, now, out_a);
            wire_a.insert(wire_a.end(), out_a.begin(), out_a.begin() + static_cast<std::ptrdiff_t>(n));
            const auto p = b.s->write_parts(0, now, out_b, room);
            zeros_handed += p.zeros;
            auto e = expand(out_b, p);
            wire_b.insert(wire_b.end(), e.begin(), e.end());
        }
        CHECK(wire_a.size() > 10 * chunk);
        REQUIRE(wire_a.size() == wire_b.size());
        const auto diff = std::mismatch(wire_a.begin(), wire_a.end(), wire_b.begin());
        CHECK(diff.first - wire_a.begin() == static_cast<std::ptrdiff_t>(wire_a.size()));  // no byte differs
        CHECK(a.s->summary().status_sent == b.s->summary().status_sent);
        CHECK(a.s->summary().status_sent >= 5);
        CHECK(a.s->summary().tx.bytes == b.s->summary().tx.bytes);
        if (cmd == cmd_both) CHECK(zeros_handed > 0);
        else CHECK(zeros_handed == 0);  // random fill: the chunks are literal bytes
    }
}

TEST_CASE("write_parts: the zeros are whole chunks within the room, a STATUS rides in the literal part") {
    started s(cmd_both);
    std::vector<std::byte> out(min_write_buffer);
    auto p = s.s->write_parts(0, t0, out, 3 * chunk + 100);
    CHECK(test::hex(std::span(out).first(p.literal)) == "01000000");  // the OK word
    CHECK(p.zeros == 3 * chunk);
    s.s->feed(0, t0, zeros(1000));
    s.s->on_timer(t0 + 1s);
    p = s.s->write_parts(0, t0 + 1s, out, chunk - 1);  // no whole chunk fits: literal chunks
    CHECK(p.zeros == 0);
    CHECK(p.literal == 12 + 2 * chunk);  // as many as fit the buffer, as write_to() does
    CHECK(test::hex(std::span(out).first(12)) == "07800000" "01000000" "e8030000");
}

TEST_CASE("plan_read: a receive-only stream drops each chunk's rest and counts it exactly") {
    started a(cmd_rx), b(cmd_rx);
    std::vector<std::byte> out(min_write_buffer);
    a.s->write_to(0, t0, out);
    b.s->write_to(0, t0, out);
    // What the peer sends: 20 chunks of zeros. a reads it all; b follows its read plans.
    const std::size_t total = 20 * chunk;
    a.s->feed(0, t0 + 10ms, zeros(total));
    std::size_t at = 0, discarded = 0, reads = 0;
    while (at < total) {
        const auto plan = b.s->plan_read(0, 4096);
        if (plan.discard) {
            const auto n = std::min(plan.discard, total - at);
            b.s->discarded(0, t0 + 10ms, n);
            discarded += n;
            at += n;
        } else {
            REQUIRE(plan.read > 0);
            const auto n = std::min(plan.read, total - at);
            b.s->feed(0, t0 + 10ms, zeros(n));
            at += n;
            ++reads;
        }
    }
    CHECK(reads == 20);                        // one small head per chunk
    CHECK(discarded == total - 20 * read_head);
    CHECK(a.s->summary().rx.bytes == b.s->summary().rx.bytes);
    a.s->on_timer(t0 + 1s);
    b.s->on_timer(t0 + 1s);
    std::vector<std::byte> out_b(min_write_buffer);
    const auto na = a.s->write_to(0, t0 + 1s, out);
    const auto nb = b.s->write_to(0, t0 + 1s, out_b);
    REQUIRE(na == 12);
    CHECK(test::hex(std::span(out).first(na)) == test::hex(std::span(out_b).first(nb)));  // the same STATUS
}

TEST_CASE("plan_read: in both directions nothing is dropped until the peer's STATUS showed the grid") {
    started s(cmd_both);
    std::vector<std::byte> out(min_write_buffer);
    s.s->write_to(0, t0, out);
    s.s->feed(0, t0, zeros(chunk + 10));
    auto plan = s.s->plan_read(0, 4096);
    CHECK(plan.discard == 0);  // not trusted yet: read everything
    CHECK(plan.read == std::numeric_limits<std::size_t>::max());
    auto in = zeros(chunk - 10);
    auto st = status_bytes(1, 4096);
    in.insert(in.end(), st.begin(), st.end());
    in.resize(in.size() + 64);
    s.s->feed(0, t0, in);
    CHECK(s.s->summary().status_received == 1);
    plan = s.s->plan_read(0, 4096);
    CHECK(plan.discard == chunk - 64);
}

TEST_CASE("plan_read: a STATUS off the grid stops dropping, a random-fill stream drops everything") {
    started s(cmd_both);
    std::vector<std::byte> out(min_write_buffer);
    s.s->write_to(0, t0, out);
    auto in = zeros(1000);  // a STATUS 1000 bytes into a chunk of 32768
    auto st = status_bytes(1, 1000);
    in.insert(in.end(), st.begin(), st.end());
    s.s->feed(0, t0, in);
    CHECK(s.s->summary().status_received == 1);
    CHECK(s.s->plan_read(0, 4096).discard == 0);

    started r(cmd_rx_random);
    r.s->write_to(0, t0, out);
    const auto plan = r.s->plan_read(0, 4096);
    CHECK(plan.discard == std::numeric_limits<std::size_t>::max());
    r.s->discarded(0, t0, 1'000'000);
    CHECK(r.s->summary().rx.bytes == 1'000'000);
}

TEST_CASE("plan_read: a receive budget bounds what may be dropped") {
    budgeted b(cmd_rx, 3, byte_budget{std::nullopt, 10'000, std::nullopt}, 0);
    auto& s = b.s;
    std::vector<std::byte> out(min_write_buffer);
    s.write_to(0, t0, out);
    s.feed(0, t0, zeros(64));
    const auto plan = s.plan_read(0, 4096);
    CHECK(plan.discard == 10'000 - 64 + 1);  // read_limit(): the rest of the budget and one byte
    s.discarded(0, t0, plan.discard);
    CHECK(s.finished());
    CHECK(s.summary().reason == end_reason::quota_exhausted);
}

TEST_CASE("plan_read: a stream that carries no STATUS drops whole chunks, the head read still sees one on the grid") {
    started s(cmd_rx);
    std::vector<std::byte> out(min_write_buffer);
    s.s->write_to(0, t0, out);
    s.s->feed(0, t0, zeros(read_head));
    auto plan = s.s->plan_read(0, 4096, 8 * chunk + 5);
    CHECK(plan.discard == 8 * chunk - read_head);  // the chunk's rest and 7 whole chunks
    s.s->discarded(0, t0, plan.discard);
    plan = s.s->plan_read(0, 4096, 8 * chunk);
    CHECK(plan.discard == 0);
    CHECK(plan.read == read_head);  // at a boundary: look
    auto in = status_bytes(1, 77);  // a STATUS the peer was not expected to send
    in.resize(read_head);
    s.s->feed(0, t0, in);
    CHECK(s.s->summary().status_received == 1);
    CHECK(s.s->summary().rx.bytes == 8 * chunk + read_head - wire::status_size);
    CHECK(s.s->plan_read(0, 4096, 8 * chunk).discard == 8 * chunk - (read_head - wire::status_size));
}

TEST_CASE("write_parts: zeros handed out as a count never pass the send budget") {
    const char* cmd_tx = "01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00";  // the server transmits
    // Four chunks and a refill asked below two; the hook answers only later.
    budgeted b(cmd_tx, 4, byte_budget{4 * chunk, std::nullopt, std::nullopt}, 2 * chunk);
    auto& s = b.s;
    std::vector<std::byte> out(min_write_buffer);
    std::uint64_t zeros_sent = 0;
    bool asked = false;
    for (int i = 0; i < 20; ++i) {
        const auto p = s.write_parts(0, t0 + std::chrono::milliseconds(i), out, 64 * chunk);
        zeros_sent += p.zeros;
        if (auto rq = s.poll_request()) asked = asked || std::holds_alternative<budget_request>(*rq);
    }
    CHECK(asked);
    CHECK(zeros_sent == 4 * chunk);  // all of the budget, not a byte past it, while the refill is out
    CHECK_FALSE(s.finished());
    s.add_budget(t0 + 1s, byte_budget{chunk, std::nullopt, std::nullopt});
    CHECK(s.write_parts(0, t0 + 1s, out, 64 * chunk).zeros == chunk);
    (void)s.poll_request();
    s.add_budget(t0 + 2s, byte_budget{});  // no more: the next chunk ends the test
    CHECK(s.write_parts(0, t0 + 3s, out, 64 * chunk).zeros == 0);
    CHECK(s.finished());
    CHECK(s.summary().reason == end_reason::quota_exhausted);
    CHECK(s.summary().tx.bytes == 5 * chunk);
}

TEST_CASE("plan_read: while a refill is on its way nothing is dropped past the budget, and reading waits") {
    budgeted b(cmd_rx, 6, byte_budget{std::nullopt, 4 * chunk, std::nullopt}, 2 * chunk);
    auto& s = b.s;
    std::vector<std::byte> out(min_write_buffer);
    s.write_to(0, t0, out);
    std::uint64_t taken = 0;
    bool asked = false;
    session::read_plan plan;
    for (int i = 0; i < 40; ++i) {
        plan = s.plan_read(0, 4096, chunk);  // the chunk's rest at most: the refill mark is crossed on the way
        if (plan.discard) {
            s.discarded(0, t0, plan.discard);
            taken += plan.discard;
        } else if (plan.read) {
            s.feed(0, t0, zeros(std::min<std::size_t>(plan.read, read_head)));
            taken += std::min<std::size_t>(plan.read, read_head);
        } else {
            break;
        }
        if (auto rq = s.poll_request()) asked = asked || std::holds_alternative<budget_request>(*rq);
    }
    CHECK(asked);
    CHECK(plan.discard == 0);
    CHECK(plan.read == 0);  // the transport stops reading until the refill
    CHECK(taken == 4 * chunk);  // the budget to the byte: no "+1" while a refill is pending
    CHECK_FALSE(s.finished());
    CHECK(s.summary().rx.bytes == 4 * chunk);
    s.add_budget(t0 + 1s, byte_budget{std::nullopt, chunk, std::nullopt});
    plan = s.plan_read(0, 4096, chunk);
    CHECK(plan.read == read_head);  // at a chunk boundary: look at its head first, then drop
}

TEST_CASE("plan_read: a joined connection that received data before the test started drops it too") {
    // The client transmits over 3 connections (§7). Its second connection joins and sends data
    // at once, before the third joins and the test starts: that stream's grid began with its
    // first byte, so after the start its chunk rests are dropped like the others'.
    server_config cfg;
    seeded_entropy rng{11};
    join_registry joins;
    server_services svc{rng, nullptr, &joins, {}};
    server_session s(cfg, svc, endpoint{ip_address::v4(192, 0, 2, 1), 5000},
                     *wire::decode_command(test::unhex("01 01 01 03 00 80 00 00 00 00 00 00 00 00 00 00")), t0);
    REQUIRE(s.token() != 0);
    const auto c1 = s.join(t0);
    s.feed(c1, t0, zeros(chunk + 1000));  // a chunk and a bit of the next, before the start
    CHECK_FALSE(s.running());
    const auto c2 = s.join(t0);
    REQUIRE(s.running());
    for (const auto conn : {std::uint32_t{0}, c2}) {  // at a chunk boundary: a head read first
        const auto plan = s.plan_read(conn, 4096, 1 << 20);
        CHECK(plan.discard == 0);
        CHECK(plan.read == read_head);
    }
    const auto plan = s.plan_read(c1, 4096, 1 << 20);  // within a chunk: its rest, then whole ones
    CHECK(plan.discard % chunk == chunk - 1000);
    CHECK(plan.discard > chunk);
    s.discarded(c1, t0 + 1ms, chunk - 1000);
    CHECK(s.summary().rx.bytes == 2 * chunk);
}
