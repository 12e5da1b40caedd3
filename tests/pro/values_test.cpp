// The value types btest-server-pro's CLI and `serve` share: BYTES, IP/CIDR, user names, UTC
// times and quota windows, JSON escaping. Pure functions: every case is an exact answer.
#include <catch2/catch.hpp>

#include "btest/pro/byte_size.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/json_writer.hpp"
#include "btest/pro/quota.hpp"
#include "btest/pro/user_name.hpp"
#include "btest/pro/utc_time.hpp"
#include "pro_support.hpp"
#include "test/json.hpp"

using namespace btest::pro;
using pro_test::utc;

TEST_CASE("pro: bytes: suffixes are powers of 1000, fractions must give whole bytes", "[pro][values]") {
    CHECK(parse_byte_size("0") == 0u);
    CHECK(parse_byte_size("999") == 999u);
    CHECK(parse_byte_size("2K") == 2'000u);
    CHECK(parse_byte_size("2k") == 2'000u);
    CHECK(parse_byte_size("500M") == 500'000'000u);
    CHECK(parse_byte_size("2G") == 2'000'000'000u);
    CHECK(parse_byte_size("24GB") == 24'000'000'000u);
    CHECK(parse_byte_size("1T") == 1'000'000'000'000u);
    CHECK(parse_byte_size("1.5G") == 1'500'000'000u);
    CHECK(parse_byte_size("0.001K") == 1u);
    CHECK(parse_byte_size("1.0050K") == 1'005u);
    CHECK(parse_byte_size("100b") == 100u);
    CHECK(parse_byte_size("18446744073709551615") == UINT64_MAX);
    CHECK(parse_byte_size("18446744T") == 18'446'744'000'000'000'000u);
}

TEST_CASE("pro: bytes: malformed sizes are refused with a reason", "[pro][values]") {
    for (const char* bad : {"", "G", "B", "-1", "-1G", "1.0005K", "1.5", "1e9", "2X", "2 G", " 2G", "2GG", "0x10",
                            "18446744073709551616", "18446745T", ".", "1..5G", "+5"}) {
        std::string why;
        INFO("input: '" << bad << "'");
        CHECK_FALSE(parse_byte_size(bad, &why).has_value());
        CHECK_THAT(why, Catch::Contains("invalid byte size"));
    }
}

TEST_CASE("pro: bytes: the exact form reads back, the human form rounds to three digits", "[pro][values]") {
    for (std::uint64_t n : std::initializer_list<std::uint64_t>{0, 1, 999, 1000, 1500, 2'000'000'000, 1'500'000'000'000,
                                                                123'456'789, UINT64_MAX})
        CHECK(parse_byte_size(format_byte_size(n)) == n);
    CHECK(format_byte_size(2'000'000'000) == "2G");
    CHECK(format_byte_size(1'500'000'000) == "1500M");
    CHECK(format_byte_size(0) == "0");
    CHECK(format_byte_size_human(999) == "999 B");
    CHECK(format_byte_size_human(1000) == "1.00 kB");
    CHECK(format_byte_size_human(2'500'000'000) == "2.50 GB");
    CHECK(format_byte_size_human(12'345'678) == "12.3 MB");
    CHECK(format_byte_size_human(999'999) == "1.00 MB");
}

TEST_CASE("pro: ip: IPv4 and IPv6 parse, mapped addresses become IPv4", "[pro][values]") {
    auto v4 = parse_ip("192.0.2.1");
    REQUIRE(v4);
    CHECK(v4->family == btest::ip_family::v4);
    CHECK(v4->to_string() == "192.0.2.1");
    auto v6 = parse_ip("2001:db8::1");
    REQUIRE(v6);
    CHECK(v6->family == btest::ip_family::v6);
    CHECK(v6->to_string() == "2001:db8::1");
    auto mapped = parse_ip("::ffff:192.0.2.1");
    REQUIRE(mapped);
    CHECK(*mapped == *v4);
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "example.com", "[::1]", "::1%eth0",
                            "192.0.2.1/32", "1.2.3.4 ", "::g", "1:2:3:4:5:6:7:8:9"}) {
        std::string why;
        INFO("input: '" << bad << "'");
        CHECK_FALSE(parse_ip(bad, &why).has_value());
        CHECK_THAT(why, Catch::Contains("invalid IP address"));
    }
    CHECK(format_endpoint(*v4, 2000) == "192.0.2.1:2000");
    CHECK(format_endpoint(*v6, 2000) == "[2001:db8::1]:2000");
}

TEST_CASE("pro: cidr: blocks contain exactly their addresses, IPv4 and IPv6", "[pro][values]") {
    auto ten = cidr::parse("10.0.0.0/8");
    REQUIRE(ten);
    CHECK(ten->contains(*parse_ip("10.0.0.0")));
    CHECK(ten->contains(*parse_ip("10.255.255.255")));
    CHECK_FALSE(ten->contains(*parse_ip("11.0.0.0")));
    CHECK_FALSE(ten->contains(*parse_ip("9.255.255.255")));
    CHECK_FALSE(ten->contains(*parse_ip("::a00:1")));  // not the IPv4 block
    btest::ip_address mapped;  // ::ffff:10.1.2.3 as a dual-stack socket reports it
    mapped.family = btest::ip_family::v6;
    mapped.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
    CHECK(ten->contains(mapped));

    auto odd = cidr::parse("192.168.4.0/22");
    REQUIRE(odd);
    CHECK(odd->contains(*parse_ip("192.168.7.255")));
    CHECK_FALSE(odd->contains(*parse_ip("192.168.8.0")));
    CHECK_FALSE(odd->contains(*parse_ip("192.168.3.255")));

    auto all4 = cidr::parse("0.0.0.0/0");
    REQUIRE(all4);
    CHECK(all4->contains(*parse_ip("255.255.255.255")));
    CHECK_FALSE(all4->contains(*parse_ip("::1")));

    auto host = cidr::parse("127.0.0.2");
    REQUIRE(host);
    CHECK(host->prefix_len() == 32);
    CHECK(host->contains(*parse_ip("127.0.0.2")));
    CHECK_FALSE(host->contains(*parse_ip("127.0.0.3")));

    auto doc = cidr::parse("2001:db8::/32");
    REQUIRE(doc);
    CHECK(doc->contains(*parse_ip("2001:db8:ffff::1")));
    CHECK_FALSE(doc->contains(*parse_ip("2001:db9::1")));
    CHECK(doc->to_string() == "2001:db8::/32");
    auto v6odd = cidr::parse("2001:db8:8000::/33");
    REQUIRE(v6odd);
    CHECK(v6odd->contains(*parse_ip("2001:db8:ffff::")));
    CHECK_FALSE(v6odd->contains(*parse_ip("2001:db8:7fff::")));
    auto lo6 = cidr::parse("::1/128");
    REQUIRE(lo6);
    CHECK(lo6->contains(*parse_ip("::1")));
    CHECK_FALSE(lo6->contains(*parse_ip("::2")));

    auto mapped_block = cidr::parse("::ffff:10.0.0.0/104");
    REQUIRE(mapped_block);
    CHECK(*mapped_block == *ten);
}

TEST_CASE("pro: cidr: malformed blocks are refused with a reason", "[pro][values]") {
    for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
                            "10.1.2.3/8", "2001:db8::1/32", "10.0.0.0/ 8", "10.0.0.0/8x", "host/8", "10.0.0.0/99999999999"}) {
        std::string why;
        INFO("input: '" << bad << "'");
        CHECK_FALSE(cidr::parse(bad, &why).has_value());
        CHECK_THAT(why, Catch::Contains("invalid CIDR block"));
    }
}

TEST_CASE("pro: user names: what the wire carries, no control characters, UTF-8", "[pro][values]") {
    CHECK_FALSE(user_name_problem("btest"));
    CHECK_FALSE(user_name_problem(std::string(32, 'a')));
    CHECK_FALSE(user_name_problem("Пользователь"));   // 24 bytes of UTF-8
    CHECK_FALSE(user_name_problem("name with spaces"));
    CHECK(user_name_problem("").value() == "is empty");
    CHECK_THAT(user_name_problem(std::string(33, 'a')).value(), Catch::Contains("33 bytes") && Catch::Contains("at most 32"));
    CHECK_THAT(user_name_problem("ПользовательПольз").value(), Catch::Contains("34 bytes"));
    CHECK_THAT(user_name_problem(std::string("a\0b", 3)).value(), Catch::Contains("control character"));
    CHECK_THAT(user_name_problem("a\tb").value(), Catch::Contains("control character (byte 1)"));
    CHECK_THAT(user_name_problem("a\x7f").value(), Catch::Contains("control character"));
    CHECK_THAT(user_name_problem("a\xc2\x85").value(), Catch::Contains("control character"));  // U+0085 (C1)
    CHECK_THAT(user_name_problem("a\xff").value(), Catch::Contains("not valid UTF-8 (byte 1)"));
    CHECK_THAT(user_name_problem("\xc0\xaf").value(), Catch::Contains("not valid UTF-8"));        // overlong '/'
    CHECK_THAT(user_name_problem("\xed\xa0\x80").value(), Catch::Contains("not valid UTF-8"));    // a surrogate
    CHECK_THAT(user_name_problem("\xe2\x82").value(), Catch::Contains("not valid UTF-8"));        // truncated
}

TEST_CASE("pro: time: ISO 8601 in and out, UTC and offsets", "[pro][values]") {
    CHECK(format_utc(utc(2024, 5, 1, 12, 34, 56) + std::chrono::milliseconds{789}) == "2024-05-01T12:34:56.789Z");
    CHECK(parse_utc("2024-05-01") == utc(2024, 5, 1, 0));
    CHECK(parse_utc("2024-05-01T12:34") == utc(2024, 5, 1, 12, 34));
    CHECK(parse_utc("2024-05-01T12:34:56Z") == utc(2024, 5, 1, 12, 34, 56));
    CHECK(parse_utc("2024-05-01 12:34:56") == utc(2024, 5, 1, 12, 34, 56));
    CHECK(parse_utc("2024-05-01T12:34:56.5Z") == utc(2024, 5, 1, 12, 34, 56) + std::chrono::milliseconds{500});
    CHECK(parse_utc("2024-05-01T14:34:56+02:00") == utc(2024, 5, 1, 12, 34, 56));
    CHECK(parse_utc("2024-05-01T07:34:56-0500") == utc(2024, 5, 1, 12, 34, 56));
    CHECK(parse_utc("2024-02-29") == utc(2024, 2, 29, 0));
    const auto t = utc(2024, 5, 1, 12, 34, 56) + std::chrono::milliseconds{789};
    CHECK(parse_utc(format_utc(t)) == t);
    for (const char* bad : {"", "2024", "2024-5-1", "2023-02-29", "2024-13-01", "2024-04-31", "2024-05-01T24:00",
                            "2024-05-01T12:60", "2024-05-01T12:00:00+25:00", "2024-05-01T12:00:00X", "1969-12-31",
                            "2024-05-01T", "2024-05-01T12:00:00."}) {
        std::string why;
        INFO("input: '" << bad << "'");
        CHECK_FALSE(parse_utc(bad, &why).has_value());
        CHECK_THAT(why, Catch::Contains("invalid time"));
    }
}

TEST_CASE("pro: time: --since takes a duration before now or an ISO time", "[pro][values]") {
    const auto now = utc(2024, 5, 10, 12);
    CHECK(parse_since("90s", now) == now - std::chrono::seconds{90});
    CHECK(parse_since("30m", now) == now - std::chrono::minutes{30});
    CHECK(parse_since("24h", now) == utc(2024, 5, 9, 12));
    CHECK(parse_since("7d", now) == utc(2024, 5, 3, 12));
    CHECK(parse_since("2w", now) == utc(2024, 4, 26, 12));
    CHECK(parse_since("0s", now) == now);
    CHECK(parse_since("2024-05-01", now) == utc(2024, 5, 1, 0));
    for (const char* bad : {"", "h", "-5h", "5y", "1.5h", "yesterday", "99999999999999999w"}) {
        std::string why;
        INFO("input: '" << bad << "'");
        CHECK_FALSE(parse_since(bad, now, &why).has_value());
        CHECK_FALSE(why.empty());
    }
    std::string why;
    CHECK_FALSE(parse_since("2024-02-30", now, &why));
    CHECK_THAT(why, Catch::Contains("no such date"));
}

TEST_CASE("pro: windows: calendar periods in UTC, weeks from Monday", "[pro][values]") {
    using std::chrono::milliseconds;
    // A day: [00:00, 24:00).
    CHECK(period_start(window::daily, utc(2024, 5, 1, 0)) == utc(2024, 5, 1, 0));
    CHECK(period_start(window::daily, utc(2024, 5, 1, 23, 59, 59) + milliseconds{999}) == utc(2024, 5, 1, 0));
    CHECK(period_end(window::daily, utc(2024, 5, 1, 23, 59, 59)) == utc(2024, 5, 2, 0));
    // Weeks start on Monday: 2024-05-06 is a Monday, 2024-05-05 a Sunday.
    CHECK(period_start(window::weekly, utc(2024, 5, 6, 0)) == utc(2024, 5, 6, 0));
    CHECK(period_start(window::weekly, utc(2024, 5, 5, 23, 59, 59)) == utc(2024, 4, 29, 0));
    CHECK(period_start(window::weekly, utc(2024, 5, 12, 12)) == utc(2024, 5, 6, 0));
    CHECK(period_end(window::weekly, utc(2024, 5, 12, 12)) == utc(2024, 5, 13, 0));
    // Across a year: 2025-01-01 is a Wednesday; its week began on Monday 2024-12-30.
    CHECK(period_start(window::weekly, utc(2025, 1, 1)) == utc(2024, 12, 30, 0));
    // 1970-01-01 was a Thursday (the epoch is not a week start).
    CHECK(period_start(window::weekly, utc(1970, 1, 4)) == utc(1969, 12, 29, 0));
    // Months: ends of 28, 29, 30 and 31 days.
    CHECK(period_start(window::monthly, utc(2024, 5, 31, 23, 59, 59)) == utc(2024, 5, 1, 0));
    CHECK(period_end(window::monthly, utc(2024, 5, 31, 23, 59, 59)) == utc(2024, 6, 1, 0));
    CHECK(period_end(window::monthly, utc(2024, 2, 10)) == utc(2024, 3, 1, 0));   // leap year: 29 days
    CHECK(period_start(window::monthly, utc(2024, 2, 29, 23)) == utc(2024, 2, 1, 0));
    CHECK(period_end(window::monthly, utc(2023, 2, 10)) == utc(2023, 3, 1, 0));   // 28 days
    CHECK(period_end(window::monthly, utc(2100, 2, 10)) == utc(2100, 3, 1, 0));   // 2100: not a leap year
    CHECK(period_end(window::monthly, utc(2000, 2, 29)) == utc(2000, 3, 1, 0));   // 2000: a leap year
    CHECK(period_end(window::monthly, utc(2024, 4, 30)) == utc(2024, 5, 1, 0));
    CHECK(period_end(window::monthly, utc(2024, 12, 31, 23)) == utc(2025, 1, 1, 0));
    CHECK(period_start(window::monthly, utc(2025, 1, 1, 0)) == utc(2025, 1, 1, 0));
}

TEST_CASE("pro: json: every string is escaped, bad UTF-8 replaced, output parses", "[pro][values]") {
    json_writer j;
    const std::string nasty = std::string("<script>\"a\\b\"\n\t\x01\x7f") + "\xff" + "Ж" + std::string(1, '\0');
    j.begin_object()
        .field("s", nasty)
        .field("n", std::uint64_t{18446744073709551615ULL})
        .field("neg", std::int64_t{-5})
        .field("d", 1.5)
        .field("b", true)
        .key("none").null()
        .key("arr").begin_array().string("x").number(std::uint64_t{1}).begin_object().end_object().end_array()
        .field("opt", std::optional<std::uint64_t>{})
        .end_object();
    const auto v = test::json::parse(j.str());
    CHECK(v["s"].str() == std::string("<script>\"a\\b\"\n\t\x01\x7f") + "\xef\xbf\xbd" + "Ж" + std::string(1, '\0'));
    CHECK(v["b"].boolean());
    CHECK(v["none"].is_null());
    CHECK(v["opt"].is_null());
    CHECK(v["arr"].arr().size() == 3);
    CHECK(v["d"].number() == 1.5);
    CHECK(j.str().find('\n') == std::string::npos);

    // Doubles: the shortest text that reads back the same (a duration of 2049 ms is 2.049).
    json_writer k;
    k.begin_array().number(2049 / 1000.0).number(0.1).number(1e21).number(-0.0).end_array();
    CHECK(k.str() == "[2.049,0.1,1e+21,-0]");
}
