// The Prometheus text writer (apps/common/prometheus.hpp) and process_* metrics, read back by a
// strict parser of the format and, where installed, by Prometheus's own promtool.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "common/process_metrics.hpp"
#include "common/prometheus.hpp"
#include "prom_parse.hpp"
#include "promtool.hpp"

namespace prom = btest_app::prom;
using prom::metric_type;

TEST_CASE("probe: prometheus writer: label values and help text are escaped and read back unchanged") {
    const std::string nasty = "back\\slash \"quoted\"\nnew line, comma, {brace} = ünïcode";
    prom::text_writer w;
    w.family("demo_info", metric_type::gauge, "Help with a \\ backslash\nand a second line.")
        .sample({{"user", nasty}, {"empty", ""}}, 1);
    const auto text = w.take();
    INFO(text);
    CHECK(text.find("\\\\") != std::string::npos);
    CHECK(text.find("\\\"quoted\\\"") != std::string::npos);
    CHECK(text.find("\\n") != std::string::npos);
    const auto e = prom_parse::parse(text);
    REQUIRE(e.error.empty());
    REQUIRE(e.families.at("demo_info").help == std::string("Help with a \\ backslash\nand a second line."));
    CHECK(e.value("demo_info", {{"user", nasty}, {"empty", ""}}) == 1.0);
}

