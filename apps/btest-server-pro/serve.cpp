// `btest-server-pro serve`: the shared server (btest::asio::server, the same as btest -s) with
// the database's accounts (db_credentials), and an admission hook that asks the ledger for
// every authenticated test: its byte budget comes from a lease on the user's and the IP's
// quotas, budget refills extend the lease, usage is recorded while the test runs and the test
// is written to the history (with its per-interval rates) when it ends.
#include "serve.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <botan/system_rng.h>
#include <fmt/core.h>

#include "btest/auth/botan_entropy.hpp"
#include "btest/pro/byte_size.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/db_credentials.hpp"
#include "btest/pro/pg.hpp"
#include "btest/pro/service.hpp"
#include "btest/server/address_filter.hpp"
#include "btest/transport/asio/server.hpp"
#include "btest_cli/server_setup.hpp"
#include "commands.hpp"
#include "http_api.hpp"
#include "monitor.hpp"

namespace pro_serve {

namespace bta = btest::asio;
namespace pro = btest::pro;
using btest_cli::usage_error;

namespace {

constexpr const char* windows[3] = {"daily", "weekly", "monthly"};
constexpr const char* dirs[3] = {"in", "out", ""};

/// Log lines: session lines on stdout, problems on stderr; one at a time across threads.
class logger {
public:
    explicit logger(const serve_args& a) : quiet_(a.quiet), verbose_(a.verbose) {}
    void info(const std::string& line) {
        if (quiet_) return;
        put(stdout, line);
    }
    void detail(const std::string& line) {
        if (verbose_ > 0 && !quiet_) put(stdout, line);
    }
    void problem(const std::string& line) { put(stderr, "btest-server-pro: " + line); }

private:
    void put(std::FILE* f, const std::string& line) {
        std::lock_guard lk(m_);
        std::fputs(line.c_str(), f);
        std::fputc('\n', f);
        std::fflush(f);
    }
    std::mutex m_;
    bool quiet_;
    int verbose_;
};

std::string tag(std::uint64_t id, const btest::endpoint& peer) {
    return fmt::format("[#{:3}] {} ", id, bta::to_string(peer));
}

const char* name(btest::protocol p) { return p == btest::protocol::udp ? "udp" : "tcp"; }
const char* name(btest::direction d) {
    return d == btest::direction::transmit ? "transmit" : d == btest::direction::receive ? "receive" : "both";
}

/// The ledger's allowances (cumulative, per direction from the server: in/out/total) as the
/// kit's byte budget (what may still move: tx = out, rx = in).
btest::byte_budget to_kit(const pro::byte_budget& b) { return {b.out, b.in, b.total}; }

/// What an allowance grew by (only where both are limited).
std::optional<std::uint64_t> grown(const std::optional<std::uint64_t>& before, const std::optional<std::uint64_t>& after) {
    if (!before || !after || *after <= *before) return before && after ? std::optional<std::uint64_t>(0) : std::nullopt;
    return *after - *before;
}

/// The server's side of the database: admission and budgets from the ledger, the history of
/// every admitted test, log lines.
class pro_server final : public bta::server_observer, public bta::admission_hook {
public:
    pro_server(pro::service& svc, logger& log, monitor& mon, std::uint64_t slice, const char* auth_method)
        : svc_(svc), log_(log), mon_(mon), slice_(slice), auth_method_(auth_method) {}

    // ---- admission (io threads; the ledger answers on its workers) -------------------------

