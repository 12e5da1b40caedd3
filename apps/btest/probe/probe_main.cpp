// `btest probe`: options (CLI11), the config file, the HTTP endpoints, signals.
#include "probe/probe_main.hpp"

#include <csignal>
#include <cstdio>
#include <string>

#include <pthread.h>

#include <CLI/CLI.hpp>

#include "btest/version.hpp"
#include "common/http_server.hpp"
#include "common/prometheus.hpp"
#include "probe/config.hpp"
#include "probe/service.hpp"

namespace btest_probe {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_usage = 1;
constexpr int exit_failure = 2;

const char* const footer = R"(
endpoints
  GET /probe?target=TARGET[&module=NAME]
      runs one test against TARGET with the module's parameters and answers with its
      results in the Prometheus text format (probe_success, probe_duration_seconds,
      btest_probe_* metrics; see the README). TARGET is HOST, HOST:PORT, IPv6 or
      [IPv6]:PORT; the port defaults to 2000. module may be left out when the config
      has one module, or one named "default". Other parameters are refused: the user
      and password come from the config file only.
      400 malformed request, 403 target outside the allow-list, 503 busy (see
      --max-concurrent). A test that fails is still 200, with probe_success 0 and
      btest_probe_error{class="..."}.
  GET /metrics   the exporter's own counters and process_* metrics
  GET /          a short page linking both

time
  A probe never outlives the scrape: it has X-Prometheus-Scrape-Timeout-Seconds minus
  --timeout-offset (without the header: the module's duration + connect_timeout + 5 s).
  The module's duration is shortened when it does not fit with 1 s for connecting and
  the handshake; what still runs at the end is stopped.

concurrency
  At most --max-concurrent tests run at once (two tests against one router falsify each
  other). A further request waits, in order, in a queue of at most --max-queued, but only
  while its whole test still fits its scrape timeout; otherwise it gets 503, which
  Prometheus records as a failed scrape (up 0), not as a failed target.

config file (TOML)
  [allow]
  targets = ["192.0.2.0/24", "2001:db8::/32", "router1.example.net"]
  [modules.tcp_rx]
  protocol = "tcp"            # tcp | udp                                (default tcp)
  direction = "receive"       # receive | transmit | both, seen from the probe
  duration = "5s"             # 100ms..1h                                (default 5s)
  bandwidth = "0"             # cap per direction, bit/s, K/M/G; 0 = unlimited
  connection_count = 1        # TCP connections or UDP streams, 1..255   (default 1)
  # tx_size = 1500            # UDP datagram size (28..64000) / TCP chunk size
  # random_data = false       # random payload instead of zeros
  # user = "probe"            # when the target asks for MD5 or EC-SRP5
  # password = "secret"
  # connect_timeout = "3s"    # a target that does not answer fails after this
  # family = "any"            # any | ipv4 | ipv6: which resolved address to test

  A target is allowed when it is an address inside a listed network or address, or a
  host name listed as such. Any other name must resolve to allowed addresses only; the
  test then connects to the checked address itself, never looking the name up again.

exit status: 0 stopped by SIGINT/SIGTERM (or --check-config found no error),
             1 usage or config error, 2 cannot listen
)";

} // namespace

