#include "http_api.hpp"

#include <charconv>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "btest/pro/cidr.hpp"
#include "btest/pro/json_rows.hpp"
#include "btest/pro/json_writer.hpp"
#include "btest/pro/accounts.hpp"
#include "btest/pro/ledger.hpp"
#include "btest/pro/user_name.hpp"
#include "btest/pro/utc_time.hpp"
#include "btest/version.hpp"
#include "common/process_metrics.hpp"
#include "common/prometheus.hpp"
#include "dashboard_assets.hpp"

namespace pro_serve {

namespace pro = btest::pro;
namespace prom = btest_app::prom;
using httplib::Request;
using httplib::Response;

namespace {

// The page loads only its own files: no inline script or style, no other origin, no framing.
constexpr const char* csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

constexpr auto query_budget = std::chrono::seconds(10);

/// On every answer (the HTTP server adds X-Content-Type-Options: nosniff and Cache-Control:
/// no-store to all of them).
void headers(Response& res) {
    res.set_header("Content-Security-Policy", csp);
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
}

void json(Response& res, int status, const std::string& body) {
    headers(res);
    res.status = status;
    res.set_content(body + "\n", "application/json; charset=utf-8");
}

void json_error(Response& res, int status, std::string_view message) {
    pro::json_writer j;
    j.begin_object().field("error", message).end_object();
    json(res, status, j.str());
}

/// A client's address as the history stores it: canonical text, IPv4 for v4-mapped IPv6.
std::optional<std::string> canonical_ip(std::string_view text) {
    if (text.starts_with("::ffff:") && text.find('.') != std::string_view::npos) text.remove_prefix(7);
    auto ip = pro::parse_ip(text);
    if (!ip) return std::nullopt;
    return ip->to_string();
}

double seconds_between(pro::sys_ms a, pro::sys_ms b) { return static_cast<double>((b - a).count()) / 1000.0; }

// ---- JSON objects: the field names of `btest-server-pro … --json` and `btest --json` ----------

void write_interval(pro::json_writer& j, const pro::interval_row& r) {
    j.begin_object()
        .field("start_s", static_cast<double>(r.start_ms) / 1000.0)
        .field("time_s", static_cast<double>(r.end_ms) / 1000.0)
        .field("tx_bytes", r.tx_bytes)
        .field("rx_bytes", r.rx_bytes)
        .field("tx_bits_per_second", r.tx_bits_per_second)
        .field("rx_bits_per_second", r.rx_bits_per_second)
        .field("lost_packets", r.lost_packets)
        .end_object();
}

/// Compares without stopping at the first difference (the time says nothing of the token).
bool same_secret(std::string_view given, std::string_view want) {
    unsigned char diff = given.size() == want.size() ? 0 : 1;
    for (std::size_t i = 0; i < given.size(); ++i)
        diff |= static_cast<unsigned char>(given[i] ^ (want.empty() ? 0 : want[i % want.size()]));
    return diff == 0;
}

std::optional<std::uint64_t> parse_count(const std::string& s, std::uint64_t max) {
    std::uint64_t v = 0;
    const auto* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v);
    if (s.empty() || ec != std::errc{} || p != end || v > max) return std::nullopt;
    return v;
}

} // namespace

// ---- the routes ---------------------------------------------------------------------------------

class http_api::routes {
public:
    routes(http_config cfg, pro::service& svc, monitor& mon) : cfg_(std::move(cfg)), svc_(svc), mon_(mon) {}

    void install(btest_app::http::server& http) {
        http_ = &http;
        http.get("/", [](const Request&, Response& res) { asset(res, assets::index_html, "text/html; charset=utf-8"); });
        http.get("/dashboard.js",
                 [](const Request&, Response& res) { asset(res, assets::dashboard_js, "text/javascript; charset=utf-8"); });
        http.get("/dashboard.css",
                 [](const Request&, Response& res) { asset(res, assets::dashboard_css, "text/css; charset=utf-8"); });
        http.get("/static/chart.js", [this](const Request&, Response& res) { chart_js(res); });
        http.get("/metrics", [this](const Request&, Response& res) { metrics(res); });
        http.get("/api/v1/info", [this](const Request& req, Response& res) { info(req, res); });
        http.get("/api/v1/live", [this](const Request& req, Response& res) { live(req, res); });
        http.get("/api/v1/sessions", [this](const Request& req, Response& res) { sessions(req, res); });
        http.get(R"(/api/v1/sessions/(\d{1,18}))", [this](const Request& req, Response& res) { session(req, res); });
        http.get("/api/v1/quota", [this](const Request& req, Response& res) { quota(req, res); });
        http.get("/api/v1/users", [this](const Request& req, Response& res) { users(req, res); });
    }

private:
    enum class caller { visitor, admin, bad_token };