    void admit(const bta::admission_query& q, bta::test_control ctl) override {
        const auto& cmd = q.command;
        pro::test_request req;
        req.user = q.user;
        req.peer_ip = q.peer.address;
        req.peer_port = q.peer.port;
        req.protocol = name(cmd.proto);
        req.direction = name(cmd.dir);
        req.connections = cmd.connections();
        req.tx_speed_requested = cmd.remote_tx_speed;
        req.rx_speed_requested = cmd.local_tx_speed;
        req.server_sends = btest::server_sends(cmd.dir);
        req.server_receives = btest::client_sends(cmd.dir);
        req.min_grant = cmd.proto == btest::protocol::udp ? cmd.tx_size : cmd.tcp_chunk();
        mon_.seen(q.test_id);  // without authentication, the command is the first we see of a test
        if (!svc_.database_available()) {
            mon_.refused(refusal_cause::quota_unavailable);
            log_.problem(tag(q.test_id, q.peer) + "refused: the database is unreachable (quota_unavailable)");
            ctl.admit({.admit = false, .refusal = make_error_code(btest::errc::quota_unavailable)});
            svc_.record_refused(req, "quota_unavailable");
            return;
        }
        const auto id = q.test_id;
        const auto peer = q.peer;
        live_test view;
        view.peer_ip = q.peer.address.to_string();
        view.peer_port = q.peer.port;
        view.peer = pro::format_endpoint(q.peer.address, q.peer.port);
        view.user = q.user;
        view.protocol = req.protocol;
        view.direction = req.direction;
        view.connections = req.connections;
        svc_.open_test(
            req,
            [this, id, peer, ctl, view = std::move(view)](pro::async_result<pro::open_result> r) mutable {
                if (!r) {
                    mon_.refused(refusal_cause::quota_unavailable);
                    log_.problem(tag(id, peer) + "refused: quota store: " + r.error->message);
                    ctl.admit({.admit = false, .refusal = make_error_code(btest::errc::quota_unavailable)});
                    return;
                }
                if (!r.value->admitted) {
                    mon_.refused(refusal_cause::quota);
                    log_.info(tag(id, peer) + "refused: quota exhausted (" + r.value->detail + ")");
                    ctl.admit({.admit = false, .refusal = make_error_code(btest::errc::quota_exhausted)});
                    return;
                }
                {
                    std::lock_guard lk(m_);
                    auto& t = tests_[id];
                    t.session_id = r.value->session_id;
                    t.allowed = r.value->budget;
                    t.ctl = ctl;
                    by_session_[t.session_id] = id;
                }
                view.session_id = r.value->session_id;
                view.start = pro::utc_now();
                mon_.admitted(id, std::move(view));
                // Below one slice left, ask for the next: the ledger holds up to two per direction,
                // so the refill arrives while the test still has a slice to spend.
                ctl.admit({.admit = true, .budget = to_kit(r.value->budget), .refill_below = slice_});
            },
            [this](std::int64_t session_id) { lease_lost(session_id); });
    }

    void refill(std::uint64_t test_id, const btest::byte_budget&, const btest::test_summary& so_far,
                bta::test_control ctl) override {
        std::int64_t session_id = 0;
        {
            std::lock_guard lk(m_);
            auto it = tests_.find(test_id);
            if (it == tests_.end()) return;
            session_id = it->second.session_id;
        }
        svc_.extend(session_id, pro::usage_counts{so_far.rx.bytes, so_far.tx.bytes},
                    [this, test_id, ctl](pro::async_result<pro::extend_result> r) {
                        if (!r) {  // spend what is left, then end as quota_unavailable
                            ctl.add_budget({}, btest::budget_end::quota_unavailable);
                            return;
                        }
                        if (!r.value->lease_alive) {
                            ctl.end(btest::end_reason::quota_unavailable);
                            return;
                        }
                        btest::byte_budget more;
                        {
                            std::lock_guard lk(m_);
                            auto it = tests_.find(test_id);
                            if (it == tests_.end()) return;
                            auto& a = it->second.allowed;
                            more = {grown(a.out, r.value->budget.out), grown(a.in, r.value->budget.in),
                                    grown(a.total, r.value->budget.total)};
                            a = r.value->budget;
                        }
                        ctl.add_budget(more);
                    });
    }

    // ---- what the server tells us (io threads, one call at a time) -------------------------

    void on_listening(const btest::endpoint& at) override { log_.info("btest-server-pro listening on " + bta::to_string(at)); }
    void on_listen_skipped(const btest::endpoint& at, const std::error_code& ec) override {
        log_.info("btest-server-pro: not listening on " + bta::to_string(at) + ": " + ec.message());
    }
    void on_refused(const btest::endpoint& peer, btest::refusal why) override {
        switch (why) {
        case btest::refusal::max_sessions: mon_.refused(refusal_cause::max_sessions); break;
        case btest::refusal::connections_per_ip: mon_.refused(refusal_cause::per_ip); break;
        case btest::refusal::auth_failures: mon_.refused(refusal_cause::throttle); break;
        case btest::refusal::address_denied: mon_.refused(refusal_cause::deny_list); break;
        }
        // A full server or a denied address is news; per-address limits (a scan trips them
        // thousands of times) are detail.
        const auto line = fmt::format("[   -] {} refused: {}", bta::to_string(peer), btest::to_string(why));
        if (why == btest::refusal::max_sessions || why == btest::refusal::address_denied) log_.info(line);
        else log_.detail(line);
    }
    void on_dropped(const bta::connection_view& c, const std::error_code& why) override {
        mon_.forget(c.id);
        log_.detail(tag(c.id, c.peer) + "closed before a test: " + why.message());
    }

