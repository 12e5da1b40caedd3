// The TCP stream scanner of PROTOCOL §9.4.
#include <catch2/catch.hpp>

#include <vector>

#include <btest/session/tcp_scanner.hpp>
#include <btest/wire/status.hpp>

#include "test/hex.hpp"

using namespace btest;

namespace {
struct scan_totals {
    std::uint64_t data = 0;
    std::vector<wire::status> statuses;
    int opaque_events = 0;
    bool error = false;
};

// Feeds `in` in pieces of `piece` bytes (0: all at once), looping step() like a session does.
scan_totals scan(tcp_scanner& s, const std::vector<std::byte>& in, std::size_t piece = 0) {
    scan_totals t;
    std::span<const std::byte> all(in);
    while (!all.empty()) {
        auto chunk = all.first(piece ? std::min(piece, all.size()) : all.size());
        all = all.subspan(chunk.size());
        while (!chunk.empty()) {
            auto r = s.step(chunk);
            chunk = chunk.subspan(r.consumed);
            t.data += r.data_bytes;
            if (r.status) t.statuses.push_back(*r.status);
            if (r.became_opaque) ++t.opaque_events;
            if (r.protocol_error) { t.error = true; return t; }
            if (r.consumed == 0 && !r.status) break;
        }
    }
    return t;
}

std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts) {
    std::vector<std::byte> v;
    for (auto& p : parts) v.insert(v.end(), p.begin(), p.end());
    return v;
}
std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }
std::vector<std::byte> status_bytes(std::uint8_t cpu, std::uint32_t seq, std::uint32_t b) {
    auto a = wire::encode_status({cpu, seq, b});
    return {a.begin(), a.end()};
}
} // namespace

TEST_CASE("scanner: a pure sequence of STATUS messages") {
    auto in = cat({status_bytes(5, 1, 100), status_bytes(6, 2, 200), status_bytes(7, 3, 300)});
    for (std::size_t piece : {0, 1, 5, 11, 12, 13}) {
        INFO("piece " << piece);
        tcp_scanner s;
        auto t = scan(s, in, piece);
        CHECK(t.data == 0);
        REQUIRE(t.statuses.size() == 3);
        CHECK(t.statuses[2] == wire::status{7, 3, 300});
    }
}

TEST_CASE("scanner: zero chunks with STATUS between them, split at every byte") {
    auto in = cat({zeros(32768), status_bytes(20, 1, 4096), zeros(32768), zeros(32768), status_bytes(21, 2, 0), zeros(100)});
    for (std::size_t piece : {0, 1, 7, 4096, 32769}) {
        INFO("piece " << piece);
        tcp_scanner s;
        auto t = scan(s, in, piece);
        CHECK(t.data == 3 * 32768 + 100);
        REQUIRE(t.statuses.size() == 2);
        CHECK(t.statuses[0] == wire::status{20, 1, 4096});
        CHECK(t.statuses[1] == wire::status{21, 2, 0});
        CHECK(t.opaque_events == 0);
        CHECK_FALSE(s.opaque());
    }
}

TEST_CASE("scanner: zero data alone") {
    tcp_scanner s;
    auto t = scan(s, zeros(1'000'003), 65536);
    CHECK(t.data == 1'000'003);
    CHECK(t.statuses.empty());
}

TEST_CASE("scanner: a stray byte on a TCP test stream turns it opaque, once") {
    auto in = cat({zeros(10), {std::byte{0x42}}, zeros(5), status_bytes(1, 1, 1)});
    tcp_scanner s;
    auto t = scan(s, in, 3);
    CHECK(t.opaque_events == 1);
    CHECK(s.opaque());
    CHECK(t.data == in.size());  // from the stray byte on, everything is data
    CHECK(t.statuses.empty());
}

TEST_CASE("scanner: a stray byte on a UDP test's control stream is a protocol error") {
    tcp_scanner s(tcp_scanner::mode::control_only);
    auto ok = scan(s, status_bytes(1, 1, 1));
    CHECK(ok.statuses.size() == 1);
    auto t = scan(s, cat({status_bytes(1, 2, 2), {std::byte{0x01}}}));
    CHECK(t.statuses.size() == 1);
    CHECK(t.error);
}

TEST_CASE("scanner: random-fill streams start opaque") {
    tcp_scanner s(tcp_scanner::mode::opaque);
    auto t = scan(s, cat({status_bytes(1, 1, 1), zeros(7)}));
    CHECK(t.data == 19);
    CHECK(t.statuses.empty());
    CHECK(t.opaque_events == 0);
}

TEST_CASE("scanner: a STATUS whose CPU byte has bit 7 clear is still found") {
    tcp_scanner s;
    auto t = scan(s, test::unhex("0000 07 59 0000 01000000 10000000 00"));
    REQUIRE(t.statuses.size() == 1);
    CHECK(t.statuses[0].cpu_load == 89);
    CHECK(t.data == 3);
}

TEST_CASE("scanner: the chunk grid follows whole chunks with STATUS between them") {
    tcp_scanner s;
    s.track_chunks(1000);
    CHECK(s.on_grid());
    CHECK(s.chunk_rest() == 0);  // at a boundary: nothing is known yet
    auto t = scan(s, zeros(1));
    CHECK(t.data == 1);
    CHECK(s.chunk_rest() == 999);  // a chunk started
    s.skip(900);                   // dropped unseen by the transport
    CHECK(s.chunk_rest() == 99);
    t = scan(s, cat({zeros(99), status_bytes(1, 1, 5), zeros(2500)}), 7);
    CHECK(t.statuses.size() == 1);
    CHECK(s.grid_statuses() == 1);
    CHECK(s.on_grid());
    CHECK(s.chunk_rest() == 500);  // 2 whole chunks and half of the third
    s.skip(500);
    t = scan(s, status_bytes(2, 2, 6));
    CHECK(s.grid_statuses() == 2);
    CHECK(s.chunk_rest() == 0);
}

TEST_CASE("scanner: a STATUS inside a chunk takes the stream off the grid for good") {
    tcp_scanner s;
    s.track_chunks(1000);
    auto t = scan(s, cat({zeros(400), status_bytes(1, 1, 5), zeros(600), status_bytes(1, 2, 5), zeros(10)}));
    CHECK(t.statuses.size() == 2);  // still parsed, as §9.4 says
    CHECK_FALSE(s.on_grid());
    CHECK(s.chunk_rest() == 0);
    CHECK(t.data == 1010);
}

TEST_CASE("scanner: no chunk rest inside a record, in opaque or control streams") {
    tcp_scanner s;
    s.track_chunks(100);
    auto st = status_bytes(1, 1, 1);
    scan(s, cat({zeros(100), std::vector<std::byte>(st.begin(), st.begin() + 5)}));
    CHECK(s.in_record());
    CHECK(s.chunk_rest() == 0);
    tcp_scanner o(tcp_scanner::mode::opaque);
    o.track_chunks(100);
    scan(o, zeros(10));
    CHECK(o.chunk_rest() == 0);
    tcp_scanner c(tcp_scanner::mode::control_only);
    c.track_chunks(100);
    scan(c, zeros(10));
    CHECK(c.chunk_rest() == 0);
}
