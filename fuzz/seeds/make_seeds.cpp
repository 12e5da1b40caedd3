// Writes the seed corpora of the fuzz targets from spec/PROTOCOL.md's examples (§2.2 captured
// commands, §2.8 STATUS examples, §3 transcripts) and the wire messages of spec/vectors/:
//
//   fuzz_make_seeds <spec-dir> <corpus-dir>      (corpus-dir = fuzz/corpus)
//
// Decoder seeds are the raw messages. Seeds of the targets that read their input through
// FuzzedDataProvider are laid out with fuzz::seed_writer, call for call in the order the target
// reads them (see fuzz/{server,client,pair}_ops.hpp); if a target's reading order changes,
// re-run this and merge. Files are named `seed-<what>`; merging may add or drop others.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz/client_ops.hpp"
#include "fuzz/pair_ops.hpp"
#include "fuzz/server_ops.hpp"
#include "fuzz/support.hpp"

namespace {

using bytes = std::vector<std::uint8_t>;
namespace fs = std::filesystem;

fs::path corpus_dir;

bytes hex(std::string_view h) {
    bytes out;
    int hi = -1;
    for (char ch : h) {
        int v;
        if (ch >= '0' && ch <= '9') v = ch - '0';
        else if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
        else continue;  // spaces
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    return out;
}

bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

void write(const std::string& target, const std::string& name, const bytes& data) {
    const auto dir = corpus_dir / target;
    fs::create_directories(dir);
    std::ofstream f(dir / ("seed-" + name), std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

/// Every value of a `"...<key_part>...": "<hex>"` member in a JSON text, in order (the vector
/// files are flat enough for this).
std::vector<bytes> json_hex(const std::string& text, std::string_view key_part) {
    std::vector<bytes> out;
    std::size_t pos = 0;
    while ((pos = text.find('"', pos)) != std::string::npos) {
        const auto end = text.find('"', pos + 1);
        if (end == std::string::npos) break;
        const auto key = std::string_view(text).substr(pos + 1, end - pos - 1);
        pos = end + 1;
        if (key.find(key_part) == std::string_view::npos) continue;
        const auto v0 = text.find('"', pos);
        const auto colon = text.find(':', pos);
        if (v0 == std::string::npos || colon == std::string::npos || colon > v0) continue;
        const auto v1 = text.find('"', v0 + 1);
        out.push_back(hex(std::string_view(text).substr(v0 + 1, v1 - v0 - 1)));
        pos = v1 + 1;
    }
    return out;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    if (!f) throw std::runtime_error("cannot read " + p.string());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// ---- the spec's examples ---------------------------------------------------------------

// PROTOCOL §2.2, captured RouterOS commands.
const char* const captured_commands[] = {
    "01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00", "01 02 00 00 00 80 00 00 00 00 00 00 00 00 00 00",
    "01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00", "01 02 01 0a 00 80 00 00 00 00 00 00 00 00 00 00",
    "01 02 01 00 00 80 00 00 ff ff ff ff 00 00 00 00", "01 02 01 00 00 80 00 00 00 00 00 00 01 00 00 00",
    "00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00", "00 02 01 00 d0 07 00 00 00 00 00 00 00 00 00 00",
    "00 02 01 00 00 fa 00 00 00 00 00 00 00 00 00 00", "00 02 01 14 dc 05 00 00 00 00 00 00 00 00 00 00",
    "00 03 01 00 e8 03 00 00 2c 01 00 00 2c 01 00 00",
};
// §2.8 examples.
const char* const status_examples[] = {
    "07 d9 00 00 01 00 00 00 c0 2d b4 02",
    "07 85 00 00 2c 01 00 00 d0 12 13 00",
    "07 e4 00 00 01 00 00 00 00 00 00 00",
};
// §3 transcripts.
const bytes hello = hex("01 00 00 00");
const bytes ok = hex("01 00 00 00");
const bytes cmd_a = hex("01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP, client receives
const bytes cmd_b = hex("00 03 01 00 dc 05 00 00 00 00 00 00 00 00 00 00");  // UDP both, 1500
const bytes cmd_d = hex("01 03 01 03 00 80 00 00 00 00 00 00 00 00 00 00");  // TCP both, 3 conns
const bytes md5_challenge_b = hex("02 00 00 00 ad 32 d6 f9 4d 28 16 16 25 f2 f3 90 bb 89 56 37");
const bytes md5_reply_b = hex("3c 96 85 65 bc 03 14 f2 81 a6 da 15 71 cf 72 55 74 65 73 74 00 00 00 00 00 00"
                              "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
const bytes ok_port_b = hex("01 00 00 00 07 d1");
const bytes ok_token_d = hex("01 9c 4e 00");
const bytes join_d = hex("9c 4e 02 00 00 00 00 00 00 00 00 00 00 00 00 00");
const bytes status_c2s_1 = hex("07 80 00 00 01 00 00 00 00 00 10 00");
const bytes status_c2s_2 = hex("07 80 00 00 02 00 00 00 00 00 20 00");

struct vectors {
    std::vector<bytes> md5_replies, md5_challenges;
    std::vector<bytes> msg1, msg2, msg3, msg4;
};

// ---- decoder seeds -----------------------------------------------------------------------

void decoder_seeds(const vectors& v) {
    int i = 0;
    for (auto c : captured_commands) write("command", "captured-" + std::to_string(++i), hex(c));
    auto truncated = hex(captured_commands[0]);
    truncated.pop_back();
    write("command", "truncated", truncated);

    i = 0;
    for (auto s : status_examples) write("status", "example-" + std::to_string(++i), hex(s));

    write("auth_word", "ok", ok);
    write("auth_word", "ok-token", ok_token_d);
    write("auth_word", "md5", hex("02 00 00 00"));
    write("auth_word", "ecsrp5", hex("03 00 00 00"));
    write("auth_word", "failed", hex("00 00 00 00"));
    write("auth_word", "ok-port", ok_port_b);

    // Reply ‖ challenge ‖ password, as the target reads its tail (the published vector).
    write("md5_reply", "published-vector", cat({md5_reply_b, bytes(md5_challenge_b.begin() + 4, md5_challenge_b.end()), hex("74657374")}));
    i = 0;
    for (const auto& r : v.md5_replies) write("md5_reply", "vector-" + std::to_string(++i), r);

    write("join", "transcript-d", join_d);

    i = 0;
    for (std::size_t k = 0; k < v.msg1.size(); ++k) {
        ++i;
        write("ecsrp5_frame", "msg1-" + std::to_string(i), v.msg1[k]);
        write("ecsrp5_frame", "msg2-" + std::to_string(i), v.msg2[k]);
        write("ecsrp5_frame", "msg3-" + std::to_string(i), v.msg3[k]);
        write("ecsrp5_frame", "msg4-" + std::to_string(i), v.msg4[k]);
        write("ecsrp5_frame", "exchange-" + std::to_string(i), cat({v.msg1[k], v.msg2[k], v.msg3[k], v.msg4[k]}));
        // Points: X_A ‖ PA (the last 33 bytes of MSG1), X_B ‖ PB (MSG2 bytes 1..33).
        const bytes pa(v.msg1[k].end() - 33, v.msg1[k].end());
        const bytes pb(v.msg2[k].begin() + 1, v.msg2[k].begin() + 34);
        write("ecsrp5_point", "client-key-" + std::to_string(i), pa);
        write("ecsrp5_point", "server-key-" + std::to_string(i), pb);
        // With a scalar (the client proof's bytes) and the marker: both ladders.
        write("ecsrp5_point", "client-key-mul-" + std::to_string(i), cat({pa, bytes(v.msg3[k].begin() + 1, v.msg3[k].end()), hex("6d")}));
    }

    // TCP scanner: mode, cuts, stream.
    auto scan = [](const std::string& name, int mode, std::vector<std::uint16_t> cuts, const bytes& stream) {
        fuzz::seed_writer w;
        w.integral<int>(0, 2, mode);
        w.integral<std::size_t>(0, 24, cuts.size());
        for (auto c : cuts) w.integral<std::uint16_t>(0, 0xffff, c);
        w.bytes(std::span<const std::uint8_t>(stream));
        write("tcp_scanner", name, w.finish());
    };
    bytes zeros_status;
    for (auto s : status_examples) {
        zeros_status.insert(zeros_status.end(), 40, 0);
        const auto b = hex(s);
        zeros_status.insert(zeros_status.end(), b.begin(), b.end());
    }
    scan("zero-fill-with-status", 0, {5, 45, 50, 90}, zeros_status);
    scan("status-only-control", 2, {1, 12, 13}, cat({hex(status_examples[0]), hex(status_examples[1]), hex(status_examples[2])}));
    scan("control-stray-byte", 2, {}, cat({hex(status_examples[0]), hex("01 00 00 00")}));
    scan("zero-fill-turns-opaque", 0, {3}, cat({bytes(10, 0), hex("42 07 00"), hex(status_examples[0])}));
    scan("opaque", 1, {7}, cat({hex(status_examples[1]), hex("de ad be ef")}));

    // UDP receiver: in-order datagrams with a gap, a late one, a duplicate, a probe.
    {
        fuzz::seed_writer w;
        w.integral<std::size_t>(0, 12, 4);  // max sources
        w.integral<int>(0, 2, 0);            // H = 28
        auto dg = [&](std::uint16_t port, int seq_mode, std::uint32_t arg, std::size_t len) {
            w.integral<std::uint32_t>(0, 100'000, 1000);  // 1 ms apart
            w.boolean(true);
            w.integral<std::uint16_t>(0, 15, port);
            w.integral<int>(0, 4, seq_mode);
            if (seq_mode == 1 || seq_mode == 2) w.integral<std::uint32_t>(0, 64, arg);
            if (seq_mode == 4) w.integral<std::uint32_t>(0, 0xffffffffu, arg);
            w.boolean(false);
            w.integral<std::size_t>(0, 2000, len);
            w.boolean(false);  // not raw
            w.integral<int>(0, 7, 1);
        };
        dg(1, 4, 1, 1472);  // seq 1
        dg(1, 0, 0, 1472);  // 2
        dg(1, 1, 3, 1472);  // 5: two lost
        dg(1, 2, 2, 1472);  // 3: late, one lost taken back
        dg(1, 2, 0, 1472);  // 5 again: duplicate
        dg(2, 4, 0xfffffffe, 1472);
        dg(2, 0, 0, 1472);  // wraps to 0xffffffff
        dg(2, 0, 0, 1472);  // 0
        dg(3, 4, 7, 2);     // a probe: ignored
        write("udp_receiver", "gap-late-duplicate-wrap", w.finish());
    }
}

// ---- session seeds -----------------------------------------------------------------------

/// Mirrors fuzz::read_server_config for a mostly-default configuration.
void server_config(fuzz::seed_writer& w, int auth) {
    w.integral<int>(0, 2, auth);
    w.boolean(true);             // max_conn_count 255
    w.integral<int>(0, 3, 0);    // report interval 1 s
    w.boolean(false);            // udp_single_destination
    w.boolean(false);            // udp_reply_to_source
    w.boolean(true);             // max_tx_rate 0
    w.boolean(true);             // udp send defaults
    w.boolean(true);             // timeout defaults
    w.integral<int>(0, 3, 1);    // no admission requests
}

/// Mirrors fuzz::read_client_config. `count_case`: 0 → 1 connection, 1 → `count` (2..4).
void client_config(fuzz::seed_writer& w, bool tcp, int dir, int count_case, std::uint32_t count, int login,
                   std::uint32_t duration_ms) {
    w.boolean(tcp);
    w.integral<int>(1, 3, dir);
    w.integral<int>(0, 3, count_case);
    if (count_case == 1) w.integral<std::uint32_t>(2, 4, count);
    w.integral<int>(0, 3, 0);    // tx_size default
    w.boolean(true);             // local UDP size 1500
    w.integral<int>(0, 4, 0);    // remote speed unlimited
    w.integral<int>(0, 4, 0);    // local speed unlimited
    w.boolean(false);            // zero fill
    w.integral<int>(0, 7, login);
    w.boolean(duration_ms == 0);
    if (duration_ms) w.integral<std::uint32_t>(0, 30'000, duration_ms);
    w.integral<int>(0, 3, 0);    // report interval 1 s
    w.boolean(false);            // no NAT probe
    w.boolean(true);             // udp send defaults
    w.boolean(true);             // timeout defaults
}

/// 64 bytes of entropy: s_a and s_b of an EC-SRP5 exchange.
bytes two_secrets() {
    bytes b(64);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(0x11 + 7 * i);
    return b;
}

void entropy_pool(fuzz::seed_writer& w, const bytes& pool) {
    w.integral<std::size_t>(0, 1024, pool.size());
    w.bytes(std::span<const std::uint8_t>(pool));
}

namespace so = fuzz::server_ops;

struct server_seed {
    fuzz::seed_writer w;
    std::size_t sockets = 1;
    std::size_t sessions = 0;  ///< tests the front end routed (a COMMAND creates one)

    void op(so::op o) { w.integral<int>(0, static_cast<int>(so::op::op_last), static_cast<int>(o)); }
    void socket(std::size_t k) { w.integral<std::size_t>(0, sockets - 1, k); }
    void session(std::size_t j) { w.integral<std::size_t>(0, sessions - 1, j); }
    void write_out(std::size_t k) {
        op(so::op::write);
        socket(k);
        w.integral<int>(0, 4, 4);  // min_write_buffer
        w.integral<int>(1, 8, 2);
    }
    void feed(std::size_t k, const bytes& b) {
        op(so::op::feed_raw);
        socket(k);
        w.integral<std::size_t>(0, 300, b.size());
        w.bytes(std::span<const std::uint8_t>(b));
    }
    void canned(std::size_t k, so::canned c) {
        op(so::op::feed_canned);
        socket(k);
        w.integral<int>(0, static_cast<int>(so::canned::canned_last), static_cast<int>(c));
    }
    void advance_ms(std::uint32_t ms) {
        op(so::op::advance);
        w.integral<int>(0, 3, 2);
        w.integral<std::uint32_t>(0, 15'000, ms);
    }
    /// Session j's timer (j == sessions: the front end's).
    void fire(std::size_t j) {
        op(so::op::fire_timer);
        w.integral<std::size_t>(0, sessions, j);
    }
    void command(std::size_t k, const bytes& b) {
        feed(k, b);
        ++sessions;
    }
    void accept_from_peer() {
        op(so::op::accept);
        w.integral<int>(0, 3, 1);
        ++sockets;
    }
    void datagrams(std::size_t j) {
        op(so::op::datagrams);
        session(j);
        w.integral<int>(0, 4, 3);
        w.integral<int>(1, 64, 8);
    }
    void feed_datagram(std::size_t j, std::size_t len) {
        op(so::op::feed_datagram);
        session(j);
        w.integral<int>(0, 7, 1);   // from the peer's IP
        w.boolean(true);            // to P + 256 + k
        w.integral<int>(0, 3, 0);
        w.boolean(true);            // a data datagram
        w.integral<std::size_t>(0, 1600, len);
        w.boolean(true);            // next sequence number
    }
    void close(std::size_t k) {
        op(so::op::close);
        socket(k);
        w.integral<int>(0, 2, 0);
    }
};

void harness_services(fuzz::seed_writer& w, bool v6) {
    w.boolean(true);                   // the default policy
    w.integral<std::size_t>(0, 4, 4);  // max pending sessions
    w.integral<std::size_t>(0, 3, 3);  // per IP
    w.integral<int>(0, 15, 1);         // credentials present
    w.integral<int>(0, 15, 1);         // join registry present
    w.boolean(v6);
}

void server_seeds(const vectors& v) {
    // A: TCP, client receives, no auth; the client reports twice, then closes.
    {
        server_seed s;
        entropy_pool(s.w, {});
        server_config(s.w, 0);
        harness_services(s.w, false);
        s.write_out(0);
        s.command(0, cmd_a);
        s.write_out(0);
        s.advance_ms(1000);
        s.feed(0, status_c2s_1);
        s.fire(0);
        s.write_out(0);
        s.advance_ms(1000);
        s.feed(0, status_c2s_2);
        s.fire(0);
        s.write_out(0);
        s.close(0);
        write("server_session", "transcript-a", s.w.finish());
    }
    // B: UDP both, MD5 with the published challenge; the spec's reply (user "test", unknown
    // here) and a correct one for a known user.
    for (int correct = 0; correct < 2; ++correct) {
        server_seed s;
        entropy_pool(s.w, bytes(md5_challenge_b.begin() + 4, md5_challenge_b.end()));
        server_config(s.w, 1);
        harness_services(s.w, false);
        s.write_out(0);
        s.command(0, cmd_b);
        s.write_out(0);
        if (correct) {
            s.canned(0, so::canned::md5_reply);
            s.w.integral<int>(0, 7, 0);  // admin/test
            s.w.integral<int>(0, 7, 1);  // the pool has a port
        } else {
            s.feed(0, md5_reply_b);
        }
        s.write_out(0);
        s.feed_datagram(0, 1472);
        s.feed_datagram(0, 1472);
        s.datagrams(0);
        s.advance_ms(1000);
        s.fire(0);
        s.feed(0, status_c2s_1);
        s.write_out(0);
        s.datagrams(0);
        write("server_session", correct ? "transcript-b-md5-known-user" : "transcript-b-md5-vector", s.w.finish());
    }
    // C: EC-SRP5: the vector's MSG1 and MSG3 (the server's own salt makes the proof fail), and
    // a whole exchange by a client exchange in the harness.
    if (!v.msg1.empty()) {
        server_seed s;
        entropy_pool(s.w, two_secrets());
        server_config(s.w, 2);
        harness_services(s.w, false);
        s.write_out(0);
        s.command(0, cmd_a);
        s.write_out(0);
        s.feed(0, v.msg1[0]);
        s.write_out(0);
        s.feed(0, v.msg3[0]);
        s.write_out(0);
        write("server_session", "transcript-c-ecsrp5-vector", s.w.finish());
    }
    {
        server_seed s;
        entropy_pool(s.w, two_secrets());
        server_config(s.w, 2);
        harness_services(s.w, false);
        s.write_out(0);
        s.command(0, cmd_a);
        s.write_out(0);
        s.canned(0, so::canned::ec_msg1);
        s.w.integral<int>(0, 7, 0);  // admin/test
        s.write_out(0);
        s.canned(0, so::canned::ec_msg3);
        s.write_out(0);
        s.advance_ms(1000);
        s.fire(0);
        s.feed(0, status_c2s_1);
        s.write_out(0);
        write("server_session", "transcript-c-ecsrp5-exchange", s.w.finish());
    }
    // D: TCP both, 3 connections; the token 9c 4e comes from the entropy pool.
    {
        server_seed s;
        entropy_pool(s.w, hex("9c 4e"));
        server_config(s.w, 0);
        harness_services(s.w, false);
        s.write_out(0);
        s.command(0, cmd_d);
        s.write_out(0);
        s.accept_from_peer();
        s.write_out(1);
        s.feed(1, join_d);
        s.accept_from_peer();
        s.write_out(2);
        s.feed(2, join_d);
        for (std::size_t k = 0; k < 3; ++k) s.write_out(k);
        s.advance_ms(1000);
        s.fire(0);
        for (std::size_t k = 0; k < 3; ++k) s.feed(k, status_c2s_1);
        for (std::size_t k = 0; k < 3; ++k) s.write_out(k);
        write("server_session", "transcript-d-three-connections", s.w.finish());
    }
}

namespace co = fuzz::client_ops;

struct client_seed {
    fuzz::seed_writer w;
    std::uint32_t conns = 1;

    void op(co::op o) { w.integral<int>(0, static_cast<int>(co::op::op_last), static_cast<int>(o)); }
    void conn(std::uint32_t k) { w.integral<std::uint32_t>(0, conns - 1, k); }
    void feed(std::uint32_t k, const bytes& b) {
        op(co::op::feed_raw);
        conn(k);
        w.integral<std::size_t>(0, 300, b.size());
        w.bytes(std::span<const std::uint8_t>(b));
    }
    void canned(std::uint32_t k, co::canned c) {
        op(co::op::feed_canned);
        conn(k);
        w.integral<int>(0, static_cast<int>(co::canned::canned_last), static_cast<int>(c));
    }
    void zeros(std::uint32_t k, std::size_t n) {
        canned(k, co::canned::zeros);
        w.integral<std::size_t>(0, 70'000, n);
    }
    void write_out(std::uint32_t k) {
        op(co::op::write);
        conn(k);
        w.integral<int>(0, 4, 4);
        w.integral<int>(1, 8, 2);
    }
    void advance_ms(std::uint32_t ms) {
        op(co::op::advance);
        w.integral<int>(0, 3, 2);
        w.integral<std::uint32_t>(0, 15'000, ms);
    }
    void fire() { op(co::op::fire_timer); }
    void add_connection() {
        op(co::op::add_connection);
        ++conns;
    }
    void datagrams() {
        op(co::op::datagrams);
        w.integral<int>(0, 4, 3);
        w.integral<int>(1, 64, 8);
    }
    void feed_datagram(std::size_t len) {
        op(co::op::feed_datagram);
        w.integral<int>(0, 7, 1);  // from the server's IP
        w.boolean(true);           // from P
        w.boolean(true);           // a data datagram
        w.integral<std::size_t>(0, 1600, len);
        w.boolean(true);
    }
};

void client_harness(fuzz::seed_writer& w) {
    w.boolean(false);           // IPv4
}

void client_seeds(const vectors& v) {
    // A: TCP receive, no auth, a 3-second test.
    {
        client_seed c;
        entropy_pool(c.w, {});
        client_config(c.w, true, 2, 0, 1, 7, 3000);
        client_harness(c.w);
        c.feed(0, hello);
        c.write_out(0);
        c.feed(0, ok);
        for (int s = 0; s < 4; ++s) {
            c.zeros(0, 32768);
            c.advance_ms(1000);
            c.fire();
            c.write_out(0);
        }
        write("client_session", "transcript-a", c.w.finish());
    }
    // B: UDP both, MD5 with the published challenge, port 2001.
    {
        client_seed c;
        entropy_pool(c.w, {});
        client_config(c.w, false, 3, 0, 1, 0, 2000);
        client_harness(c.w);
        c.feed(0, hello);
        c.write_out(0);
        c.feed(0, md5_challenge_b);
        c.write_out(0);
        c.op(co::op::feed_raw);
        c.conn(0);
        c.w.integral<std::size_t>(0, 300, ok_port_b.size());
        c.w.bytes(std::span<const std::uint8_t>(ok_port_b));
        c.w.integral<int>(0, 7, 1);  // the bind succeeds
        c.datagrams();
        c.feed_datagram(1472);
        c.feed_datagram(1472);
        c.advance_ms(1000);
        c.fire();
        c.write_out(0);
        c.feed(0, hex(status_examples[2]));
        c.datagrams();
        write("client_session", "transcript-b", c.w.finish());
    }
    // C: EC-SRP5 against a server exchange in the harness, then the vector's own MSG2/MSG4.
    {
        client_seed c;
        entropy_pool(c.w, two_secrets());
        client_config(c.w, true, 2, 0, 1, 0, 2000);
        client_harness(c.w);
        c.feed(0, hello);
        c.write_out(0);
        c.feed(0, hex("03 00 00 00"));
        c.write_out(0);
        c.canned(0, co::canned::ec_msg2);
        c.write_out(0);
        c.canned(0, co::canned::ec_msg4);
        c.zeros(0, 32768);
        c.advance_ms(1000);
        c.fire();
        c.write_out(0);
        write("client_session", "transcript-c-exchange", c.w.finish());
    }
    if (!v.msg2.empty()) {
        client_seed c;
        entropy_pool(c.w, two_secrets());
        client_config(c.w, true, 2, 0, 1, 0, 2000);
        client_harness(c.w);
        c.feed(0, hello);
        c.write_out(0);
        c.feed(0, hex("03 00 00 00"));
        c.write_out(0);
        c.feed(0, v.msg2[0]);
        c.write_out(0);
        c.feed(0, cat({v.msg4[0], ok}));
        write("client_session", "transcript-c-vector", c.w.finish());
    }
    // D: TCP both, 3 connections, token 9c 4e.
    {
        client_seed c;
        entropy_pool(c.w, {});
        client_config(c.w, true, 3, 1, 3, 7, 3000);
        client_harness(c.w);
        c.feed(0, hello);
        c.write_out(0);
        c.feed(0, ok_token_d);
        c.add_connection();
        c.add_connection();
        c.feed(1, hello);
        c.feed(2, hello);
        c.write_out(1);
        c.write_out(2);
        c.feed(1, ok_token_d);
        for (std::uint32_t k = 0; k < 3; ++k) c.zeros(k, 1000);
        c.advance_ms(1000);
        c.fire();
        for (std::uint32_t k = 0; k < 3; ++k) c.write_out(k);
        write("client_session", "transcript-d", c.w.finish());
    }
}

namespace po = fuzz::pair_ops;

struct pair_seed {
    fuzz::seed_writer w;
    std::size_t links = 1;
    std::size_t servers = 1;

    void op(po::op o) { w.integral<int>(0, static_cast<int>(po::op::op_last), static_cast<int>(o)); }
    void link(std::size_t k) { w.integral<std::size_t>(0, links - 1, k); }
    void pump(std::size_t k, bool from_client) {
        op(po::op::pump);
        link(k);
        w.boolean(from_client);
        w.integral<int>(0, 4, 4);
        w.integral<int>(1, 8, 2);
    }
    void deliver(std::size_t k, bool to_server) {
        op(po::op::deliver);
        link(k);
        w.boolean(to_server);
        w.boolean(false);
        w.integral<std::size_t>(0, 200'000, 200'000);
    }
    /// One round trip on link k: the server writes, the client reads, the client writes, the
    /// server reads. `then` runs after the delivery to the server (service calls happen there).
    template <class Then>
    void round(std::size_t k, Then&& then) {
        pump(k, false);
        deliver(k, false);
        pump(k, true);
        deliver(k, true);
        then();
    }
    void round(std::size_t k) {
        round(k, [] {});
    }
    void party(std::size_t who) { w.integral<std::size_t>(0, servers, who); }
    void advance_ms(std::uint32_t ms) {
        op(po::op::advance);
        w.integral<int>(0, 3, 2);
        w.integral<std::uint32_t>(0, 15'000, ms);
    }
    void fire(std::size_t who) {
        op(po::op::fire_timer);
        w.integral<int>(0, 3, 1);  // not the front end's timer
        party(who);
    }
    void send_datagrams(std::size_t who) {
        op(po::op::send_datagrams);
        party(who);
        w.integral<int>(0, 4, 3);
        w.integral<int>(1, 64, 8);
    }
    void land(int n) {
        op(po::op::land_datagrams);
        w.integral<int>(1, 64, n);
        for (int i = 0; i < n; ++i) {
            w.boolean(true);            // the oldest
            w.integral<int>(0, 15, 1);  // not lost
        }
    }
    void connect_extra() {  // (a JOIN: the front end attaches it to the test)
        op(po::op::connect_extra);
        ++links;
    }
};

void pair_seeds() {
    // A: TCP, client receives, no auth, 2 s.
    {
        pair_seed p;
        entropy_pool(p.w, {});
        server_config(p.w, 0);
        client_config(p.w, true, 2, 0, 1, 7, 2000);
        for (int i = 0; i < 3; ++i) p.round(0);
        for (int s = 0; s < 3; ++s) {
            p.advance_ms(1000);
            p.fire(0);
            p.fire(1);
            p.round(0);
        }
        write("session_pair", "transcript-a", p.w.finish());
    }
    // B: UDP both with MD5 (admin/test), 2 s.
    {
        pair_seed p;
        entropy_pool(p.w, bytes(md5_challenge_b.begin() + 4, md5_challenge_b.end()));
        server_config(p.w, 1);
        client_config(p.w, false, 3, 0, 1, 0, 2000);
        p.round(0);                                              // HELLO; COMMAND
        p.round(0);                                              // challenge; reply → port acquired
        p.w.integral<int>(0, 7, 1);                              // the pool has a port
        p.pump(0, false);                                        // OK + port
        p.deliver(0, false);
        p.w.integral<int>(0, 7, 1);                              // the client binds
        for (int s = 0; s < 3; ++s) {
            p.send_datagrams(0);
            p.send_datagrams(1);
            p.land(16);
            p.advance_ms(1000);
            p.fire(0);
            p.fire(1);
            p.round(0);
        }
        write("session_pair", "transcript-b-udp-md5", p.w.finish());
    }
    // C: EC-SRP5 (admin/test), TCP client transmits, 2 s.
    {
        pair_seed p;
        entropy_pool(p.w, two_secrets());
        server_config(p.w, 2);
        client_config(p.w, true, 1, 0, 1, 0, 2000);
        for (int i = 0; i < 5; ++i) p.round(0);
        for (int s = 0; s < 3; ++s) {
            p.advance_ms(1000);
            p.fire(0);
            p.fire(1);
            p.round(0);
        }
        write("session_pair", "transcript-c-ecsrp5", p.w.finish());
    }
    // D: TCP both, 3 connections, no auth.
    {
        pair_seed p;
        entropy_pool(p.w, hex("9c 4e"));
        server_config(p.w, 0);
        client_config(p.w, true, 3, 1, 3, 7, 2000);
        p.round(0);  // HELLO; COMMAND
        p.pump(0, false);
        p.deliver(0, false);  // OK with token → open_connections
        p.connect_extra();
        p.connect_extra();
        for (std::size_t k = 1; k < 3; ++k) p.round(k);  // HELLO; JOIN
        for (int s = 0; s < 3; ++s) {
            p.advance_ms(1000);
            p.fire(0);
            for (std::size_t k = 0; k < 3; ++k) p.round(k);
        }
        write("session_pair", "transcript-d-three-connections", p.w.finish());
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <spec-dir> <corpus-dir>\n", argv[0]);
        return 2;
    }
    const fs::path spec = argv[1];
    corpus_dir = argv[2];
    vectors v;
    const auto md5 = slurp(spec / "vectors" / "md5.json");
    v.md5_replies = json_hex(md5, "reply_48_bytes_hex");
    const auto ec = slurp(spec / "vectors" / "ecsrp5.json");
    v.msg1 = json_hex(ec, "msg1_client_to_server_hex");
    v.msg2 = json_hex(ec, "msg2_server_to_client_hex");
    v.msg3 = json_hex(ec, "msg3_client_to_server_hex");
    v.msg4 = json_hex(ec, "msg4_server_to_client_hex");
    decoder_seeds(v);
    server_seeds(v);
    client_seeds(v);
    pair_seeds();
    std::printf("seeds written under %s\n", corpus_dir.string().c_str());
    return 0;
}
