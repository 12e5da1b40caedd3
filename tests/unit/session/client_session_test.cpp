// The client state machine of PROTOCOL §5, scripted against byte-exact server messages.
#include <catch2/catch.hpp>

#include <btest/auth/md5.hpp>
#include <btest/wire/md5.hpp>

#include "test/hex.hpp"
#include "test/rigs.hpp"
#include "test/script.hpp"
#include "test/vectors.hpp"

using namespace btest;
using namespace std::chrono_literals;
using test::client_rig;
using script = test::script<client_rig>;

namespace {
script::factory rig(std::function<void(client_config&)> cfg, std::string pattern_hex = "") {
    return [=] {
        auto r = std::make_unique<client_rig>();
        cfg(r->cfg);
        r->pattern = test::unhex(pattern_hex);
        r->start();
        return r;
    };
}
void tcp_receive(client_config& c) {
    c.proto = protocol::tcp;
    c.dir = direction::receive;
}
} // namespace

TEST_CASE("client: no auth, TCP receive, sends its COMMAND after HELLO (PROTOCOL 3 A)") {
    script(rig(tcp_receive))
        .expect_nothing_written()
        .feed("01000000")
        .expect_write("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00")
        .feed("01000000")
        .expect_event<test_started>()
        .feed(std::vector<std::byte>(4096))
        .after(1s)
        .expect_write("07 80 0000 01000000 00100000")  // received 4096 bytes in the first second
        .run();
}

TEST_CASE("client: every COMMAND field as configured") {
    script(rig([](client_config& c) {
        c.proto = protocol::udp;
        c.dir = direction::both;
        c.tx_size = 1000;
        c.remote_tx_speed = 300;
        c.local_tx_speed = 300;
    }))
        .feed("01000000")
        .expect_write("00 03 01 00 e8 03 00 00 2c 01 00 00 2c 01 00 00")  // the captured command
        .run();
    script(rig([](client_config& c) {
        c.dir = direction::both;
        c.connection_count = 20;
        c.random_data = true;
        c.remote_tx_speed = 10'000'000'000ULL;  // above u32: saturates on the wire
    }))
        .feed("01000000")
        .expect_write("01 03 00 14 00 80 00 00 ff ff ff ff 00 00 00 00")
        .run();
}

TEST_CASE("client: a wrong HELLO is not a btest server") {
    script(rig(tcp_receive))
        .feed(test::bytes_of("HTTP"))
        .expect_nothing_written()
        .expect_closed(errc::not_a_btest_server)
        .run();
}

TEST_CASE("client: MD5 with the published vector, challenge coalesced with the word") {
    script(rig([](client_config& c) {
        c.proto = protocol::udp;
        c.dir = direction::both;
        c.user = "test";
        c.password = "test";
    }))
        .feed("01000000")
        .expect_write("00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00")
        .feed("02000000 ad32d6f94d28161625f2f390bb895637")
        .expect_write("3c968565bc0314f281a6da1571cf7255 74657374" + std::string(56, '0'))
        .feed("01000000 07d1")  // OK and PORT in one segment
        .expect_event<test_started>()
        .check([](client_rig& r) {
            CHECK(r.binder.bound == std::vector<std::uint16_t>{2001 + 256});
            CHECK(r.binder.server_port == 2001);
        })
        .run();
}

TEST_CASE("client: MD5 refused, or EOF after the reply, is authentication failed") {
    auto cfg = [](client_config& c) { c.user = "test"; c.password = "nope"; };
    script(rig(cfg))
        .feed("01000000")
        .expect_prefix("01")
        .feed("02000000 ad32d6f94d28161625f2f390bb895637")
        .expect_prefix("")
        .feed("00000000")
        .expect_closed(errc::auth_failed)
        .run();
    script(rig(cfg))
        .feed("01000000")
        .expect_prefix("01")
        .feed("02000000 ad32d6f94d28161625f2f390bb895637")
        .expect_prefix("")
        .peer_closes()
        .expect_closed(errc::auth_failed)
        .run();
}

TEST_CASE("client: a server asking for auth without credentials set") {
    script(rig(tcp_receive))
        .feed("01000000")
        .expect_prefix("01")
        .feed("02000000 ad32d6f94d28161625f2f390bb895637")
        .expect_closed(errc::auth_required)
        .run();
    script(rig(tcp_receive))
        .feed("01000000")
        .expect_prefix("01")
        .feed("03000000")
        .expect_closed(errc::auth_required)
        .run();
}

