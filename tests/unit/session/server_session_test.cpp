// The server state machine of PROTOCOL §4, scripted: byte-exact replies, every auth method,
// timeouts and robustness rules (§13). Each script also runs split into single bytes and with
// the connection failing at every step (test/script.hpp).
#include <catch2/catch.hpp>

#include <btest/auth/ec_srp5.hpp>
#include <btest/auth/md5.hpp>
#include <btest/wire/ec_srp5.hpp>
#include <btest/wire/md5.hpp>

#include "test/hex.hpp"
#include "test/rigs.hpp"
#include "test/script.hpp"
#include "test/vectors.hpp"

using namespace btest;
using namespace std::chrono_literals;
using test::server_rig;
using script = test::script<server_rig>;

namespace {
const char* hello = "01000000";
const char* cmd_tcp_receive = "01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00";
const char* cmd_tcp_transmit = "01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00";
const char* cmd_udp_both = "00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00";
const char* challenge = "ad32d6f94d28161625f2f390bb895637";  // PROTOCOL §3 B

script::factory rig(auth_method auth, std::vector<std::pair<std::string, std::string>> users = {},
                    std::string pattern_hex = challenge, std::function<void(server_rig&)> tweak = {}) {
    return [=] {
        auto r = std::make_unique<server_rig>();
        r->cfg.auth = auth;
        for (auto& [u, p] : users) r->creds.add(u, p);
        r->pattern = test::unhex(pattern_hex);
        if (tweak) tweak(*r);
        r->start();
        return r;
    };
}

bool started_with(const event& e, protocol p, direction d) {
    auto* s = std::get_if<test_started>(&e);
    return s && s->proto == p && s->dir == d;
}
} // namespace

TEST_CASE("server: no auth, TCP, client receives (PROTOCOL 3 A)") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_prefix("01000000 00000000")  // OK, then zero-filled chunks at once
        .expect_event("test_started", [](const event& e) { return started_with(e, protocol::tcp, direction::receive); })
        .run();
}

TEST_CASE("server: no auth, TCP, client transmits: only STATUS goes back, one per second") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(cmd_tcp_transmit)
        .expect_write("01000000")
        .feed(std::vector<std::byte>(1000))              // 1000 data bytes
        .after(1s)
        .expect_write("07 80 0000 01000000 e8030000")    // seq 1, 1000 bytes received
        .after(1s)
        .expect_write("07 80 0000 02000000 00000000")
        .peer_closes()
        .expect_ended(end_reason::peer_closed)
        .run();
}

TEST_CASE("server: a COMMAND coalesced with test data keeps the data for the test") {
    auto bytes = test::unhex(cmd_tcp_transmit);
    bytes.resize(bytes.size() + 500);  // 500 zero bytes right behind the command
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(bytes)
        .expect_write("01000000")
        .after(1s)
        .expect_write("07 80 0000 01000000 f4010000")
        .run();
}

TEST_CASE("server: MD5 with the published vector (PROTOCOL 3 B)") {
    const auto reply = wire::encode_md5_reply(auth::md5_response("test", test::unhex_array<16>(challenge)), "test");
    script(rig(auth_method::md5, {{"test", "test"}}))
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_write(std::string("02000000") + challenge)
        .feed(std::vector<std::byte>(reply.begin(), reply.end()))
        .expect_write("01000000 07d1")   // OK, P = 2001, in one segment
        .expect_event("auth ok", [](const event& e) { auto* a = std::get_if<auth_result>(&e); return a && a->ok && a->user == "test"; })
        .check([](server_rig& r) { CHECK(r.pool.acquired == std::vector<std::uint16_t>{2001}); })
        .run();
}

TEST_CASE("server: MD5 wrong password is refused with 00 00 00 00 and closes") {
    const auto reply = wire::encode_md5_reply(auth::md5_response("wrong", test::unhex_array<16>(challenge)), "test");
    script(rig(auth_method::md5, {{"test", "test"}}))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write(std::string("02000000") + challenge)
        .feed(std::vector<std::byte>(reply.begin(), reply.end()))
        .expect_write("00000000")
        .expect_closed(errc::auth_failed)
        .expect_event("auth failed", [](const event& e) { auto* a = std::get_if<auth_result>(&e); return a && !a->ok; })
        .run();
}

