#include "probe/service.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <botan/system_rng.h>

#include "btest/auth/botan_entropy.hpp"
#include "btest/core/error.hpp"
#include "btest/version.hpp"
#include "common/process_metrics.hpp"
#include "probe/target.hpp"

namespace btest_probe {

namespace {

using clock = std::chrono::steady_clock;
using btest_app::prom::metric_type;
namespace prom = btest_app::prom;

double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

http_answer text(int status, std::string body) {
    if (!body.empty() && body.back() != '\n') body += '\n';
    return {status, "text/plain; charset=utf-8", std::move(body)};
}

/// The error class of a session that ended badly (PROTOCOL §13.16 codes, named as the CLI's
/// JSON `error_code`).
std::string error_class_of(const std::error_code& ec) {
    if (ec.category() != btest::error_category()) return "transport_error";
    switch (static_cast<btest::errc>(ec.value())) {
    case btest::errc::not_a_btest_server: return "not_a_btest_server";
    case btest::errc::auth_required: return "auth_required";
    case btest::errc::auth_failed:
    case btest::errc::bad_server_key: return "auth_failed";
    case btest::errc::auth_unsupported_method: return "auth_unsupported";
    case btest::errc::handshake_timeout: return "handshake_timeout";
    case btest::errc::peer_silent: return "peer_silent";
    case btest::errc::peer_closed: return "peer_closed";
    case btest::errc::port_unavailable: return "port_unavailable";
    case btest::errc::resource_limit: return "resource_limit";
    case btest::errc::max_duration: return "timeout";
    case btest::errc::transport_error: return "transport_error";
    default: return "protocol_error";
    }
}

const char* auth_name(auth_kind a) {
    switch (a) {
    case auth_kind::md5: return "md5";
    case auth_kind::ecsrp5: return "ecsrp5";
    default: return "none";
    }
}

/// The module a request names (or the default one); nullptr with `error` set otherwise.
const module_config* pick_module(const probe_config& cfg, const std::optional<std::string>& name, std::string& error) {
    if (name) {
        const auto it = cfg.modules.find(*name);
        if (it != cfg.modules.end()) return &it->second;
        std::string shown;
        for (const char c : name->substr(0, 64)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
        error = "unknown module '" + shown + "'";
    } else if (cfg.modules.size() == 1) {
        return &cfg.modules.begin()->second;
    } else if (const auto it = cfg.modules.find("default"); it != cfg.modules.end()) {
        return &it->second;
    } else {
        error = "module= is required (the config defines several modules and none named 'default')";
    }
    std::string names;
    for (const auto& [n, m] : cfg.modules) names += (names.empty() ? "" : ", ") + n;
    error += "; modules: " + names;
    return nullptr;
}

} // namespace

// ---- the /probe body ----------------------------------------------------------------------

std::string render_probe(const probe_outcome& o) {
    prom::text_writer w;
    w.single("probe_success", metric_type::gauge, "Whether the bandwidth test ran to its end (1) or failed (0).",
             o.success ? 1 : 0);
    w.single("probe_duration_seconds", metric_type::gauge,
             "How long the probe took: name resolution, connection, handshake, test and close.", o.duration_seconds);
    if (o.auth) {
        w.family("btest_probe_info", metric_type::gauge,
                 "The test that was asked for and the authentication the server asked for (none, md5, ecsrp5).")
            .sample({{"auth", auth_name(*o.auth)}, {"protocol", to_string(o.proto)}, {"direction", to_string(o.dir)}}, 1);
    }
    if (o.summary) {
        const auto& s = *o.summary;
        w.single("btest_probe_test_duration_seconds", metric_type::gauge,
                 "Length of the test itself (shorter than the module's duration when the scrape timeout capped it "
                 "or the test was cut short).",
                 std::chrono::duration<double>(s.elapsed).count());
        w.single("btest_probe_planned_test_duration_seconds", metric_type::gauge,
                 "The test duration the probe asked for: the module's, or less when the scrape timeout did not leave room.",
                 o.planned_test_seconds);
        const bool udp = o.proto == btest::protocol::udp;
        if (s.tx.active) {
            w.single("btest_probe_tx_bits_per_second", metric_type::gauge,
                     "Average rate the probe sent to the target over the whole test (upload, direction=transmit).",
                     static_cast<double>(s.tx.average_bps));
            w.single("btest_probe_tx_bits_per_second_10s", metric_type::gauge,
                     "RouterOS's 10-second average of the rate the probe sent (the last 10 s of the test).",
                     static_cast<double>(s.tx.average10_bps));
            w.single("btest_probe_tx_bytes", metric_type::gauge,
                     "Bytes the probe sent to the target during the test (UDP: IP and UDP headers included).",
                     static_cast<double>(s.tx.bytes));
        }
        if (s.rx.active) {
            w.single("btest_probe_rx_bits_per_second", metric_type::gauge,
                     "Average rate the probe received from the target over the whole test (download, direction=receive).",
                     static_cast<double>(s.rx.average_bps));
            w.single("btest_probe_rx_bits_per_second_10s", metric_type::gauge,
                     "RouterOS's 10-second average of the rate the probe received (the last 10 s of the test).",
                     static_cast<double>(s.rx.average10_bps));
            w.single("btest_probe_rx_bytes", metric_type::gauge,
                     "Bytes the probe received from the target during the test (UDP: IP and UDP headers included).",
                     static_cast<double>(s.rx.bytes));
            if (udp) {
                w.single("btest_probe_lost_packets", metric_type::gauge,
                         "UDP datagrams from the target that never arrived (gaps in the sequence numbers).",
                         static_cast<double>(s.rx.lost_packets));
                w.single("btest_probe_jitter_seconds", metric_type::gauge,
                         "Interarrival jitter of the UDP datagrams from the target (RFC 3550 estimate) at the end of the test.",
                         s.rx.jitter_ms / 1000.0);
            }
        }
        if (s.local_cpu)
            w.single("btest_probe_local_cpu_ratio", metric_type::gauge, "CPU load of the probe's host during the test, 0..1.",
                     *s.local_cpu / 100.0);
        if (s.remote_cpu)
            w.single("btest_probe_remote_cpu_ratio", metric_type::gauge,
                     "CPU load the target reported in its status messages, 0..1.", *s.remote_cpu / 100.0);
    }
    if (!o.success && !o.error_class.empty()) {
        w.family("btest_probe_error", metric_type::gauge, "Why the probe failed (1 for the class that applies).")
            .sample({{"class", o.error_class}}, 1);
    }
    return w.take();
}

// ---- service ------------------------------------------------------------------------------

service::service(probe_config cfg, service_options opt) : cfg_(std::move(cfg)), opt_(opt) {
    opt_.max_concurrent = std::max<std::size_t>(opt_.max_concurrent, 1);
}

bool service::acquire(clock::time_point wait_until) {
    std::unique_lock lock(slots_m_);
    if (stopping_) return false;
    if (running_ < opt_.max_concurrent && queue_.empty()) {
        ++running_;
        return true;
    }
    if (queue_.size() >= opt_.max_queued || wait_until <= clock::now()) return false;
    const auto ticket = next_ticket_++;
    queue_.push_back(ticket);
    const bool got = slots_cv_.wait_until(lock, wait_until, [&] {
        return stopping_ || (running_ < opt_.max_concurrent && queue_.front() == ticket);
    });
    queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
    slots_cv_.notify_all();   // the next in line may be at the front now
    if (!got || stopping_) return false;
    ++running_;
    return true;
}

void service::release() {
    {
        std::lock_guard lock(slots_m_);
        --running_;
    }
    slots_cv_.notify_all();
}

void service::shutdown() {
    {
        std::lock_guard lock(slots_m_);
        stopping_ = true;
    }
    slots_cv_.notify_all();
}

void service::count_refusal(const char* reason) {
    std::lock_guard lock(stats_m_);
    ++refused_[reason];
}

http_answer service::probe(const std::vector<std::pair<std::string, std::string>>& params,
                           const std::optional<std::string>& scrape_timeout, clock::time_point arrived) {
    const auto start = std::min(arrived, clock::now());
    auto bad = [&](std::string why) {
        count_refusal("bad_request");
        if (log) log("probe refused (400): " + why);
        return text(400, std::move(why));
    };

    // ---- the request
    std::optional<std::string> target_text, module_name;
    for (const auto& [k, v] : params) {
        if (k == "target" || k == "module") {
            auto& slot = k == "target" ? target_text : module_name;
            if (slot) return bad("parameter '" + k + "' given twice");
            slot = v;
        } else if (k == "user" || k == "password" || k == "authuser" || k == "authpass") {
            return bad("credentials are not accepted in the URL: set user and password in the module of the config file");
        } else {
            std::string shown;
            for (const char c : k.substr(0, 32)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
            return bad("unknown parameter '" + shown + "' (use target= and module=)");
        }
    }
    if (!target_text) return bad("target= is required (HOST, HOST:PORT or [IPv6]:PORT)");
    std::string error;
    const auto tgt = parse_target(*target_text, error);
    if (!tgt) return bad(error);
    const module_config* mod = pick_module(cfg_, module_name, error);
    if (!mod) return bad(error);

    // ---- the time budget
    std::chrono::milliseconds budget;
    if (scrape_timeout) {
        double t = 0;
        std::size_t used = 0;
        try {
            t = std::stod(*scrape_timeout, &used);
        } catch (...) {
            used = 0;
        }
        if (used == 0 || used != scrape_timeout->size() || !std::isfinite(t) || t <= 0 || t > 86400)
            return bad("X-Prometheus-Scrape-Timeout-Seconds is not a positive number of seconds");
        const auto total = std::chrono::milliseconds(static_cast<std::int64_t>(t * 1000));
        // The offset leaves time for the answer to travel; a timeout too short for it keeps half.
        budget = total > 2 * opt_.timeout_offset ? total - opt_.timeout_offset : total / 2;
    } else {
        // Run by hand (curl): the whole test, with room to connect and say hello.
        budget = mod->duration + mod->connect_timeout + std::chrono::seconds(5);
    }
    const auto budget_end = start + budget;

    // ---- the allow-list (and the address the test will use)
    auto forbidden = [&](std::string why) {
        count_refusal("forbidden");
        if (log) log("probe refused (403): " + why);
        return text(403, std::move(why));
    };
    probe_outcome out;
    out.module = mod->name;
    out.proto = mod->proto;
    out.dir = mod->dir;
    auto finish = [&](probe_outcome& o) {
        o.duration_seconds = seconds(clock::now() - start);
        durations_.observe(o.duration_seconds);
        {
            std::lock_guard lock(stats_m_);
            ++probes_[{o.module, o.success}];
            if (!o.success) ++errors_[o.error_class];
        }
        if (log) {
            char buf[96];
            std::snprintf(buf, sizeof buf, " duration=%.3fs", o.duration_seconds);
            log("probe target=" + tgt->host + ":" + std::to_string(tgt->port) + " module=" + o.module +
                " success=" + (o.success ? "1" : "0") + buf + (o.success ? "" : " error=" + o.error_class) +
                (o.error_detail.empty() ? "" : " (" + o.error_detail + ")"));
        }
        return http_answer{200, prom::content_type, render_probe(o)};
    };

    std::optional<address> addr;
    if (tgt->literal) {
        if (!address_allowed(cfg_.allow, *tgt->literal)) return forbidden("target " + tgt->host + " is not in the allow-list");
        addr = tgt->literal;
    } else {
        const bool listed = host_listed(cfg_.allow, tgt->host);
        const auto res = resolve(tgt->host, std::min<std::chrono::milliseconds>(budget / 2, std::chrono::seconds(5)));
        if (res.addresses.empty()) {
            out.error_class = res.timed_out ? "timeout" : "resolve_failed";
            out.error_detail = "cannot resolve " + tgt->host + ": " + res.error;
            return finish(out);
        }
        if (!listed)
            for (const auto& a : res.addresses)
                if (!address_allowed(cfg_.allow, a))
                    return forbidden("target " + tgt->host + " resolves to " + a.to_string() + ", which is not in the allow-list");
        for (const auto& a : res.addresses) {
            if ((mod->family == address_family::ipv4 && !a.is_v4()) || (mod->family == address_family::ipv6 && !a.is_v6())) continue;
            addr = a;
            break;
        }
        if (!addr) {
            out.error_class = "resolve_failed";
            out.error_detail = tgt->host + " has no " + (mod->family == address_family::ipv4 ? "IPv4" : "IPv6") + " address";
            return finish(out);
        }
    }

    // ---- plan the test within the budget, then wait for a slot while the plan still fits
    const auto now = clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(budget_end - now);
    if (left < std::chrono::milliseconds(200)) {   // the request waited for a worker until too late
        count_refusal("busy");
        if (log) log("probe refused (503): the scrape timeout ran out before the probe could start");
        return text(503, "busy: the scrape timeout ran out before the probe could start");
    }
    // Room to connect and complete the handshake before the test's own clock starts.
    const auto reserve = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), left / 4);
    const auto planned = std::max<std::chrono::milliseconds>(std::min(mod->duration, left - reserve), std::chrono::milliseconds(1));
    const auto slack = left - reserve - planned;
    if (!acquire(now + std::max(slack, std::chrono::milliseconds(0)))) {
        count_refusal("busy");
        if (log) log("probe refused (503): " + std::to_string(opt_.max_concurrent) + " test(s) running");
        return text(503, "busy: " + std::to_string(opt_.max_concurrent) +
                             " test(s) already running (--max-concurrent); the test would not have fitted the scrape timeout");
    }
    struct releaser {
        service& s;
        ~releaser() { s.release(); }
    } releasing{*this};