    void on_event(const bta::server_test_view& t, const btest::event& ev) override {
        if (auto* s = std::get_if<btest::test_started>(&ev)) {
            mon_.started(t.id);
            log_.info(tag(t.id, t.peer) + fmt::format("test started: {} {}, {} {}{}", name(s->proto), name(s->dir),
                                                      s->connections, s->proto == btest::protocol::udp ? "stream(s)" : "connection(s)",
                                                      s->user.empty() ? "" : ", user " + s->user));
        } else if (auto* a = std::get_if<btest::auth_result>(&ev)) {
            if (a->ok) mon_.seen(t.id);  // (a failed login has no handshake to time)
            mon_.auth(auth_method_, a->ok);
            if (!a->ok) log_.info(tag(t.id, t.peer) + "authentication failed for user \"" + printable(a->user) + "\"");
            else log_.detail(tag(t.id, t.peer) + "authentication succeeded for user \"" + printable(a->user) + "\"");
        } else if (auto* r = std::get_if<btest::interval_report>(&ev)) {
            std::int64_t session_id = 0;
            const pro::interval_row row{std::chrono::duration_cast<std::chrono::milliseconds>(r->start).count(),
                                        std::chrono::duration_cast<std::chrono::milliseconds>(r->end).count(),
                                        r->tx.bytes, r->rx.bytes, r->tx.bits_per_second, r->rx.bits_per_second,
                                        r->rx.lost_packets};
            {
                std::lock_guard lk(m_);
                auto it = tests_.find(t.id);
                if (it == tests_.end()) return;
                session_id = it->second.session_id;
                it->second.intervals.push_back(row);
            }
            mon_.interval(t.id, row);
            const auto sum = t.session.summary();
            svc_.record_usage(session_id, pro::usage_counts{sum.rx.bytes, sum.tx.bytes});
        } else if (auto* c = std::get_if<btest::session_closed>(&ev)) {
            closed(t, *c);
        }
    }

private:
    struct test_entry {
        std::int64_t session_id = 0;
        pro::byte_budget allowed;  ///< the ledger's cumulative allowances so far
        bta::test_control ctl;
        std::vector<pro::interval_row> intervals;
    };

    static std::string printable(const std::string& s) {
        std::string out;
        for (unsigned char ch : s) out += ch < 0x20 || ch == 0x7f ? fmt::format("\\x{:02x}", ch) : std::string(1, char(ch));
        return out;
    }

    void closed(const bta::server_test_view& t, const btest::session_closed& c) {
        test_entry e;
        {
            std::lock_guard lk(m_);
            auto it = tests_.find(t.id);
            if (it == tests_.end()) {  // never admitted: no test to record
                mon_.forget(t.id);
                return;
            }
            e = std::move(it->second);
            tests_.erase(it);
            by_session_.erase(e.session_id);
        }
        const auto s = t.session.summary();
        pro::test_result r;
        r.tx_bytes = s.tx.bytes;
        r.rx_bytes = s.rx.bytes;
        r.tx_bits_per_second = s.tx.average_bps;
        r.rx_bits_per_second = s.rx.average_bps;
        r.lost_packets = s.rx.lost_packets;
        r.ended_by = btest::to_string(c.reason);
        r.error = c.error ? c.error.message() : "";
        {
            pro::session_row totals;
            totals.tx_bytes = r.tx_bytes;
            totals.rx_bytes = r.rx_bytes;
            totals.lost_packets = r.lost_packets;
            totals.ended_by = r.ended_by;
            mon_.ended(t.id, totals, s.tx.packets, s.rx.packets);
        }
        svc_.close_test(e.session_id, std::move(r), std::move(e.intervals),
                        [this, id = t.id, peer = t.peer](std::optional<pro::storage_failure> f) {
                            if (f) log_.problem(tag(id, peer) + "history not written yet (kept for retry): " + f->message);
                        });
        std::string line = tag(t.id, t.peer) + "test ended: " + btest::to_string(c.reason);
        if (c.error) line += " (" + c.error.message() + ")";
        line += fmt::format(", {:.2f} s", std::chrono::duration<double>(s.elapsed).count());
        if (s.tx.active) line += fmt::format(", TX {:.1f} MB", double(s.tx.bytes) / 1e6);
        if (s.rx.active) line += fmt::format(", RX {:.1f} MB", double(s.rx.bytes) / 1e6);
        log_.info(line);
    }