    /// Who is asking, and from where.
    struct asker {
        caller who = caller::visitor;
        std::optional<std::string> ip;  ///< canonical; nullopt only for an address we cannot read
        bool admin() const noexcept { return who == caller::admin; }
    };

    asker identify(const Request& req) const {
        asker a;
        a.ip = canonical_ip(req.remote_addr);
        if (!req.has_header("Authorization")) return a;
        const auto h = req.get_header_value("Authorization");
        constexpr std::string_view scheme = "Bearer ";
        const bool ok = !cfg_.admin_token.empty() && h.size() > scheme.size() && h.starts_with(scheme) &&
                        same_secret(std::string_view(h).substr(scheme.size()), cfg_.admin_token);
        a.who = ok ? caller::admin : caller::bad_token;
        return a;
    }

    /// The one answer for everything a caller may not see: 401 without a token, 403 with a
    /// wrong one; nothing in it depends on what exists.
    static void deny(Response& res, const asker& a) {
        if (a.who == caller::bad_token) return json_error(res, 403, "forbidden: the token is not valid");
        res.set_header("WWW-Authenticate", "Bearer realm=\"btest-server-pro\"");
        json_error(res, 401, "this needs the admin token (Authorization: Bearer TOKEN)");
    }

    /// Runs `fn` on a database worker; the HTTP thread waits at most query_budget.
    template <class T>
    std::optional<T> query(std::function<T(pro::storage&)> fn, std::string& error) {
        auto p = std::make_shared<std::promise<std::pair<std::optional<T>, std::string>>>();
        auto f = p->get_future();
        svc_.post([p, fn = std::move(fn)](pro::storage& db) {
            try {
                p->set_value({fn(db), {}});
            } catch (const pro::storage_error& e) {
                p->set_value({std::nullopt, e.what()});
                throw;  // counted and reported by the service
            } catch (const std::exception& e) {
                p->set_value({std::nullopt, e.what()});
            }
        });
        if (f.wait_for(query_budget) != std::future_status::ready) {
            error = "the database did not answer in time";
            return std::nullopt;
        }
        auto r = f.get();
        if (!r.first) error = "database: " + r.second;
        return std::move(r.first);
    }

    static void asset(Response& res, std::string_view body, const char* type) {
        headers(res);
        res.set_content(std::string(body), type);
    }

    void chart_js(Response& res) const {
        std::ifstream f(cfg_.chart_js, std::ios::binary);
        std::string body(std::istreambuf_iterator<char>(f), {});
        if (!f.good() && !f.eof()) body.clear();
        if (body.empty()) {
            headers(res);
            res.status = 404;
            res.set_content("Chart.js is not installed (Debian: libjs-chart.js)\n", "text/plain; charset=utf-8");
            return;
        }
        asset(res, body, "text/javascript; charset=utf-8");
    }

    void metrics(Response& res) const {
        prom::text_writer w;
        w.family("btest_server_build_info", prom::metric_type::gauge, "btest-server-pro's version.")
            .sample({{"version", btest::version_string}}, 1);
        mon_.write_metrics(w, svc_.errors(), cfg_.io_threads);
        const auto h = http_->counters();
        w.single("btest_http_connections_total", prom::metric_type::counter, "HTTP connections accepted.",
                 static_cast<double>(h.accepted));
        w.family("btest_http_refused_total", prom::metric_type::counter,
                 "HTTP connections closed without serving: busy (503), timeout (408), too_large (431/413), "
                 "bad_request (400).")
            .sample({{"reason", "busy"}}, static_cast<double>(h.refused_busy))
            .sample({{"reason", "timeout"}}, static_cast<double>(h.timed_out))
            .sample({{"reason", "too_large"}}, static_cast<double>(h.too_large))
            .sample({{"reason", "bad_request"}}, static_cast<double>(h.bad_request));
        prom::write_process_metrics(w);
        headers(res);
        res.set_content(w.take(), prom::content_type);
    }

