// The probe's config file (errors name the line), its target syntax and the allow-list rules.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "probe/config.hpp"
#include "probe/target.hpp"

using namespace btest_probe;
using namespace std::chrono_literals;

namespace {

probe_config parse(const std::string& text) {
    std::istringstream in(text);
    return parse_config(in, "probe.toml");
}

/// The loader's message for `text` (which must be refused).
std::string error_of(const std::string& text) {
    try {
        parse(text);
    } catch (const config_error& e) {
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

const char* const allow = "[allow]\ntargets = [\"127.0.0.0/8\"]\n";

} // namespace

TEST_CASE("probe: config: the shipped example loads with the issue's shape") {
    const auto cfg = load_config(std::string(BTEST_SOURCE_DIR) + "/examples/probe.toml");
    REQUIRE(cfg.modules.count("tcp_rx"));
    const auto& m = cfg.modules.at("tcp_rx");
    CHECK(m.proto == btest::protocol::tcp);
    CHECK(m.dir == btest::direction::receive);
    CHECK(m.duration == 5s);
    CHECK(m.bandwidth == 0);
    CHECK(m.connection_count == 1);
    REQUIRE(cfg.allow.size() >= 2);
    CHECK(cfg.allow[0].network);
    CHECK(cfg.allow[0].prefix == 24);
}

TEST_CASE("probe: config: every field of a module is read") {
    const auto cfg = parse(std::string(allow) + R"(
[modules.all]
protocol = "UDP"
direction = "both"
duration = "1.5s"
bandwidth = "1.5G"
connection_count = 4
tx_size = 1400
random_data = true
user = "probe"
password = "s3cret"
connect_timeout = "750ms"
family = "ipv6"
)");
    const auto& m = cfg.modules.at("all");
    CHECK(m.proto == btest::protocol::udp);
    CHECK(m.dir == btest::direction::both);
    CHECK(m.duration == 1500ms);
    CHECK(m.bandwidth == 1'500'000'000);
    CHECK(m.connection_count == 4);
    CHECK(m.tx_size == 1400);
    CHECK(m.random_data);
    CHECK(m.user == "probe");
    CHECK(m.password == "s3cret");
    CHECK(m.connect_timeout == 750ms);
    CHECK(m.family == address_family::ipv6);
}

TEST_CASE("probe: config: errors name the file and the line") {
    auto has = [](const std::string& msg, const std::string& part) {
        INFO(msg);
        CHECK(msg.find(part) != std::string::npos);
    };
    const std::string m = std::string(allow) + "[modules.x]\n";   // the module's keys start on line 4
    has(error_of(m + "duration = \"5x\"\n"), "probe.toml:4: modules.x.duration");
    has(error_of(m + "protocol = \"sctp\"\n"), "probe.toml:4: modules.x.protocol: 'sctp' is not tcp or udp");
    has(error_of(m + "direction = \"up\"\n"), "probe.toml:4:");
    has(error_of(m + "protocol = \"tcp\"\nbandwith = \"10M\"\n"), "probe.toml:5: unknown key 'modules.x.bandwith'");
    has(error_of(m + "bandwidth = \"fast\"\n"), "probe.toml:4: modules.x.bandwidth");
    has(error_of(m + "connection_count = 300\n"), "probe.toml:4: modules.x.connection_count: 300 is out of range 1..255");
    has(error_of(m + "connection_count = \"2\"\n"), "expected an integer");
    has(error_of(m + "protocol = \"udp\"\ntx_size = 20\n"), "probe.toml:5: modules.x.tx_size: a UDP datagram is 28..64000");
    has(error_of(m + "duration = \"2h\"\n"), "between 100ms and 1h");
    has(error_of(m + "password = \"x\"\n"), "password without user");
    has(error_of(m + "duration = \"5s\n"), "probe.toml:4: TOML syntax error");
    has(error_of("[allow]\ntargets = [\"192.0.2.1/24\"]\n[modules.x]\n"), "probe.toml:2: allow.targets: '192.0.2.1/24': address has bits set");
    has(error_of("[allow]\ntargets = [\"10.0.0.0/33\"]\n[modules.x]\n"), "prefix length out of range");
    has(error_of("[allow]\ntargets = [\"not a host\"]\n[modules.x]\n"), "neither an address");
    has(error_of("[allow]\ntargets = []\n[modules.x]\n"), "probe.toml:2: allow.targets is empty");
    has(error_of("[modules.x]\n"), "no [allow] targets");
    has(error_of(allow), "no modules");
    has(error_of(std::string(allow) + "[modules.x]\n[extra]\nfoo = 1\n"), "unknown table or key 'extra'");
    has(error_of(std::string(allow) + "[modules.\"bad name\"]\n"), "module name 'bad name'");
}

TEST_CASE("probe: config: durations and rates") {
    CHECK(parse_duration("5s") == 5000ms);
    CHECK(parse_duration("500ms") == 500ms);
    CHECK(parse_duration("1.5") == 1500ms);
    CHECK(parse_duration("2m") == 120000ms);
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("-1s"));
    CHECK_FALSE(parse_duration("5 s"));
    CHECK_FALSE(parse_duration("s"));
    CHECK(parse_rate("0") == 0u);
    CHECK(parse_rate("100M") == 100'000'000u);
    CHECK(parse_rate("500k") == 500'000u);
    CHECK(parse_rate("64000") == 64'000u);
    CHECK_FALSE(parse_rate("M"));
    CHECK_FALSE(parse_rate("-5M"));
    CHECK_FALSE(parse_rate("1e400"));
}

TEST_CASE("probe: config: targets are HOST, HOST:PORT, IPv6 or [IPv6]:PORT") {
    std::string err;
    auto ok = [&](const char* s, const char* host, std::uint16_t port, bool literal) {
        const auto t = parse_target(s, err);
        INFO(s << ": " << err);
        REQUIRE(t);
        CHECK(t->host == host);
        CHECK(t->port == port);
        CHECK(t->literal.has_value() == literal);
    };
    ok("192.0.2.1", "192.0.2.1", 2000, true);
    ok("192.0.2.1:2001", "192.0.2.1", 2001, true);
    ok("[2001:db8::1]:2002", "2001:db8::1", 2002, true);
    ok("[2001:db8::1]", "2001:db8::1", 2000, true);
    ok("2001:db8::1", "2001:db8::1", 2000, true);
    ok("[::ffff:192.0.2.9]:2000", "192.0.2.9", 2000, true);   // IPv4-mapped is IPv4
    ok("Router1.Example.NET.", "router1.example.net", 2000, false);
    ok("router-2:65535", "router-2", 65535, false);
    auto bad = [&](const std::string& s, const char* part) {
        const auto t = parse_target(s, err);
        INFO(s << " -> " << err);
        CHECK_FALSE(t);
        CHECK(err.find(part) != std::string::npos);
    };
    bad("", "empty");
    bad("192.0.2.1:0", "port must be 1..65535");
    bad("192.0.2.1:99999", "port must be 1..65535");
    bad("host:", "port must be 1..65535");
    bad("999.0.2.1", "not a valid IPv4 address");
    bad("10.1", "not a valid IPv4 address");
    bad("0x7f.1", "not a valid host name");
    bad("[2001:db8::1", "without ']'");
    bad("[192.0.2.1]:2000", "not an IPv6 address");
    bad("2001:db8::1:2000:", "not an IPv6 address");
    bad("a..b", "not a valid host name");
    bad("-a.example", "not a valid host name");
    bad("fe80::1%eth0", "not an IPv6 address");
    bad("host name", "not a valid host name");
    bad("evil\n.example", "not a valid host name");
    bad(std::string(300, 'a'), "too long");
}

TEST_CASE("probe: config: the allow-list matches networks, addresses and listed names") {
    std::string err;
    std::vector<allow_entry> allow;
    for (const char* s : {"192.0.2.0/24", "2001:db8::/32", "198.51.100.7", "router1.example.net", "::ffff:203.0.113.0/120"}) {
        auto e = parse_allow_entry(s, err);
        INFO(s << ": " << err);
        REQUIRE(e);
        allow.push_back(*e);
    }
    auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
    CHECK(address_allowed(allow, a("192.0.2.0")));
    CHECK(address_allowed(allow, a("192.0.2.255")));
    CHECK_FALSE(address_allowed(allow, a("192.0.3.0")));
    CHECK(address_allowed(allow, a("2001:db8:ffff::1")));
    CHECK_FALSE(address_allowed(allow, a("2001:db9::1")));
    CHECK(address_allowed(allow, a("198.51.100.7")));
    CHECK_FALSE(address_allowed(allow, a("198.51.100.8")));
    CHECK(address_allowed(allow, a("::ffff:192.0.2.1")));     // mapped v4 matches the v4 network
    CHECK(address_allowed(allow, a("203.0.113.9")));          // a mapped network matches plain v4
    CHECK_FALSE(address_allowed(allow, a("::")));
    CHECK(host_listed(allow, "Router1.example.net."));
    CHECK_FALSE(host_listed(allow, "router2.example.net"));
    CHECK_FALSE(host_listed(allow, "192.0.2.1"));
}