    void lease_lost(std::int64_t session_id) {
        bta::test_control ctl;
        {
            std::lock_guard lk(m_);
            auto it = by_session_.find(session_id);
            if (it == by_session_.end()) return;
            ctl = tests_[it->second].ctl;
        }
        log_.problem(fmt::format("history #{}: the quota lease was lost (database unreachable): ending the test", session_id));
        ctl.end(btest::end_reason::quota_unavailable);
    }

    pro::service& svc_;
    logger& log_;
    monitor& mon_;
    std::uint64_t slice_;
    const char* auth_method_;
    std::mutex m_;
    std::map<std::uint64_t, test_entry> tests_;         ///< by the server's test id
    std::map<std::int64_t, std::uint64_t> by_session_;  ///< history id → test id
};

/// --ip-quota-* as the ledger's limits.
pro::quota_limits ip_limits(const serve_args& a) {
    pro::quota_limits q;
    for (std::size_t w = 0; w < 3; ++w)
        for (std::size_t d = 0; d < 3; ++d) {
            const auto& text = a.ip_quotas[w][d];
            if (!text) continue;
            std::string why;
            auto v = pro::parse_byte_size(*text, &why);
            const auto flag = d == 2 ? fmt::format("--ip-quota-{}", windows[w]) : fmt::format("--ip-quota-{}-{}", dirs[d], windows[w]);
            if (!v) throw usage_error(flag + ": " + why);
            q.set(static_cast<pro::window>(w), static_cast<pro::quota_dir>(d), *v);
        }
    return q;
}

btest::address_filter filter_of(const serve_args& a) {
    btest::address_filter f;
    auto add = [](const std::string& text, const char* flag) {
        auto n = btest::ip_network::parse(text);
        if (!n) throw usage_error(fmt::format("{} '{}': not an IPv4 or IPv6 address or network (e.g. 192.0.2.0/24, 2001:db8::/32)", flag, text));
        return *n;
    };
    for (const auto& s : a.allow) f.allow(add(s, "--allow"));
    for (const auto& s : a.deny) f.deny(add(s, "--deny"));
    return f;
}

/// The admin token from its file: one line of printable ASCII without spaces, 16..256 bytes.
std::string read_admin_token(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw usage_error("--admin-token-file '" + path + "': cannot read it");
    std::string text(std::istreambuf_iterator<char>(f), {});
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
        text.pop_back();
    if (text.size() < 16 || text.size() > 256)
        throw usage_error("--admin-token-file: the token must be 16 to 256 characters (e.g. `openssl rand -hex 32`)");
    for (unsigned char ch : text)
        if (ch <= 0x20 || ch >= 0x7f)
            throw usage_error("--admin-token-file: the token must be one line of printable characters without spaces");
    return text;
}

std::string default_server_id(std::uint16_t port) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
    return fmt::format("{}:{}", host, port);
}

} // namespace