TEST_CASE("probe: prometheus writer: invalid UTF-8 in a label value becomes U+FFFD, valid text is kept") {
    CHECK(prom::sanitize_utf8("ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK(prom::sanitize_utf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
    CHECK(prom::sanitize_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");          // overlong '/'
    CHECK(prom::sanitize_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");   // a surrogate
    CHECK(prom::sanitize_utf8("\xe2\x82") == "\xef\xbf\xbd\xef\xbf\xbd");          // truncated
    prom::text_writer w;
    w.family("x", metric_type::gauge, "h\xfe").sample({{"v", "bad \xff\xfe end"}}, 2);
    const auto e = prom_parse::parse(w.text());
    REQUIRE(e.error.empty());
    CHECK(e.value("x", {{"v", "bad \xef\xbf\xbd\xef\xbf\xbd end"}}) == 2.0);
}

TEST_CASE("probe: prometheus writer: values are written so that they read back exactly") {
    CHECK(prom::format_value(3) == "3");
    CHECK(prom::format_value(0) == "0");
    CHECK(prom::format_value(-2.5) == "-2.5");
    CHECK(prom::format_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(prom::format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(prom::format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    for (const double v : {0.1, 1e21, 123456789012345.0, 1.0 / 3, 18446744073709551615.0, 5e-324}) {
        const auto s = prom::format_value(v);
        CHECK(std::strtod(s.c_str(), nullptr) == v);   // (stod refuses subnormals)
    }
}

TEST_CASE("probe: prometheus writer: names, duplicates and misuse are refused") {
    CHECK(prom::valid_metric_name("btest_probe_tx_bytes"));
    CHECK(prom::valid_metric_name("ns:rule_total"));
    CHECK_FALSE(prom::valid_metric_name(""));
    CHECK_FALSE(prom::valid_metric_name("1abc"));
    CHECK_FALSE(prom::valid_metric_name("a-b"));
    CHECK(prom::valid_label_name("class"));
    CHECK_FALSE(prom::valid_label_name("__name__"));
    CHECK_FALSE(prom::valid_label_name("a:b"));
    CHECK_FALSE(prom::valid_label_name("9x"));

    prom::text_writer w;
    CHECK_THROWS_AS(w.sample(1), std::invalid_argument);   // no family yet
    CHECK_THROWS_AS(w.family("bad-name", metric_type::gauge, ""), std::invalid_argument);
    w.family("a_total", metric_type::counter, "A.").sample({{"k", "1"}}, 1);
    CHECK_THROWS_AS(w.sample({{"k", "1"}}, 2), std::invalid_argument);             // same series twice
    CHECK_THROWS_AS(w.sample({{"k", "1"}, {"k", "2"}}, 2), std::invalid_argument);  // label twice
    CHECK_THROWS_AS(w.sample({{"__x", "1"}}, 2), std::invalid_argument);
    CHECK_THROWS_AS(w.family("a_total", metric_type::counter, "again"), std::invalid_argument);
    w.family("h_seconds", metric_type::histogram, "H.");
    CHECK_THROWS_AS(w.sample(1), std::invalid_argument);
    prom::histogram h({1, 2});
    CHECK_THROWS_AS(w.histogram_sample({{{"le", "1"}}}, h.snapshot()), std::invalid_argument);
    CHECK_THROWS_AS(prom::histogram({2, 1}), std::invalid_argument);
    CHECK_THROWS_AS(prom::histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
    // What was written before the refusals is still a valid exposition.
    CHECK(prom_parse::parse(w.text()).error.empty());
}

TEST_CASE("probe: prometheus writer: histograms from several threads are cumulative and consistent") {
    prom::histogram h({0.5, 1, 5});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) h.observe(i % 4 == 0 ? 0.25 : i % 4 == 1 ? 0.75 : i % 4 == 2 ? 3 : 10);
        });
    for (auto& t : threads) t.join();
    prom::text_writer w;
    const std::array<prom::label, 1> labels{{{"module", "tcp"}}};
    w.family("run_seconds", metric_type::histogram, "Runs.").histogram_sample(labels, h.snapshot());
    const auto e = prom_parse::parse(w.text());
    INFO(w.text());
    REQUIRE(e.error.empty());
    CHECK(e.value("run_seconds_bucket", {{"module", "tcp"}, {"le", "0.5"}}) == 1000.0);
    CHECK(e.value("run_seconds_bucket", {{"module", "tcp"}, {"le", "1"}}) == 2000.0);
    CHECK(e.value("run_seconds_bucket", {{"module", "tcp"}, {"le", "5"}}) == 3000.0);
    CHECK(e.value("run_seconds_bucket", {{"module", "tcp"}, {"le", "+Inf"}}) == 4000.0);
    CHECK(e.value("run_seconds_count", {{"module", "tcp"}}) == 4000.0);
    CHECK(e.value("run_seconds_sum", {{"module", "tcp"}}) == Approx(4 * (250 * 0.25 + 250 * 0.75 + 250 * 3 + 250 * 10.0)));
}

TEST_CASE("probe: prometheus writer: process_* metrics are read from /proc and plausible") {
    const auto s = prom::read_process_stats();
    REQUIRE(s.cpu_seconds);
    REQUIRE(s.resident_bytes);
    REQUIRE(s.open_fds);
    REQUIRE(s.max_fds);
    REQUIRE(s.start_time_seconds);
    CHECK(*s.cpu_seconds >= 0);
    CHECK(*s.resident_bytes > 1024 * 1024);
    CHECK(*s.open_fds >= 3);
    CHECK(*s.max_fds >= *s.open_fds);
    // One more descriptor is seen as one more.
    const int fd = ::dup(0);
    REQUIRE(fd >= 0);
    CHECK(*prom::read_process_stats().open_fds == *s.open_fds + 1);
    ::close(fd);
    const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    CHECK(*s.start_time_seconds <= now + 2);
    CHECK(*s.start_time_seconds > now - 24 * 3600);
    prom::text_writer w;
    prom::write_process_metrics(w, s);
    const auto e = prom_parse::parse(w.text());
    REQUIRE(e.error.empty());
    CHECK(e.families.at("process_cpu_seconds_total").type == "counter");
    for (const char* n : {"process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"})
        CHECK(e.families.at(n).type == "gauge");
}

TEST_CASE("probe: prometheus parser (the test's own): it refuses what Prometheus refuses") {
    auto bad = [](const char* text) {
        const auto e = prom_parse::parse(text);
        INFO(text);
        CHECK_FALSE(e.error.empty());
    };
    bad("x{a=\"unterminated} 1\n");
    bad("x{a=\"bad \\t escape\"} 1\n");
    bad("x{a=b} 1\n");
    bad("x 1\n# TYPE x gauge\n");
    bad("# TYPE x gauge\n# TYPE x gauge\nx 1\n");
    bad("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n");
    bad("# TYPE x gauge\nx one\n");
    bad("# TYPE x gauge\nx 1");
    bad("# TYPE x gauge\nx 1\nx 2\n");
    bad("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n");
    bad("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n");
    bad("# TYPE h histogram\nh 1\n");
    bad("x{a=\"\xff\"} 1\n");
    CHECK(prom_parse::parse("# HELP x a\n# TYPE x gauge\nx{a=\"1\",} 1 1700000000000\n# some comment\n").error.empty());
}

TEST_CASE("probe: prometheus writer: promtool accepts a full exposition") {
    if (!promtool::available()) {
        WARN("SKIPPED: promtool not found (Debian package 'prometheus'); the strict parser tests still ran");
        return;
    }
    prom::text_writer w;
    w.family("demo_requests_total", metric_type::counter, "Requests by code \"quoted\" \\ and\nmore.")
        .sample({{"code", "200"}, {"path", "/a\"b\\c\nd"}}, 10)
        .sample({{"code", "500"}, {"path", "/x"}}, 0);
    w.single("demo_temperature_celsius", metric_type::gauge, "A gauge.", -3.5);
    prom::histogram h({0.1, 1, 10});
    h.observe(0.05);
    h.observe(3);
    w.family("demo_latency_seconds", metric_type::histogram, "A histogram.").histogram_sample(h.snapshot());
    prom::write_process_metrics(w);
    const auto r = promtool::check(w.text());
    INFO(w.text() << "\npromtool said: " << r.output);
    CHECK(r.status == 0);
}