TEST_CASE("client: unknown words are protocol errors") {
    for (const char* w : {"04000000", "01000001", "02000100"}) {
        INFO(w);
        script(rig(tcp_receive))
            .feed("01000000")
            .expect_prefix("01")
            .feed(w)
            .expect_closed(errc::protocol_error)
            .run();
    }
    // After an MD5 exchange only OK or failed may follow.
    script(rig([](client_config& c) { c.user = "a"; }))
        .feed("01000000")
        .expect_prefix("01")
        .feed("02000000 ad32d6f94d28161625f2f390bb895637")
        .expect_prefix("")
        .feed("02000000")
        .expect_closed(errc::protocol_error)
        .run();
}

TEST_CASE("client: EC-SRP5 replays every vector byte for byte") {
    for (const auto& v : test::ecsrp5_vectors()["vectors"].arr()) {
        INFO(v["name"].str());
        const auto& in = v["inputs"];
        auto msg = [&](const char* k) {
            for (auto& [key, val] : v["wire"].obj()) if (key.rfind(k, 0) == 0) return val.str();
            return std::string();
        };
        const std::string user = in["username_utf8"].str(), pass = in["password_utf8"].str();
        script(rig([=](client_config& c) {
                        c.user = user;
                        c.password = pass;
                    }, in["client_private_key_s_a_hex"].str()))
            .feed("01000000")
            .expect_prefix("01")
            .feed("03000000")
            .expect_write(msg("msg1"))
            .feed(msg("msg2"))
            .expect_write(msg("msg3"))
            .feed(msg("msg4") + "01000000")  // MSG4 and the OK word coalesced
            .expect_event<test_started>()
            .run();
    }
}

TEST_CASE("client: EC-SRP5 failures") {
    const auto& v = test::ecsrp5_vectors()["vectors"][0];
    const auto& in = v["inputs"];
    auto msg = [&](const char* k) {
        for (auto& [key, val] : v["wire"].obj()) if (key.rfind(k, 0) == 0) return val.str();
        return std::string();
    };
    auto cfg = [&](client_config& c) { c.user = "admin"; c.password = "test"; };
    const auto s_a = in["client_private_key_s_a_hex"].str();
    // MSG2 of the wrong length: a server rejecting the user may answer anything.
    script(rig(cfg, s_a)).feed("01000000").expect_prefix("01").feed("03000000").expect_prefix("")
        .feed("02 0000").expect_closed(errc::auth_failed).run();
    // A server key that does not decode (u = 0).
    script(rig(cfg, s_a)).feed("01000000").expect_prefix("01").feed("03000000").expect_prefix("")
        .feed("31" + std::string(64, '0') + "00" + std::string(32, '0'))
        .expect_closed(errc::bad_server_key).run();
    // A server proof that does not verify.
    auto bad4 = msg("msg4");
    bad4.back() = bad4.back() == '0' ? '1' : '0';
    script(rig(cfg, s_a)).feed("01000000").expect_prefix("01").feed("03000000").expect_prefix("")
        .feed(msg("msg2")).expect_write(msg("msg3")).feed(bad4).expect_closed(errc::auth_failed).run();
    // EOF while waiting for MSG4.
    script(rig(cfg, s_a)).feed("01000000").expect_prefix("01").feed("03000000").expect_prefix("")
        .feed(msg("msg2")).expect_write(msg("msg3")).peer_closes().expect_closed(errc::auth_failed).run();
    // The wrong password: the proofs differ, the server answers 00 00 00 00 (never MSG4).
    script(rig([](client_config& c) { c.user = "admin"; c.password = "wrong"; }, s_a))
        .feed("01000000").expect_prefix("01").feed("03000000").expect_prefix("")
        .feed(msg("msg2")).expect_prefix("20").feed("00000000").expect_closed(errc::auth_failed).run();
}

TEST_CASE("client: multi-connection TCP asks for extra connections, or downgrades") {
    script(rig([](client_config& c) { tcp_receive(c); c.connection_count = 3; }))
        .feed("01000000")
        .expect_write("01 02 01 03 00 80 00 00 00 00 00 00 00 00 00 00")
        .feed("019c4e00")
        .expect_event("open 2", [](const event& e) {
            auto* o = std::get_if<open_connections>(&e);
            return o && o->count == 2 && o->token == 0x9c4e;
        })
        .after(10s)  // none connected: T_join starts the test with the primary alone
        .expect_event<test_started>()
        .expect_event<notice>()
        .run();
    script(rig([](client_config& c) { tcp_receive(c); c.connection_count = 3; }))
        .feed("01000000")
        .expect_prefix("01")
        .feed("01000000")  // no token: downgrade with a notice
        .expect_event("notice", [](const event& e) {
            auto* n = std::get_if<notice>(&e);
            return n && n->code == errc::multi_connection_refused;
        })
        .expect_event<test_started>()
        .run();
}

