// HELLO, AUTH/OK words, UDP PORT, JOIN, STATUS, MD5 frames, EC-SRP5 framing, payload rules:
// PROTOCOL §2. Byte-exact fixtures come from the spec's examples and transcripts (§3).
#include <catch2/catch.hpp>

#include <btest/btest.hpp>

#include "test/hex.hpp"

using namespace btest;
using namespace btest::wire;

TEST_CASE("wire: HELLO is exactly 01 00 00 00") {
    CHECK(test::hex(hello) == "01000000");
    CHECK_FALSE(decode_hello(test::unhex("01000000")));
    CHECK(decode_hello(test::unhex("010000")) == errc::truncated);
    CHECK(decode_hello(test::unhex("01000001")) == errc::bad_hello);
    CHECK(decode_hello(test::unhex("02000000")) == errc::bad_hello);
}

TEST_CASE("wire: AUTH/OK words decode by position") {
    using k = auth_word_kind;
    auto first = [](const char* h) { return decode_auth_word(test::unhex(h), word_position::first); };
    auto after = [](const char* h) { return decode_auth_word(test::unhex(h), word_position::after_auth); };
    CHECK(*first("01000000") == auth_word{k::ok, 0});
    CHECK(*first("019c4e00") == auth_word{k::ok, 0x9c4e});
    CHECK(*first("02000000") == auth_word{k::md5, 0});
    CHECK(*first("03000000") == auth_word{k::ec_srp5, 0});
    CHECK(*first("00000000") == auth_word{k::failed, 0});
    CHECK(*after("01000000") == auth_word{k::ok, 0});
    CHECK(*after("00000000") == auth_word{k::failed, 0});
    // MD5/EC-SRP5 words only as the first word.
    CHECK(after("02000000").error() == errc::bad_auth_word);
    CHECK(after("03000000").error() == errc::bad_auth_word);
    for (const char* bad : {"01000001", "02000100", "03000001", "04000000", "ff000000", "00000100"}) {
        INFO(bad);
        CHECK(first(bad).error() == errc::bad_auth_word);
    }
    CHECK(first("010000").error() == errc::truncated);
}

TEST_CASE("wire: AUTH/OK words encode byte-exactly and round-trip") {
    using k = auth_word_kind;
    CHECK(test::hex(encode_auth_word({k::ok, 0})) == "01000000");
    CHECK(test::hex(encode_auth_word({k::ok, 0x9c4e})) == "019c4e00");
    CHECK(test::hex(encode_auth_word({k::md5, 0})) == "02000000");
    CHECK(test::hex(encode_auth_word({k::ec_srp5, 0})) == "03000000");
    CHECK(test::hex(encode_auth_word({k::failed, 0})) == "00000000");
    for (unsigned t = 0; t < 65536; t += 257) {
        auto w = auth_word{k::ok, std::uint16_t(t)};
        CHECK(*decode_auth_word(encode_auth_word(w), word_position::after_auth) == w);
    }
}

TEST_CASE("wire: UDP PORT is big-endian") {
    CHECK(test::hex(encode_udp_port(2001)) == "07d1");
    CHECK(test::hex(encode_udp_port(2042)) == "07fa");
    CHECK(*decode_udp_port(test::unhex("07fa")) == 2042);
    CHECK(decode_udp_port(test::unhex("07")).error() == errc::truncated);
}

TEST_CASE("wire: JOIN carries the token in bytes 0-1 and 02 00 + zeros") {
    // Transcript D of PROTOCOL §3.
    CHECK(test::hex(encode_join(0x9c4e)) == "9c4e0200000000000000000000000000");
    CHECK(*decode_join(test::unhex("9c4e0200000000000000000000000000")) == 0x9c4e);
    // A server ignores bytes 2..15.
    CHECK(*decode_join(test::unhex("9c4effffffffffffffffffffffffffff")) == 0x9c4e);
    CHECK(decode_join(test::unhex("9c4e02")).error() == errc::truncated);
}

TEST_CASE("wire: STATUS examples of PROTOCOL 2.8 decode and re-encode") {
    struct ex { const char* hex; status s; };
    const ex examples[] = {
        {"07d9000001000000c02db402", {89, 1, 45362624}},
        {"07850000 2c010000 d0121300", {5, 300, 1250000}},
        {"07e4000001000000 00000000", {100, 1, 0}},
    };
    for (const auto& e : examples) {
        INFO(e.hex);
        auto d = decode_status(test::unhex(e.hex));
        REQUIRE(d);
        CHECK(*d == e.s);
        CHECK(test::hex(encode_status(*d)) == test::hex(test::unhex(e.hex)));
    }
}

TEST_CASE("wire: STATUS decoding ignores bit 7 and bytes 2-7 validation") {
    // Bit 7 clear (a RouterOS server): load still read.
    CHECK(decode_status(test::unhex("07590000 01000000 00000000"))->cpu_load == 89);
    // Load above 100 clamps, with or without bit 7.
    CHECK(decode_status(test::unhex("07ff0000 01000000 00000000"))->cpu_load == 100);
    CHECK(decode_status(test::unhex("077f0000 01000000 00000000"))->cpu_load == 100);
    // An old implementation's big-endian seq over bytes 1..4: byte 1 reads 0 %.
    auto old = decode_status(test::unhex("07000000 01000000 10000000"));
    REQUIRE(old);
    CHECK(old->cpu_load == 0);
    CHECK(old->bytes == 16);
    // Reserved bytes are not validated.
    CHECK(decode_status(test::unhex("0780ffff 01000000 00000000")));
    CHECK(decode_status(test::unhex("08800000 01000000 00000000")).error() == errc::bad_status_type);
    CHECK(decode_status(test::unhex("07800000 01000000 000000")).error() == errc::truncated);
}

