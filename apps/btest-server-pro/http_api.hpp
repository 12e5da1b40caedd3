// `btest-server-pro serve --http ADDR:PORT`: the operator's window on the server. Prometheus
// /metrics, the JSON API (/api/v1/…) and the dashboard (/), on the hardened HTTP server of
// apps/common (its own threads, timeouts, a connection cap, a request size cap): nothing here
// runs on, or waits for, an io thread of the data plane. Live figures come from the monitor
// (copied under its mutex); history, quotas and accounts from the database through the
// service's workers (the HTTP thread waits for the answer, bounded).
//
// Who may see what: a visitor sees only what concerns its own address (its running tests, its
// history, its quota), as public servers show it. Everything else needs the admin token
// (--admin-token-file) as `Authorization: Bearer TOKEN`. Without it such a request is answered
// 401, with a wrong token 403; both say nothing else (not whether the address has history,
// not whether a session or a user exists).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "btest/pro/quota.hpp"
#include "btest/pro/service.hpp"
#include "common/http_server.hpp"
#include "monitor.hpp"

namespace pro_serve {

struct http_config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::string admin_token;  ///< empty: no admin access at all
    /// Chart.js (Debian's libjs-chart.js), read at each request; missing: 404, the dashboard
    /// then shows its tables without charts.
    std::string chart_js = "/usr/share/javascript/chart.js/chart.min.js";

    // What /api/v1/info tells (the server's limits).
    std::string server_id;
    std::string auth;  ///< ecsrp5, md5, none
    double max_duration_s = 0;
    std::size_t max_sessions = 0;
    std::size_t max_conn_per_ip = 0;
    std::size_t io_threads = 1;
    btest::pro::quota_limits ip_quota;
};

class http_api {
public:
    http_api(http_config cfg, btest::pro::service& svc, monitor& mon);
    ~http_api();
    http_api(const http_api&) = delete;
    http_api& operator=(const http_api&) = delete;

    /// Binds and starts serving; false with `error` set when the address cannot be bound.
    bool start(std::string& error);
    std::uint16_t port() const noexcept;
    /// Stops serving and joins the HTTP threads (before the service and monitor go).
    void stop();

private:
    class routes;
    std::unique_ptr<routes> routes_;
    std::unique_ptr<btest_app::http::server> http_;
};

} // namespace pro_serve