TEST_CASE("client: an extra connection sends JOIN after HELLO and never waits for a reply") {
    client_rig r;
    tcp_receive(r.cfg);
    r.cfg.connection_count = 2;
    r.start();
    time_point t{};
    std::array<std::byte, min_write_buffer> out{};
    auto& s = r.session();
    s.feed(0, t, test::unhex("01000000"));
    CHECK(s.write_to(0, t, out) == 16);
    s.feed(0, t, test::unhex("019c4e00"));
    bool open = false;
    while (auto ev = s.poll_event()) open |= std::holds_alternative<open_connections>(*ev);
    REQUIRE(open);
    const auto c1 = s.add_connection(t);
    CHECK(c1 == 1);
    s.feed(c1, t, test::unhex("01000000"));          // HELLO on the extra connection
    auto n = s.write_to(c1, t, out);
    REQUIRE(n == 16);
    CHECK(test::hex(std::span(out).first(16)) == "9c4e0200000000000000000000000000");
    bool started = false;
    while (auto ev = s.poll_event()) started |= std::holds_alternative<test_started>(*ev);
    CHECK(started);                                   // all joined: the test runs
    // The optional reply is consumed; the data behind it counts.
    s.feed(c1, t, test::unhex("019c4e00 00000000"));
    CHECK(s.conn_stats(c1).rx_bytes == 4);
    // On a connection whose first bytes are data, nothing is swallowed.
    s.feed(0, t, test::unhex("00000000 00"));
    CHECK(s.conn_stats(0).rx_bytes == 5);
}

TEST_CASE("client: UDP port bind failure ends with port_unavailable") {
    script([] {
        auto r = std::make_unique<client_rig>();
        r->cfg.proto = protocol::udp;
        r->binder.succeed = false;
        r->start();
        return r;
    })
        .feed("01000000")
        .expect_prefix("00")
        .feed("01000000 07d1")
        .expect_closed(errc::port_unavailable)
        .run();
}

TEST_CASE("client: the configured duration ends the test as completed") {
    script(rig([](client_config& c) { tcp_receive(c); c.test_duration = 3s; }))
        .feed("01000000")
        .expect_prefix("01")
        .feed("01000000")
        .after(2s)
        .check([](client_rig& r) { CHECK_FALSE(r.session().finished()); })
        .after(1s)
        .expect_ended(end_reason::completed)
        .run();
}

TEST_CASE("client: a silent server in a TCP receive test hits T_idle") {
    script(rig(tcp_receive))
        .feed("01000000")
        .expect_prefix("01")
        .feed("01000000")
        .feed(std::vector<std::byte>(100))
        .after(9s)
        .check([](client_rig& r) { CHECK_FALSE(r.session().finished()); })
        .after(1s)
        .expect_closed(errc::peer_silent)
        .run();
}

TEST_CASE("client: the server closing mid-test ends it as peer_closed") {
    script(rig(tcp_receive))
        .feed("01000000")
        .expect_prefix("01")
        .feed("01000000")
        .after(2s)
        .peer_closes()
        .expect_ended(end_reason::peer_closed)
        .run();
}

TEST_CASE("client: extra connections reported after the test stopped change nothing") {
    // Found by fuzz/targets/client_session.cpp (regression connection-failed-after-stop-...).
    client_rig r;
    tcp_receive(r.cfg);
    r.cfg.connection_count = 3;
    r.start();
    auto& s = r.session();
    std::array<std::byte, min_write_buffer> out{};
    s.feed(0, {}, test::unhex("01000000"));
    s.write_to(0, {}, out);
    s.feed(0, {}, test::unhex("019c4e00"));
    s.stop({});
    REQUIRE(s.finished());
    while (s.poll_event()) {}
    s.connection_failed({});
    s.connection_failed({});
    const auto late = s.add_connection({});
    CHECK_FALSE(s.connection_open(late));
    CHECK_FALSE(s.running());
    CHECK(s.finished());
    bool started = false;
    while (auto ev = s.poll_event()) started |= std::holds_alternative<test_started>(*ev);
    CHECK_FALSE(started);
    CHECK(s.write_to(late, {}, out) == 0);
}

TEST_CASE("client: write_to with an empty buffer writes nothing") {
    // Found by fuzz/targets/client_session.cpp (regression write-to-empty-buffer-memcpy-null).
    client_rig r;
    tcp_receive(r.cfg);
    r.start();
    auto& s = r.session();
    s.feed(0, {}, test::unhex("01000000"));
    CHECK(s.write_to(0, {}, std::span<std::byte>{}) == 0);
    std::array<std::byte, 64> out{};
    CHECK(s.write_to(0, {}, out) == 16);  // the COMMAND is still there
}