    void info(const Request& req, Response& res) const {
        const auto a = identify(req);
        if (a.who == caller::bad_token) return deny(res, a);
        pro::json_writer j;
        j.begin_object()
            .field("version", btest::version_string)
            .field("server_id", cfg_.server_id)
            .field("auth", cfg_.auth)
            .field("max_duration_s", cfg_.max_duration_s)
            .field("max_sessions", static_cast<std::uint64_t>(cfg_.max_sessions))
            .field("max_conn_per_ip", static_cast<std::uint64_t>(cfg_.max_conn_per_ip))
            .key("ip_quota");
        pro::write_limits(j, cfg_.ip_quota);
        j.key("you").begin_object().key("ip");
        if (a.ip) j.string(*a.ip); else j.null();
        j.field("admin", a.admin()).end_object().end_object();
        json(res, 200, j.str());
    }

    void live(const Request& req, Response& res) const {
        const auto a = identify(req);
        if (a.who == caller::bad_token) return deny(res, a);
        if (!a.admin() && !a.ip) return deny(res, a);
        const auto tests = mon_.live(a.admin() ? std::nullopt : a.ip);
        const auto now = pro::utc_now();
        pro::json_writer j;
        j.begin_object().key("sessions").begin_array();
        for (const auto& t : tests) {
            j.begin_object()
                .field("id", t.session_id)
                .field("start", pro::format_utc(t.start))
                .field("duration_s", seconds_between(t.start, now))
                .field("peer", t.peer)
                .key("user");
            if (t.user.empty()) j.null(); else j.string(t.user);
            j.field("protocol", t.protocol)
                .field("direction", t.direction)
                .field("connections", t.connections)
                .field("tx_bytes", t.tx_bytes)
                .field("rx_bytes", t.rx_bytes)
                .field("tx_bits_per_second", t.tx_bits_per_second)
                .field("rx_bits_per_second", t.rx_bits_per_second)
                .field("lost_packets", t.lost_packets)
                .key("intervals")
                .begin_array();
            for (const auto& r : t.intervals) write_interval(j, r);
            j.end_array().end_object();
        }
        j.end_array().end_object();
        json(res, 200, j.str());
    }