void add_serve_flags(CLI::App& cmd, serve_args& a) {
    using btest_cli::audience;
    btest_cli::add_shared_flags(cmd, a, audience::server_with_accounts, "server");
    btest_cli::add_server_flags(cmd, a, "server");
    cmd.get_option("--auth")->description(
        "authentication asked of clients: ecsrp5 (every account; RouterOS >= 6.43), md5 (only accounts added with "
        "--md5; older RouterOS), or none (anonymous: quotas per IP only). Default: ecsrp5");
    btest_cli::add_data_plane_flags(cmd, a, "data plane");
    btest_cli::add_output_flags(cmd, a, audience::server_only, "output", /*files=*/false);

    cmd.option_defaults()->group("public server");
    for (std::size_t w = 0; w < 3; ++w)
        for (std::size_t d = 0; d < 3; ++d) {
            const auto flag = d == 2 ? fmt::format("--ip-quota-{}", windows[w]) : fmt::format("--ip-quota-{}-{}", dirs[d], windows[w]);
            const auto help = d == 2 ? fmt::format("{} quota of each client address, both directions together", windows[w])
                                     : fmt::format("{} quota of each client address, {} ({})", windows[w], dirs[d],
                                                   d == 0 ? "client -> server" : "server -> client");
            cmd.add_option_function<std::string>(flag, [&slot = a.ip_quotas[w][d]](const std::string& v) { slot = v; }, help)
                ->type_name("BYTES");
        }
    cmd.add_option("--max-duration", a.max_duration_s,
                   fmt::format("longest test; it is ended cleanly (max_duration) and recorded. Default: {:g} (0: no limit)",
                               a.max_duration_s))
        ->type_name("SECONDS")
        ->check(CLI::Range(0.0, 86400.0 * 7));
    cmd.add_option("--allow", a.allow,
                   "only these client addresses may connect (repeatable; IPv4 or IPv6, CIDR). Default: everyone")
        ->type_name("CIDR");
    cmd.add_option("--deny", a.deny,
                   "these client addresses are closed before the greeting (repeatable; wins over --allow)")
        ->type_name("CIDR");
    cmd.add_option("--keep-days", a.keep_days,
                   fmt::format("history kept: older tests (and their per-second rates) are pruned. Default: {}", a.keep_days))
        ->type_name("DAYS")
        ->check(btest_cli::integer_in(1, 36500));
    cmd.add_option("--lease-slice", a.lease_slice,
                   fmt::format("quota reserved per direction at a time for a running test (a server never holds more "
                               "than two unspent slices per test and direction; a fleet never moves more than a quota). "
                               "Default: {}",
                               a.lease_slice))
        ->type_name("BYTES");
    cmd.add_option("--lease-expiry", a.lease_expiry_s,
                   fmt::format("a reservation not renewed for this long (its server died or lost the database) "
                               "returns to the quota. Default: {:g}",
                               a.lease_expiry_s))
        ->type_name("SECONDS")
        ->check(CLI::Range(10.0, 3600.0));
    cmd.add_option("--server-id", a.server_id, "this server's name in the database's leases. Default: HOSTNAME:PORT")
        ->type_name("NAME");

    cmd.option_defaults()->group("dashboard, API and metrics");
    cmd.add_option("--http", a.http,
                   "serve the dashboard (/), the JSON API (/api/v1/...) and Prometheus metrics (/metrics) on this "
                   "address ([::]:PORT or :PORT: every address). A visitor sees only its own address's tests and "
                   "quota. Default: off")
        ->type_name("ADDR:PORT");
    cmd.add_option("--admin-token-file", a.admin_token_file,
                   "file holding the admin token (16 to 256 printable characters, one line): HTTP requests with "
                   "'Authorization: Bearer TOKEN' see every address, every test and the users. "
                   "Default: none (no admin access)")
        ->type_name("FILE");
    cmd.add_option("--chart-js", a.chart_js,
                   fmt::format("Chart.js for the dashboard's charts, served as /static/chart.js (without it the "
                               "dashboard shows tables only). Default: {} (Debian: libjs-chart.js)",
                               a.chart_js))
        ->type_name("FILE");
    cmd.option_defaults()->group("public server");  // flags added after these (--db) go back there
}

