// COMMAND (PROTOCOL §2.2): every captured RouterOS command decodes to the documented fields and
// re-encodes to the same 16 bytes.
#include <catch2/catch.hpp>

#include <btest/wire/command.hpp>

#include "test/hex.hpp"

using btest::direction;
using btest::protocol;
using btest::wire::command;
using btest::wire::decode_command;
using btest::wire::encode_command;

namespace {
struct captured {
    const char* hex;
    command expected;
};
// Source: PROTOCOL §2.2 "Captured RouterOS commands", in order.
const captured routeros_commands[] = {
    {"01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00", {protocol::tcp, direction::transmit, false, 0, 32768, 0, 0, 0}},
    {"01 02 00 00 00 80 00 00 00 00 00 00 00 00 00 00", {protocol::tcp, direction::receive, true, 0, 32768, 0, 0, 0}},
    {"01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00", {protocol::tcp, direction::both, false, 20, 32768, 0, 0, 0}},
    {"01 02 01 0a 00 80 00 00 00 00 00 00 00 00 00 00", {protocol::tcp, direction::receive, false, 10, 32768, 0, 0, 0}},
    {"01 02 01 00 00 80 00 00 ff ff ff ff 00 00 00 00", {protocol::tcp, direction::receive, false, 0, 32768, 0, 4294967295u, 0}},
    {"01 02 01 00 00 80 00 00 00 00 00 00 01 00 00 00", {protocol::tcp, direction::receive, false, 0, 32768, 0, 0, 1}},
    {"00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00", {protocol::udp, direction::both, false, 0, 1500, 0, 0, 0}},
    {"00 02 01 00 d0 07 00 00 00 00 00 00 00 00 00 00", {protocol::udp, direction::receive, false, 0, 2000, 0, 0, 0}},
    {"00 02 01 00 00 fa 00 00 00 00 00 00 00 00 00 00", {protocol::udp, direction::receive, false, 0, 64000, 0, 0, 0}},
    {"00 02 01 14 dc 05 00 00 00 00 00 00 00 00 00 00", {protocol::udp, direction::receive, false, 20, 1500, 0, 0, 0}},
    {"00 03 01 00 e8 03 00 00 2c 01 00 00 2c 01 00 00", {protocol::udp, direction::both, false, 0, 1000, 0, 300, 300}},
};
} // namespace

TEST_CASE("wire: every captured RouterOS COMMAND decodes and re-encodes byte-exactly") {
    for (const auto& c : routeros_commands) {
        INFO(c.hex);
        auto bytes = test::unhex(c.hex);
        auto d = decode_command(bytes);
        REQUIRE(d);
        CHECK(*d == c.expected);
        auto e = encode_command(*d);
        CHECK(test::hex(e) == test::hex(bytes));
    }
}

TEST_CASE("wire: COMMAND field helpers follow the field rules") {
    auto d = decode_command(test::unhex("01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00"));
    REQUIRE(d);
    CHECK(d->connections() == 20);
    auto one = decode_command(test::unhex("01 03 01 01 00 00 00 00 00 00 00 00 00 00 00 00"));
    REQUIRE(one);
    CHECK(one->connections() == 1);       // 01 is never produced by RouterOS: one connection
    CHECK(one->tcp_chunk() == 32768);     // tx_size 0 on TCP → 32768
    CHECK(one->conn_count == 1);          // kept raw so re-encoding is exact
}

TEST_CASE("wire: COMMAND rejects bad proto and direction with distinct codes") {
    using btest::errc;
    for (int proto = 2; proto < 256; ++proto) {
        auto b = test::unhex("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00");
        b[0] = std::byte(proto);
        CHECK(decode_command(b).error() == errc::bad_command_proto);
    }
    for (int dir : {0, 4, 5, 0x7f, 0xff}) {
        auto b = test::unhex("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00");
        b[1] = std::byte(dir);
        CHECK(decode_command(b).error() == errc::bad_command_direction);
    }
    auto b = test::unhex("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00");
    CHECK(decode_command(b).error() == errc::truncated);
    CHECK(decode_command({}).error() == errc::truncated);
}

TEST_CASE("wire: COMMAND zero_fill other than 00 means zeros") {
    for (int zf : {1, 2, 0x80, 0xff}) {
        auto b = test::unhex("01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00");
        b[2] = std::byte(zf);
        auto d = decode_command(b);
        REQUIRE(d);
        CHECK_FALSE(d->random_data);
    }
}