TEST_CASE("server: MD5 unknown user is refused like a wrong password") {
    const auto reply = wire::encode_md5_reply(auth::md5_response("test", test::unhex_array<16>(challenge)), "mallory");
    script(rig(auth_method::md5, {{"test", "test"}}))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write(std::string("02000000") + challenge)
        .feed(std::vector<std::byte>(reply.begin(), reply.end()))
        .expect_write("00000000")
        .expect_closed(errc::auth_failed)
        .run();
}

TEST_CASE("server: MD5 with a 40-byte user name matches its 32-byte truncation") {
    const std::string user(40, 'u');
    const auto reply = wire::encode_md5_reply(auth::md5_response("pw", test::unhex_array<16>(challenge)), user);
    script(rig(auth_method::md5, {{user, "pw"}}))
        .expect_write(hello)
        .feed(cmd_tcp_transmit)
        .expect_write(std::string("02000000") + challenge)
        .feed(std::vector<std::byte>(reply.begin(), reply.end()))
        .expect_write("01000000")
        .run();
}

TEST_CASE("server: EC-SRP5 replays the ascii-basic vector byte for byte (PROTOCOL 3 C)") {
    const auto& v = test::ecsrp5_vectors()["vectors"][0];
    const auto& in = v["inputs"];
    const auto& w = v["wire"];
    struct vector_store final : auth::credential_store {
        auth::ec_srp5::validator_record rec;
        std::optional<std::string> md5_password(std::string_view) const override { return std::nullopt; }
        std::optional<auth::ec_srp5::validator_record> ecsrp5_record(std::string_view u) const override {
            if (u == "admin") return rec;
            return std::nullopt;
        }
    };
    auto store = std::make_shared<vector_store>();
    store->rec = auth::ec_srp5::derive_record(in["username_utf8"].str(), in["password_utf8"].str(),
                                              test::unhex_array<16>(in["salt_hex"].str()));
    auto msg = [&](const char* k) {
        for (auto& [key, val] : w.obj()) if (key.rfind(k, 0) == 0) return val.str();
        FAIL("no wire field " << k);
        return std::string();
    };
    script([&, store] {
        auto r = std::make_unique<server_rig>();
        r->cfg.auth = auth_method::ec_srp5;
        r->store = store.get();
        r->pattern = test::unhex(in["server_private_key_s_b_hex"].str());
        r->start();
        return r;
    })
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_write("03000000")
        .feed(msg("msg1"))
        .expect_write(msg("msg2"))
        .feed(msg("msg3"))
        .expect_write(msg("msg4") + "01000000 07d1")
        .expect_event("auth ok", [](const event& e) { auto* a = std::get_if<auth_result>(&e); return a && a->ok && a->user == "admin"; })
        .run();
}

namespace {
// One failing EC-SRP5 login against a server holding admin/test, scripted byte for byte: the
// server must answer with the MSG2 that `expected` (the record it should log `user` in from)
// yields with the rig's s_b, then refuse the proof with 00 00 00 00 and close.
void failing_ecsrp5_login(const std::string& user, const std::string& password,
                          const auth::ec_srp5::prepared_record& expected) {
    const auto s_b = test::unhex("6a0b7e1f2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829304a5b6c7");
    const auto s_a = test::unhex("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0");
    fixed_entropy client_rng{s_a}, server_rng{s_b};
    auth::ec_srp5::client_exchange client{user, password, client_rng};
    auth::ec_srp5::server_exchange server{server_rng};
    std::vector<std::byte> msg1(wire::ecsrp5_msg1_frame_size(user.size()));
    REQUIRE(wire::encode_ecsrp5_msg1(user, client.client_key(), msg1) == msg1.size());
    const auto m2 = server.on_msg1({user, client.client_key()}, expected);
    REQUIRE(m2);
    const auto m3 = client.on_msg2(*m2);
    REQUIRE(m3);
    const auto msg2 = wire::encode_ecsrp5_msg2(*m2);
    const auto msg3 = wire::encode_ecsrp5_proof(*m3);
    script(rig(auth_method::ec_srp5, {{"admin", "test"}}, test::hex(s_b)))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write("03000000")
        .feed(msg1)
        .expect_write(std::vector<std::byte>(msg2.begin(), msg2.end()))
        .feed(std::vector<std::byte>(msg3.begin(), msg3.end()))
        .expect_write("00000000")
        .expect_event("auth refused", [user](const event& e) {
            auto* a = std::get_if<auth_result>(&e);
            return a && !a->ok && a->user == user;
        })
        .expect_closed(errc::auth_failed)
        .run();
}
} // namespace