int serve(serve_args& a) {
    // ---- the command line -------------------------------------------------------------------
    btest::transport::server_options so;
    pro::quota_limits ip_quota;
    std::uint64_t slice = 0;
    http_config hc;
    try {
        if (a.only_v4 && a.only_v6) throw usage_error("-4 and -6 exclude each other");
        if (a.udp_port_end && *a.udp_port_end < a.udp_port_start) throw usage_error("--udp-port-end is below --udp-port-start");
        if (a.listen6 && a.listen6->empty()) a.listen6.reset();
        so = btest_cli::server_options_from(a, a, a, a, a.auth.value_or(btest::auth_method::ec_srp5));
        so.addresses = filter_of(a);
        ip_quota = ip_limits(a);
        std::string why;
        auto s = pro::parse_byte_size(a.lease_slice, &why);
        if (!s || *s == 0) throw usage_error("--lease-slice: " + (s ? std::string("must be more than 0") : why));
        slice = *s;
        if (!a.http.empty() && !btest_app::http::split_listen(a.http, hc.host, hc.port))
            throw usage_error("--http: expected ADDR:PORT, [IPv6]:PORT or :PORT (port 1..65535), got '" + a.http + "'");
        if (!a.admin_token_file.empty()) {
            if (a.http.empty()) throw usage_error("--admin-token-file needs --http");
            hc.admin_token = read_admin_token(a.admin_token_file);
        }
    } catch (const usage_error& e) {
        pro_cli::error(e.what());
        return pro_cli::exit_usage;
    }
    so.session.limits.max_test = std::chrono::duration_cast<btest::duration>(std::chrono::duration<double>(a.max_duration_s));

    logger log(a);
    Botan::System_RNG sys;
    btest::auth::botan_entropy rng(sys);

    // ---- the database ----------------------------------------------------------------------
    pro::service_config cfg;
    cfg.ledger.slice_bytes = slice;
    cfg.ledger.lease_ttl = std::chrono::milliseconds(static_cast<std::int64_t>(a.lease_expiry_s * 1000));
    cfg.ledger.holder = a.server_id.empty() ? default_server_id(a.port) : a.server_id;
    cfg.flush_interval = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(2000), cfg.ledger.lease_ttl / 4);
    cfg.on_error = [&log](const pro::storage_failure& f) { log.problem("database: " + f.message); };
    std::unique_ptr<pro::service> svc;
    std::unique_ptr<pro::db_credentials> creds;
    try {
        pro::open_options oo;
        oo.create = true;
        oo.verify = true;
        oo.log = [&log](const std::string& line) { log.problem("database: " + line); };
        svc = std::make_unique<pro::service>(pro::service::open_pool(a.db, pro::service::pool_size(a.db, static_cast<unsigned>(so.threads)), oo),
                                             cfg);
        std::promise<std::optional<pro::storage_failure>> stored;
        svc->set_ip_quota(ip_quota, [&stored](std::optional<pro::storage_failure> f) { stored.set_value(std::move(f)); });
        if (auto f = stored.get_future().get()) throw pro::storage_error(f->code, f->message);
        creds = std::make_unique<pro::db_credentials>(
            *svc, pro::db_credentials::options{std::chrono::milliseconds(1000),
                                               [&log](const pro::storage_failure& f) { log.problem("accounts: " + f.message); }});
    } catch (const pro::storage_error& e) {
        pro_cli::error(fmt::format("cannot use the database {}: {}", pro::pg::redact_url(a.db), e.what()));
        return pro_cli::exit_storage;
    }

    // ---- the server --------------------------------------------------------------------------
    boost::asio::io_context ioc(1);
    monitor mon;
    const char* auth_name = so.session.auth == btest::auth_method::none ? "none"
                            : so.session.auth == btest::auth_method::md5 ? "md5"
                                                                          : "ecsrp5";
    pro_server hook(*svc, log, mon, slice, auth_name);
    so.admission = &hook;
    std::unique_ptr<http_api> api;
    if (!a.http.empty()) {
        hc.chart_js = a.chart_js;
        hc.server_id = cfg.ledger.holder;
        hc.auth = auth_name;
        hc.max_duration_s = a.max_duration_s;
        hc.max_sessions = so.max_sessions;
        hc.max_conn_per_ip = so.max_connections_per_ip;
        hc.io_threads = static_cast<std::size_t>(so.threads);
        hc.ip_quota = ip_quota;
        const auto where = a.http;
        api = std::make_unique<http_api>(std::move(hc), *svc, mon);
        std::string error;
        if (!api->start(error)) {
            pro_cli::error("--http " + where + ": " + error);
            return pro_cli::exit_storage;
        }
        log.info(fmt::format("btest-server-pro: dashboard, API and metrics on http://{} ({} admin token)", where,
                             a.admin_token_file.empty() ? "no" : "with an"));
    }
    bta::server srv(ioc, so, rng, creds.get(), hook);
    if (auto ec = srv.start()) {
        pro_cli::error("cannot listen on port " + std::to_string(a.port) + ": " + ec.message());
        return pro_cli::exit_storage;
    }
    log.info(fmt::format("btest-server-pro: database {}, {} accounts, auth {}{}", pro::pg::redact_url(a.db), creds->size(),
                         so.session.auth == btest::auth_method::none ? "none (quotas per IP)"
                         : so.session.auth == btest::auth_method::md5 ? "md5"
                                                                       : "ecsrp5",
                         ip_quota.any() ? ", IP quotas set" : ""));

    // Retention: pruned at start and every hour.
    boost::asio::steady_timer prune_timer(ioc);
    std::function<void()> prune = [&] {
        svc->prune(std::chrono::days(a.keep_days), [&log](pro::async_result<pro::prune_result> r) {
            if (r && r.value->sessions) log.detail(fmt::format("pruned {} tests older than the retention", r.value->sessions));
        });
        prune_timer.expires_after(std::chrono::hours(1));
        prune_timer.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) prune();
        });
    };
    prune();

    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        log.info("btest-server-pro: stopping");
        srv.stop();
        prune_timer.cancel();
    });
    ioc.run();
    srv.join();
    if (api) api->stop();
    // The database goes first, while the hook and the server it answers are still here: its
    // workers finish the queued jobs (closes of the last tests, say) and may still call back.
    api.reset();
    creds.reset();
    svc.reset();
    return pro_cli::exit_ok;
}

} // namespace pro_serve