TEST_CASE("wire: STATUS encoding sets bit 7, clamps load and saturates bytes") {
    CHECK(test::hex(encode_status({0, 1, 0})) == "078000000100000000000000");
    CHECK(test::hex(encode_status({250, 2, 7})) == "07e4000002000000" "07000000");
    CHECK(status::saturate(0x1'0000'0000ULL) == 0xffffffffu);
    CHECK(status::saturate(123) == 123u);
}

TEST_CASE("wire: MD5 reply frames the username as PROTOCOL 2.4 says") {
    auto resp = test::unhex_array<16>("3c968565bc0314f281a6da1571cf7255");
    CHECK(test::hex(encode_md5_reply(resp, "test")) ==
          "3c968565bc0314f281a6da1571cf7255" "74657374" + std::string(56, '0'));
    // 32-byte name: no NUL; longer names are truncated to 32.
    std::string n32(32, 'a'), n40(40, 'b');
    auto r32 = decode_md5_reply(encode_md5_reply(resp, n32));
    REQUIRE(r32);
    CHECK(r32->username() == n32);
    auto r40 = decode_md5_reply(encode_md5_reply(resp, n40));
    CHECK(r40->username() == std::string(32, 'b'));
    CHECK(decode_md5_reply(test::unhex("00")).error() == errc::truncated);
}

TEST_CASE("wire: EC-SRP5 frames of transcript C decode and re-encode") {
    // PROTOCOL §3 C (vector ascii-basic).
    auto msg1 = test::unhex("27 61646d696e00 464c04ded6c337b36192154b1b034a1885989dfa4c47bfd57302f28744d94786 00");
    auto f = decode_ecsrp5_frame(msg1);
    REQUIRE(f);
    CHECK(f->frame_size == msg1.size());
    auto m1 = decode_ecsrp5_msg1(f->payload);
    REQUIRE(m1);
    CHECK(m1->username == "admin");
    CHECK(m1->client_key.parity == 0);
    std::array<std::byte, 256> out{};
    auto n = encode_ecsrp5_msg1(m1->username, m1->client_key, out);
    CHECK(test::hex(std::span(out).first(n)) == test::hex(msg1));

    auto msg2 = test::unhex("31 6e190b79b02d1a1664e057622936e2cbe6b046b7dd13e9aa2c30e9d76524825e 01 4550b2fd704fd794255ee5f1c3e9575f");
    auto f2 = decode_ecsrp5_frame(msg2);
    REQUIRE(f2);
    auto m2 = decode_ecsrp5_msg2(f2->payload);
    REQUIRE(m2);
    CHECK(m2->server_key.parity == 1);
    CHECK(test::hex(m2->salt) == "4550b2fd704fd794255ee5f1c3e9575f");
    CHECK(test::hex(encode_ecsrp5_msg2(*m2)) == test::hex(msg2));

    auto msg3 = test::unhex("20 d3bb2862ab82f596a704ee00cae053be2bec1a4e16a33761b6dcb19264b5d70d");
    auto f3 = decode_ecsrp5_frame(msg3);
    REQUIRE(f3);
    auto p3 = decode_ecsrp5_proof(f3->payload);
    REQUIRE(p3);
    CHECK(test::hex(encode_ecsrp5_proof(*p3)) == test::hex(msg3));
}

TEST_CASE("wire: EC-SRP5 framing errors are distinct") {
    CHECK(decode_ecsrp5_frame({}).error() == errc::truncated);
    CHECK(decode_ecsrp5_frame(test::unhex("05 0102")).error() == errc::truncated);
    auto empty = decode_ecsrp5_frame(test::unhex("00"));
    REQUIRE(empty);
    CHECK(empty->payload.empty());
    CHECK(decode_ecsrp5_msg1(empty->payload).error() == errc::bad_frame_length);
    // 34 bytes, no NUL at position 0.
    std::vector<std::byte> p(34, std::byte{1});
    CHECK(decode_ecsrp5_msg1(p).error() == errc::bad_username);
    p[0] = std::byte{0};
    CHECK(decode_ecsrp5_msg1(p));  // empty username, parity 01
    p[33] = std::byte{2};
    CHECK(decode_ecsrp5_msg1(p).error() == errc::bad_parity);
    // A NUL inside the name: the NUL 33 bytes from the end is not the first one.
    std::vector<std::byte> q(36, std::byte{0x61});
    q[0] = std::byte{0};
    q[2] = std::byte{0};
    q[35] = std::byte{0};
    CHECK(decode_ecsrp5_msg1(q).error() == errc::bad_username);
    // 222-byte name (frame len 256 cannot exist, but a 255-byte payload has a 221-byte name).
    std::vector<std::byte> big(255, std::byte{0x61});
    big[221] = std::byte{0};
    big[254] = std::byte{0};
    CHECK(decode_ecsrp5_msg1(big));
    CHECK(decode_ecsrp5_msg2(std::span(big).first(48)).error() == errc::bad_frame_length);
    CHECK(decode_ecsrp5_msg2(std::span(big).first(50)).error() == errc::bad_frame_length);
    CHECK(decode_ecsrp5_proof(std::span(big).first(31)).error() == errc::bad_frame_length);
    CHECK(decode_ecsrp5_proof(std::span(big).first(33)).error() == errc::bad_frame_length);
    // Usernames the encoder refuses.
    std::array<std::byte, 300> out{};
    CHECK(encode_ecsrp5_msg1(std::string(222, 'a'), {}, out) == 0);
    CHECK(encode_ecsrp5_msg1(std::string("a\0b", 3), {}, out) == 0);
    CHECK(encode_ecsrp5_msg1(std::string(221, 'a'), {}, out) == 256);
}