TEST_CASE("server: EC-SRP5 refuses an unknown user exactly like a wrong password, from a decoy record") {
    // A wrong password for admin: the record stored for admin (the rig's store draws admin's salt
    // from seeded_entropy{7}, as this one does).
    seeded_entropy cred_rng{7};
    auth::memory_credentials creds{cred_rng};
    creds.add("admin", "test");
    failing_ecsrp5_login("admin", "wrong", *creds.ecsrp5_prepared("admin"));
    // An unknown name: the same messages, the same refusal, with MSG2 from the decoy for that
    // name and the rig's server secret — no per-name curve arithmetic (§6.3.9 step 2), so the
    // refusal costs what a wrong password costs.
    const std::array<std::byte, 32> rig_secret{};
    failing_ecsrp5_login("nobody", "test", auth::ec_srp5::decoy_record("nobody", rig_secret));
    failing_ecsrp5_login("admin2", "", auth::ec_srp5::decoy_record("admin2", rig_secret));
}

TEST_CASE("server: EC-SRP5 malformed MSG1 is a protocol error, an invalid key an auth failure") {
    script(rig(auth_method::ec_srp5, {{"admin", "test"}}))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write("03000000")
        .feed("05 0102030405")  // len 5 < 34
        .expect_nothing_written()
        .expect_closed(errc::protocol_error)
        .run();
    // u = p: not a field element.
    script(rig(auth_method::ec_srp5, {{"admin", "test"}}))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write("03000000")
        .feed("27 61646d696e00 7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed 00")
        .expect_write("00000000")
        .expect_closed(errc::auth_failed)
        .run();
}

TEST_CASE("server: UDP test binds its port before the OK word") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed("00 02 01 14 dc 05 00 00 00 00 00 00 00 00 00 00")  // 20 streams
        .expect_write("01000000 07d1")
        .check([](server_rig& r) { CHECK(r.pool.last_count == 20); })
        .peer_closes()
        .check([](server_rig& r) { CHECK(r.pool.released == std::vector<std::uint16_t>{2001}); })
        .run();
}

TEST_CASE("server: no free UDP port closes without an OK word") {
    script(rig(auth_method::none, {}, challenge, [](server_rig& r) { r.pool.next.reset(); }))
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_nothing_written()
        .expect_closed(errc::port_unavailable)
        .run();
}

TEST_CASE("server: invalid commands close without a reply") {
    for (const char* bad : {"02 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00",
                            "01 00 01 00 00 80 00 00 00 00 00 00 00 00 00 00",
                            "01 04 01 00 00 80 00 00 00 00 00 00 00 00 00 00",
                            "ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"}) {
        INFO(bad);
        script(rig(auth_method::none))
            .expect_write(hello)
            .feed(bad)
            .expect_nothing_written()
            .expect_closed(errc::invalid_command)
            .run();
    }
}

TEST_CASE("server: conn_count above the configured maximum is invalid") {
    script(rig(auth_method::none, {}, challenge, [](server_rig& r) { r.cfg.max_conn_count = 10; }))
        .expect_write(hello)
        .feed("01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00")
        .expect_closed(errc::invalid_command)
        .run();
}