    // ---- run it
    client_run_options ro;
    ro.address = *addr;
    ro.port = tgt->port;
    auto& c = ro.session;
    c.proto = mod->proto;
    c.dir = mod->dir;
    c.connection_count = mod->connection_count;
    if (mod->tx_size) {
        c.tx_size = *mod->tx_size;
        if (mod->proto == btest::protocol::udp) c.local_udp_tx_size = *mod->tx_size;
    }
    c.local_tx_speed = c.remote_tx_speed = mod->bandwidth;
    c.random_data = mod->random_data;
    c.user = mod->user;
    c.password = mod->password;
    c.test_duration = std::chrono::duration_cast<btest::duration>(planned);
    const auto left_now = std::chrono::duration_cast<std::chrono::milliseconds>(budget_end - clock::now());
    c.limits.handshake = std::min<btest::duration>(c.limits.handshake, std::max(left_now, std::chrono::milliseconds(1)));
    ro.connect_timeout = std::max(std::min(mod->connect_timeout, left_now), std::chrono::milliseconds(1));
    ro.deadline = budget_end - stop_grace;
    ro.cancel = &stopping_;
    out.planned_test_seconds = std::chrono::duration<double>(planned).count();

    Botan::System_RNG system_rng;
    btest::auth::botan_entropy rng(system_rng);
    const auto r = run_client_test(ro, rng);