int probe_main(int argc, char** argv) {
    CLI::App app{"btest probe: a Prometheus exporter that runs one bandwidth test per scrape (blackbox-exporter "
                 "style: /probe?target=HOST&module=NAME).",
                 "btest probe"};
    app.footer(footer);
    app.get_formatter()->column_width(34);
    std::string listen = "127.0.0.1:9469";
    std::string config_path = "/etc/btest/probe.toml";
    service_options so;
    std::size_t max_concurrent = so.max_concurrent;
    std::size_t max_queued = so.max_queued;
    double timeout_offset = 0.5;
    bool check_only = false;
    bool quiet = false;
    app.add_option("--http", listen, "address and port to serve HTTP on ([::]:PORT or :PORT: every address)")
        ->type_name("ADDR:PORT")
        ->capture_default_str();
    app.add_option("-c,--config", config_path, "TOML file with the allow-list and the modules")
        ->type_name("FILE")
        ->capture_default_str();
    app.add_option("--max-concurrent", max_concurrent, "tests at once, 1..64")
        ->type_name("N")
        ->check(CLI::Range(1, 64).description(""))
        ->capture_default_str();
    app.add_option("--max-queued", max_queued, "probe requests that may wait for a free slot, 0..256")
        ->type_name("N")
        ->check(CLI::Range(0, 256).description(""))
        ->capture_default_str();
    app.add_option("--timeout-offset", timeout_offset, "seconds subtracted from Prometheus's scrape timeout, 0..10")
        ->type_name("SECONDS")
        ->check(CLI::Range(0.0, 10.0).description(""))
        ->capture_default_str();
    app.add_flag("--check-config", check_only, "load and validate the config file, then exit");
    app.add_flag("-q,--quiet", quiet, "no log line per probe on stderr");
    app.set_version_flag("-V,--version", std::string("btest ") + btest::version_string + " (btestkit)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? exit_ok : exit_usage;
    }

    std::string host;
    std::uint16_t port = 0;
    if (!btest_app::http::split_listen(listen, host, port, /*allow_port_0=*/true)) {
        std::fprintf(stderr, "btest probe: --http: expected ADDR:PORT, [IPv6]:PORT or :PORT, got '%s'\n", listen.c_str());
        return exit_usage;
    }
    probe_config cfg;
    try {
        cfg = load_config(config_path);
    } catch (const config_error& e) {
        std::fprintf(stderr, "btest probe: %s\n", e.what());
        return exit_usage;
    }
    if (check_only) {
        std::printf("%s: %zu allow-list entries, %zu modules\n", config_path.c_str(), cfg.allow.size(), cfg.modules.size());
        return exit_ok;
    }

    // SIGINT/SIGTERM are taken by sigwait() below; every thread started from here on inherits
    // the blocked mask, so none of them is interrupted.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    so.max_concurrent = max_concurrent;
    so.max_queued = max_queued;
    so.timeout_offset = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_offset * 1000));
    service svc(std::move(cfg), so);
    if (!quiet) svc.log = [](const std::string& line) { std::fprintf(stderr, "btest probe: %s\n", line.c_str()); };

    btest_app::http::server_options ho;
    ho.host = host;
    ho.port = port;
    // Running and waiting probes each hold a worker; two more keep /metrics answering.
    ho.threads = max_concurrent + max_queued + 2;
    ho.max_connections = ho.threads + 32;
    btest_app::http::server http(ho);
    install_routes(http, svc);
    std::string error;
    if (!http.start(error)) {
        std::fprintf(stderr, "btest probe: %s\n", error.c_str());
        return exit_failure;
    }
    std::fprintf(stderr, "btest probe: listening on %s port %u (config %s)\n", host.c_str(), unsigned{http.port()},
                 config_path.c_str());
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "btest probe: stopping\n");
    svc.shutdown();
    http.stop();
    return exit_ok;
}

void install_routes(btest_app::http::server& http, service& svc) {
    http.get("/probe", [&svc](const httplib::Request& req, httplib::Response& res) {
        std::vector<std::pair<std::string, std::string>> params(req.params.begin(), req.params.end());
        std::optional<std::string> timeout;
        if (req.has_header("X-Prometheus-Scrape-Timeout-Seconds")) timeout = req.get_header_value("X-Prometheus-Scrape-Timeout-Seconds");
        auto a = svc.probe(params, timeout, btest_app::http::request_arrival());
        res.status = a.status;
        res.set_content(std::move(a.body), a.content_type.c_str());
    });
    http.get("/metrics", [&svc, &http](const httplib::Request&, httplib::Response& res) {
        res.set_content(svc.metrics(http.counters()), btest_app::prom::content_type);
    });
    http.get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("<!doctype html><title>btest probe</title><h1>btest probe</h1>"
                        "<p><a href=\"/metrics\">/metrics</a> — the exporter's own metrics</p>"
                        "<p>/probe?target=HOST&amp;module=NAME — one bandwidth test</p>\n",
                        "text/html; charset=utf-8");
    });
}

} // namespace btest_probe