TEST_CASE("server: multi-connection TCP answers with a token registered before the OK word") {
    // The entropy yields 9c 4e: the token of transcript D.
    script(rig(auth_method::none, {}, "9c4e"))
        .expect_write(hello)
        .feed("01 03 01 03 00 80 00 00 00 00 00 00 00 00 00 00")
        .expect_write("019c4e00")
        .check([](server_rig& r) {
            CHECK(r.joins().pending() == 1);
            CHECK(r.joins().claim(0x9c4e, ip_address::v4(192, 0, 2, 99)) == nullptr);  // another IP
        })
        .after(10s)  // T_join: the test starts with the connections present
        .expect_event("started", [](const event& e) { return started_with(e, protocol::tcp, direction::both); })
        .check([](server_rig& r) { CHECK(r.joins().pending() == 0); })
        .run();
}

TEST_CASE("server: a handshake that stalls hits T_hs") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed("01 02 01")  // a truncated COMMAND, then nothing
        .after(9s)
        .check([](server_rig& r) { CHECK_FALSE(r.session().finished()); })
        .after(1s)
        .expect_closed(errc::handshake_timeout)
        .run();
    script(rig(auth_method::md5, {{"a", "b"}}))
        .expect_write(hello)
        .feed(cmd_tcp_receive)
        .expect_write(std::string("02000000") + challenge)
        .after(10s)
        .expect_closed(errc::handshake_timeout)
        .run();
}

TEST_CASE("server: one byte per second never keeps a handshake alive past T_hs") {
    auto s = script(rig(auth_method::none));
    s.expect_write(hello);
    for (int i = 0; i < 9; ++i) s.feed("01").after(1s);
    s.after(1s).expect_closed(errc::handshake_timeout).run();
}

TEST_CASE("server: a silent client in a UDP test hits T_idle") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_write("01000000 07d1")
        .after(5s)
        .feed("07 80 0000 01000000 00000000")  // the last STATUS the client sends, at 5 s
        .after(9s)
        .check([](server_rig& r) { CHECK_FALSE(r.session().finished()); })
        .after(1s)                             // 10 s without a STATUS
        .expect_closed(errc::peer_silent)
        .check([](server_rig& r) { CHECK(r.pool.released == std::vector<std::uint16_t>{2001}); })
        .run();
}

TEST_CASE("server: T_max ends the test with max_duration") {
    script(rig(auth_method::none, {}, challenge, [](server_rig& r) { r.cfg.limits.max_test = 3s; }))
        .expect_write(hello)
        .feed(cmd_tcp_transmit)
        .expect_write("01000000")
        .feed(std::vector<std::byte>(10))
        .after(1s).expect_write("07 80 0000 01000000 0a000000")
        .feed(std::vector<std::byte>(10))
        .after(1s).expect_write("07 80 0000 02000000 0a000000")
        .feed(std::vector<std::byte>(10))
        .after(1s)
        .expect_ended(end_reason::max_duration)
        .run();
}

TEST_CASE("server: a UDP test's control stream rejects stray bytes") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_write("01000000 07d1")
        .feed("07 80 0000 01000000 00000000 41")
        .expect_closed(errc::protocol_error)
        .run();
}

TEST_CASE("server: local stop ends the test cleanly and releases the port") {
    script(rig(auth_method::none))
        .expect_write(hello)
        .feed(cmd_udp_both)
        .expect_write("01000000 07d1")
        .check([](server_rig& r) { r.session().stop({}); })
        .check([](server_rig& r) {
            CHECK(r.session().finished());
            CHECK(r.pool.released == std::vector<std::uint16_t>{2001});
        })
        .run();
}

TEST_CASE("server: a STATUS the transport could not send yet merges into the next one") {
    server_rig r;
    r.pattern = test::unhex(challenge);
    r.start();
    auto& s = r.session();
    std::vector<std::byte> out(min_write_buffer);
    time_point t{};
    REQUIRE(s.write_to(0, t, out) == 4);  // HELLO
    s.feed(0, t, test::unhex(cmd_tcp_transmit));
    REQUIRE(s.write_to(0, t, out) == 4);  // OK
    s.feed(0, t, std::vector<std::byte>(700));
    s.on_timer(t + 1s);                   // STATUS 1 is due, but the socket is blocked...
    s.feed(0, t + 1s, std::vector<std::byte>(300));
    s.on_timer(t + 2s);                   // ...and a second one falls due
    const auto n = s.write_to(0, t + 2s, out);
    REQUIRE(n == 12);
    // One message on the wire: seq 1, both seconds' bytes.
    CHECK(test::hex(std::span(out).first(n)) == "07800000" "01000000" "e8030000");
    CHECK(s.summary().status_sent == 1);
    CHECK(s.summary().status_bytes_sent == 1000);
    CHECK(s.conn_stats(0).status_sent == 1);
    s.on_timer(t + 3s);
    REQUIRE(s.write_to(0, t + 3s, out) == 12);
    CHECK(test::hex(std::span(out).first(12)) == "07800000" "02000000" "00000000");
    CHECK(s.summary().status_sent == 2);
}