    void sessions(const Request& req, Response& res) {
        const auto a = identify(req);
        if (a.who == caller::bad_token) return deny(res, a);
        pro::session_filter f;
        f.limit = 100;
        if (req.has_param("ip")) {
            auto ip = canonical_ip(req.get_param_value("ip"));
            if (!ip) return json_error(res, 400, "ip: not an IPv4 or IPv6 address");
            if (!a.admin() && ip != a.ip) return deny(res, a);
            f.ip = pro::parse_ip(*ip);
        } else if (!a.admin()) {
            if (!a.ip) return deny(res, a);
            f.ip = pro::parse_ip(*a.ip);
        }
        if (req.has_param("user")) {
            const auto u = req.get_param_value("user");
            if (pro::user_name_problem(u)) return json_error(res, 400, "user: not a valid user name");
            f.user = u;
        }
        if (req.has_param("since")) {
            std::string why;
            auto t = pro::parse_since(req.get_param_value("since"), pro::utc_now(), &why);
            if (!t) return json_error(res, 400, "since: " + why);
            f.since = *t;
        }
        if (req.has_param("limit")) {
            auto v = parse_count(req.get_param_value("limit"), 1000);
            if (!v || *v == 0) return json_error(res, 400, "limit: a whole number from 1 to 1000");
            f.limit = static_cast<std::size_t>(*v);
        }
        if (req.has_param("offset")) {
            auto v = parse_count(req.get_param_value("offset"), 1'000'000'000);
            if (!v) return json_error(res, 400, "offset: a whole number from 0 to 1000000000");
            f.offset = static_cast<std::size_t>(*v);
        }
        std::string error;
        auto rows = query<std::vector<pro::session_row>>([f](pro::storage& db) { return db.list_sessions(f); }, error);
        if (!rows) return json_error(res, 503, error);
        pro::json_writer j;
        j.begin_object().key("sessions").begin_array();
        for (const auto& r : *rows) {
            pro::write_session_fields(j, r);
            j.end_object();
        }
        j.end_array().end_object();
        json(res, 200, j.str());
    }

    void session(const Request& req, Response& res) {
        const auto a = identify(req);
        if (a.who == caller::bad_token) return deny(res, a);
        auto id = parse_count(req.matches[1].str(), 999'999'999'999'999'999ULL);
        if (!id) return json_error(res, 400, "not a session id");
        using found = std::pair<std::optional<pro::session_row>, std::vector<pro::interval_row>>;
        std::string error;
        const auto sid = static_cast<std::int64_t>(*id);
        auto r = query<found>(
            [sid](pro::storage& db) {
                found f{db.find_session(sid), {}};
                if (f.first) f.second = db.intervals(sid);
                return f;
            },
            error);
        if (!r) return json_error(res, 503, error);
        // A visitor learns nothing about sessions that are not its own, not even that they exist.
        if (!a.admin() && (!r->first || !a.ip || r->first->peer_ip.to_string() != *a.ip)) return deny(res, a);
        if (!r->first) return json_error(res, 404, "no such session");
        pro::json_writer j;
        pro::write_session_fields(j, *r->first);
        j.key("intervals").begin_array();
        for (const auto& i : r->second) write_interval(j, i);
        j.end_array().end_object();
        json(res, 200, j.str());
    }

    void quota(const Request& req, Response& res) {
        const auto a = identify(req);
        if (a.who == caller::bad_token) return deny(res, a);
        if (req.has_param("ip") && req.has_param("user")) return json_error(res, 400, "give ip or user, not both");
        pro::subject who;
        if (req.has_param("user")) {
            if (!a.admin()) return deny(res, a);
            const auto u = req.get_param_value("user");
            if (pro::user_name_problem(u)) return json_error(res, 400, "user: not a valid user name");
            who = {pro::subject_kind::user, u};
        } else {
            std::optional<std::string> ip = a.ip;
            if (req.has_param("ip")) {
                ip = canonical_ip(req.get_param_value("ip"));
                if (!ip) return json_error(res, 400, "ip: not an IPv4 or IPv6 address");
                if (!a.admin() && ip != a.ip) return deny(res, a);
            }
            if (!ip) return deny(res, a);
            who = {pro::subject_kind::ip, *ip};
        }
        std::string error;
        using report = std::optional<std::vector<pro::quota_line>>;
        auto lines = query<report>(
            [who](pro::storage& db) {
                pro::ledger l{pro::ledger_config{}};
                return l.quota_report(db, who, pro::utc_now());
            },
            error);
        if (!lines) return json_error(res, 503, error);
        if (!*lines) return json_error(res, 404, "no such user");
        pro::json_writer j;
        j.begin_object().key("quota").begin_array();
        for (const auto& q : **lines) pro::write_quota_line(j, who, q);
        j.end_array().end_object();
        json(res, 200, j.str());
    }

    void users(const Request& req, Response& res) {
        const auto a = identify(req);
        if (!a.admin()) return deny(res, a);
        std::string error;
        auto accounts = query<std::vector<pro::account>>([](pro::storage& db) { return db.list_accounts(); }, error);
        if (!accounts) return json_error(res, 503, error);
        pro::json_writer j;
        j.begin_object().key("users").begin_array();
        for (const auto& acc : *accounts) pro::write_account(j, acc);
        j.end_array().end_object();
        json(res, 200, j.str());
    }

    http_config cfg_;
    pro::service& svc_;
    monitor& mon_;
    btest_app::http::server* http_ = nullptr;
};

http_api::http_api(http_config cfg, pro::service& svc, monitor& mon) {
    btest_app::http::server_options ho;
    ho.host = cfg.host;
    ho.port = cfg.port;
    // Requests are short (the longest waits for one database query); eight workers keep the
    // dashboard and a scraper answered while a few API queries wait for a busy database.
    ho.threads = 8;
    ho.max_connections = 128;
    routes_ = std::make_unique<routes>(std::move(cfg), svc, mon);
    http_ = std::make_unique<btest_app::http::server>(ho);
    routes_->install(*http_);
}

http_api::~http_api() { stop(); }

bool http_api::start(std::string& error) { return http_->start(error); }
std::uint16_t http_api::port() const noexcept { return http_->port(); }
void http_api::stop() {
    if (http_) http_->stop();
}

} // namespace pro_serve