    out.auth = r.auth;
    if (!r.connected) {
        out.error_class = (r.deadline_hit || r.connect_error == std::errc::timed_out) ? "timeout"
                          : stopping_                                                  ? "stopped"
                                                                                       : "connect_failed";
        out.error_detail = r.connect_detail + (r.connect_error ? ": " + r.connect_error.message() : "");
        return finish(out);
    }
    const auto& sum = *r.summary;
    if (sum.started) out.summary = sum;
    const auto reason = sum.reason.value_or(btest::end_reason::failure);
    if (r.deadline_hit) {
        out.error_class = "timeout";
        out.error_detail = "stopped at the end of the scrape timeout";
    } else if (stopping_ && reason != btest::end_reason::completed) {
        out.error_class = "stopped";
    } else if (reason == btest::end_reason::completed) {
        out.success = true;
    } else if (reason == btest::end_reason::peer_closed) {
        out.error_class = "peer_closed";
        out.error_detail = sum.started ? "test cut short by the target" : "closed during the handshake";
    } else if (sum.error) {
        out.error_class = error_class_of(sum.error);
        out.error_detail = sum.error.message();
        if (!sum.started && r.control_bytes_received == 0 &&
            (sum.error == btest::errc::peer_closed || sum.error == btest::errc::not_a_btest_server))
            out.error_detail = "closed without a greeting (server busy: max sessions reached?)";
    } else {
        out.error_class = "stopped";
    }
    return finish(out);
}

std::string service::metrics(const btest_app::http::server_counters& http) const {
    prom::text_writer w;
    w.family("btest_probe_build_info", metric_type::gauge, "The btest probe's version.")
        .sample({{"version", btest::version_string}}, 1);
    {
        std::lock_guard lock(stats_m_);
        w.family("btest_probe_probes_total", metric_type::counter, "Probes run, by module and result.");
        for (const auto& [key, n] : probes_)
            w.sample({{"module", key.first}, {"result", key.second ? "success" : "failure"}}, static_cast<double>(n));
        w.family("btest_probe_errors_total", metric_type::counter, "Failed probes by error class.");
        for (const auto& [cls, n] : errors_) w.sample({{"class", cls}}, static_cast<double>(n));
        w.family("btest_probe_refused_total", metric_type::counter,
                 "Probe requests answered without a test: bad_request (400), forbidden (403), busy (503).");
        for (const char* r : {"bad_request", "forbidden", "busy"}) {
            const auto it = refused_.find(r);
            w.sample({{"reason", r}}, it == refused_.end() ? 0.0 : static_cast<double>(it->second));
        }
    }
    {
        std::lock_guard lock(slots_m_);
        w.single("btest_probe_running", metric_type::gauge, "Tests running now.", static_cast<double>(running_));
        w.single("btest_probe_queued", metric_type::gauge, "Probe requests waiting for a free test slot.",
                 static_cast<double>(queue_.size()));
    }
    w.single("btest_probe_max_concurrent", metric_type::gauge, "Tests allowed at once (--max-concurrent).",
             static_cast<double>(opt_.max_concurrent));
    w.family("btest_probe_run_duration_seconds", metric_type::histogram, "Duration of the probes run.")
        .histogram_sample(durations_.snapshot());
    w.single("btest_probe_http_connections_total", metric_type::counter, "HTTP connections accepted.",
             static_cast<double>(http.accepted));
    w.family("btest_probe_http_refused_total", metric_type::counter,
             "HTTP connections closed without serving: busy (503), timeout (408), too_large (431/413), bad_request (400).")
        .sample({{"reason", "busy"}}, static_cast<double>(http.refused_busy))
        .sample({{"reason", "timeout"}}, static_cast<double>(http.timed_out))
        .sample({{"reason", "too_large"}}, static_cast<double>(http.too_large))
        .sample({{"reason", "bad_request"}}, static_cast<double>(http.bad_request));
    prom::write_process_metrics(w);
    return w.take();
}

} // namespace btest_probe