TEST_CASE("server: refuse() ends a test at a server limit before its OK word goes out") {
    server_rig r;
    r.pattern = test::unhex(challenge);
    r.start();
    auto& s = r.session();
    std::vector<std::byte> out(min_write_buffer);
    REQUIRE(s.write_to(0, {}, out) == 4);
    s.feed(0, {}, test::unhex(cmd_udp_both));  // OK and PORT queued, port 2001 bound
    s.refuse({});
    CHECK(s.finished());
    CHECK(s.error() == errc::resource_limit);
    CHECK(s.write_to(0, {}, out) == 0);
    CHECK(r.pool.released == std::vector<std::uint16_t>{2001});
}

/// Runs a server session (accepting pattern 9c4e) through HELLO, `command` and its OK word:
/// the state in which a multi-connection test waits for its JOINs.
static test::routed_server& accept_multi(server_rig& r, time_point now, std::string_view command) {
    r.pattern = test::unhex("9c4e");
    r.start();
    auto& s = r.session();
    std::array<std::byte, 64> out{};
    REQUIRE(s.write_to(0, now, out) == 4);  // HELLO
    s.feed(0, now, test::unhex(command));
    REQUIRE(s.write_to(0, now, out) == 4);
    CHECK(test::hex(std::span(out).first(4)) == "019c4e00");
    return s;
}

TEST_CASE("server: data that arrives before a multi-connection test starts stays with the test") {
    // A random-fill upload over 3 connections: the client's primary starts sending at the OK
    // word, before the JOINs (or T_join) start the test. Those bytes count for the test, the
    // stream stays opaque when the test starts, and random data is no "not zero-filled" notice.
    server_rig r;
    time_point now{};
    auto& s = accept_multi(r, now, "01 01 00 03 00 80 00 00 00 00 00 00 00 00 00 00");  // random fill
    const std::vector<std::byte> random(100, std::byte{0xab});
    s.feed(0, now, random);
    CHECK_FALSE(s.running());
    now += 10s;  // T_join with no JOIN: the test starts with the primary
    s.on_timer(now);
    REQUIRE(s.running());
    CHECK(s.conn_stats(0).opaque);
    CHECK(s.conn_stats(0).rx_bytes == 100);
    s.feed(0, now, random);
    CHECK(s.conn_stats(0).rx_bytes == 200);
    CHECK(s.summary(now).rx.bytes == 200);
    bool started = false;
    while (auto ev = s.poll_event()) {
        CHECK_FALSE(std::holds_alternative<notice>(*ev));
        started = started || std::holds_alternative<test_started>(*ev);
    }
    CHECK(started);
}

TEST_CASE("server: a STATUS record split across the start of a multi-connection test is kept") {
    // Zero fill, client receives over 2 connections: the client's first STATUS on the primary
    // arrives in two pieces, the first before the test starts (T_join), the rest after.
    server_rig r;
    time_point now{};
    auto& s = accept_multi(r, now, "01 02 01 02 00 80 00 00 00 00 00 00 00 00 00 00");
    s.feed(0, now, test::unhex("07 80 00 00 01"));
    now += 10s;
    s.on_timer(now);
    REQUIRE(s.running());
    s.feed(0, now, test::unhex("00 00 00 e8 03 00 00"));
    CHECK(s.conn_stats(0).status_received == 1);
    CHECK(s.conn_stats(0).peer_bytes == 1000u);
    CHECK_FALSE(s.conn_stats(0).opaque);
}
