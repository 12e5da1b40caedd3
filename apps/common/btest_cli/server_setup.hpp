// The transport's server options from the command line: what `btest -s` and
// `btest-server-pro serve` both turn their server, shared and data-plane flags into, so that
// the two servers read every flag the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "btest/transport/options.hpp"
#include "btest/transport/socket.hpp"
#include "btest_cli/flags.hpp"
#include "btest_cli/values.hpp"

namespace btest_cli {

/// --no-gso, --no-gro, --no-zerocopy, --zerocopy-everywhere, --no-discard, --timer-granularity (both roles).
inline void apply_data_plane(const data_plane_flags& o, btest::transport::data_plane_options& dp) {
    dp.udp_gso = !o.no_gso;
    dp.udp_gro = !o.no_gro;
    dp.tcp_zerocopy = !o.no_zerocopy;
    dp.tcp_zerocopy_remote = o.zerocopy_everywhere;
    dp.tcp_discard = !o.no_discard;
    if (o.timer_granularity_us) dp.timer_granularity = std::chrono::microseconds(*o.timer_granularity_us);
}

/// The server's options; `auth` is the method asked of clients. Throws usage_error for an
/// address that does not parse or nothing to listen on.
inline btest::transport::server_options server_options_from(const shared_flags& s, const server_flags& o,
                                                            const data_plane_flags& dp, const output_flags& out,
                                                            btest::auth_method auth) {
    btest::transport::server_options so;
    so.port = s.port;
    so.max_sessions = o.max_sessions;
    so.max_connections_per_ip = o.max_conn_per_ip;
    so.auth_failures.max_failures = o.max_auth_failures;
    if (o.handshake_timeout) so.session.limits.handshake = *o.handshake_timeout;
    if (o.idle_timeout) so.session.limits.idle = *o.idle_timeout;
    if (o.max_pending) so.joins.max_pending = *o.max_pending;
    so.trace_control = out.verbose >= 2;
    so.threads = o.threads.value_or(std::max(1u, std::thread::hardware_concurrency()));
    apply_data_plane(dp, so.data_plane);
    so.udp_ports.base = o.udp_port_start;
    if (o.udp_port_end) so.udp_ports.last = *o.udp_port_end;
    auto parse_addr = [&](const std::string& text, bool v6) -> std::optional<btest::ip_address> {
        auto a = btest::transport::parse_address(text);
        if (!a || (a->family == btest::ip_family::v6) != v6)
            throw usage_error("invalid " + std::string(v6 ? "IPv6" : "IPv4") + " address for --listen" + (v6 ? "6" : "") +
                              ": '" + text + "'");
        return a;
    };
    if (o.listen4) so.listen_v4 = *o.listen4 == "none" ? std::nullopt : parse_addr(*o.listen4, false);
    if (o.listen6 && *o.listen6 == "none") so.listen_v6.reset();
    else if (o.listen6) so.listen_v6 = parse_addr(*o.listen6, true);
    so.require_v6 = o.listen6_given && so.listen_v6.has_value();
    if (s.only_v4) so.listen_v6.reset();
    if (s.only_v6) {
        so.listen_v4.reset();
        if (!so.listen_v6) so.listen_v6 = btest::ip_address::v6({});
    }
    if (!so.listen_v4 && !so.listen_v6) throw usage_error("nothing to listen on (--listen none and --listen6 none)");
    so.session.auth = auth;
    so.session.report_interval = out.interval;
    so.session.max_tx_rate = s.bandwidth.value_or(0);
    return so;
}

} // namespace btest_cli
