// btest: the reference MikroTik Bandwidth Test client and server over the Asio transport.
// Parses options, runs the transport, prints. Machine output (text lines, JSON lines) goes to
// stdout; diagnostics, logs and hex dumps go to stderr.
//
// Exit status: 0 the test ran to its end (duration or Ctrl-C) / the server was stopped,
// 1 usage error, 2 connection or handshake failure (also: the peer ended the test early),
// 3 authentication failure.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <botan/system_rng.h>

#include "btest/auth/botan_entropy.hpp"
#include "btest/auth/credentials.hpp"
#include "btest/transport/asio/client.hpp"
#include "btest/transport/asio/server.hpp"
#include "btest_cli/build_info.hpp"
#include "btest_cli/server_setup.hpp"

#include "options.hpp"
#include "output.hpp"
#ifdef BTEST_WITH_PROBE
#include "probe/probe_main.hpp"
#endif

namespace {

using namespace btest_cli;
namespace bta = btest::asio;

constexpr int exit_ok = 0;
constexpr int exit_usage = 1;
constexpr int exit_failure = 2;
constexpr int exit_auth = 3;

// ---- shared printing ---------------------------------------------------------------------

std::string count_text(btest::protocol p, std::uint32_t n) {
    return std::to_string(n) + (p == btest::protocol::udp ? (n == 1 ? " stream" : " streams")
                                                          : (n == 1 ? " connection" : " connections"));
}

struct printer {
    const options& opt;
    csv_file* csv = nullptr;
    syslog_sender* syslog = nullptr;
    const char* role = "client";

    void out(const std::string& line) const {
        std::fputs(line.c_str(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
    }
    void err(const std::string& line) const {
        std::fputs(line.c_str(), stderr);
        std::fputc('\n', stderr);
        std::fflush(stderr);
    }

    /// Decimals that show every multiple of the report interval exactly: 0 at whole seconds,
    /// 1 at 0.5 s, 2 at 0.25 s or 0.02 s, 3 at 0.125 s.
    int label_decimals() const {
        const auto ms = opt.interval.count();
        return ms % 1000 == 0 ? 0 : ms % 100 == 0 ? 1 : ms % 10 == 0 ? 2 : 3;
    }

    /// "[  5]": the end of an interval on the report grid (k × interval), with the interval's
    /// decimals. The session fires a report when its timer runs, which on a busy machine is a few
    /// milliseconds after the grid point; the label names the grid point, so a late report does
    /// not read "[  2.01]" between "[  1]" and "[  3]". Only a final fragment that ends off the
    /// grid (a test stopped mid-interval) shows its own end, with two more decimals.
    std::string time_label(const btest::interval_report& r) const {
        const double e = seconds(r.end);
        const double step = std::chrono::duration<double>(opt.interval).count();
        const int d = label_decimals();
        const double k = std::round(e / step);
        const bool on_grid = !r.final || std::abs(e - k * step) < step / 10;
        if (on_grid) return fmt::format("[{:{}.{}f}]", k * step, d ? 4 + d : 3, d);
        return fmt::format("[{:{}.{}f}]", e, 6 + d, d + 2);
    }

    static std::string cpu_text(const std::optional<std::uint8_t>& local, const std::optional<std::uint8_t>& remote) {
        return (local ? std::to_string(*local) + "%" : std::string("-")) + "/" +
               (remote ? std::to_string(*remote) + "%" : std::string("-"));
    }

    /// One interval, text/JSON/CSV. `prefix`: the server's session tag. Loss is a UDP receive
    /// figure: TCP lines and transmit lines carry none (JSON null, CSV empty).
    void interval(const btest::interval_report& r, btest::protocol proto, const std::string& prefix,
                  std::uint64_t session, const std::string& peer, bool text) const {
        const bool udp = proto == btest::protocol::udp;
        auto one = [&](const char* dir, const btest::direction_interval& d, bool rx) {
            if (!d.active) return;
            const bool loss = udp && rx;
            if (opt.json) {
                json_line j;
                j.str("type", "interval").str("role", role);
                if (session) j.num("session", session);
                j.str("peer", peer)
                    .num("time_s", seconds(r.end))
                    .num("start_s", seconds(r.start))
                    .str("direction", dir)
                    .num("bits_per_second", d.bits_per_second)
                    .num("bytes", d.bytes)
                    .num("packets", d.packets)
                    .opt("lost_packets", loss ? std::optional<std::uint64_t>(d.lost_packets) : std::nullopt)
                    .num("jitter_ms", d.jitter_ms)
                    .opt("local_cpu", r.local_cpu)
                    .opt("remote_cpu", r.remote_cpu);
                if (!rx) j.opt("peer_bits_per_second", d.peer_bits_per_second);
                out(j.done());
            } else if (text && r.end - r.start >= opt.interval / 10) {
                // (a final fragment shorter than a tenth of the interval is left to JSON/CSV)
                std::string line = fmt::format("{}{} {} {:7.2f} Mbit/s {:5.1f} MB  cpu {}", prefix, time_label(r),
                                               rx ? "RX" : "TX", mbit(d.bits_per_second), mbytes(d.bytes),
                                               cpu_text(r.local_cpu, r.remote_cpu));
                if (loss) line += "  lost " + std::to_string(d.lost_packets);
                else if (d.peer_bits_per_second) line += fmt::format("  peer {:.2f} Mbit/s", mbit(*d.peer_bits_per_second));
                out(line);
            }
            if (csv && csv->is_open()) {
                csv->write({.role = role, .session = session, .peer = peer, .type = "interval", .direction = dir,
                            .time_s = seconds(r.end), .bits_per_second = d.bits_per_second, .bytes = d.bytes,
                            .packets = d.packets,
                            .lost_packets = loss ? std::optional<std::uint64_t>(d.lost_packets) : std::nullopt,
                            .jitter_ms = d.jitter_ms, .local_cpu = r.local_cpu, .remote_cpu = r.remote_cpu, .test = {}});
            }
        };
        one("tx", r.tx, false);
        one("rx", r.rx, true);
    }

    struct test_info {
        btest::protocol proto = btest::protocol::tcp;
        btest::direction dir = btest::direction::receive;
        std::uint32_t connections = 1;
        std::string user;
    };

    /// -v: what each TCP connection or UDP stream of a test carried, one text line each.
    template <class Session>
    static std::vector<std::string> per_connection(const Session& s, btest::protocol proto, const std::string& prefix) {
        std::vector<std::string> lines;
        if (proto == btest::protocol::tcp) {
            for (std::uint32_t i = 0; i < s.connection_count(); ++i) {
                const auto& c = s.conn_stats(i);
                lines.push_back(fmt::format("{}  conn {:<3} TX {:.1f} MB  RX {:.1f} MB  status {} sent / {} received",
                                            prefix, i, mbytes(c.tx_bytes), mbytes(c.rx_bytes), c.status_sent, c.status_received));
            }
        } else {
            const auto& rx = s.udp_receive_stats();
            for (std::size_t i = 0; i < rx.sources(); ++i) {
                const auto v = rx.source(i);
                lines.push_back(fmt::format("{}  stream {:<3} RX {:.1f} MB  {} packets  lost {}  jitter {:.3f} ms  (socket {}, from port {})",
                                            prefix, i, mbytes(v.bytes), v.packets, v.lost, v.jitter_ns / 1e6, unsigned{v.socket},
                                            unsigned{v.port}));
            }
        }
        return lines;
    }

    /// The end-of-test summary in every enabled format; `detail`: per-connection lines (-v) for
    /// the text form.
    void summary(const btest::test_summary& s, const test_info& t, std::uint64_t session, const std::string& peer,
                 const std::string& prefix, bool text, const std::vector<std::string>& detail = {}) const {
        const auto reason = s.reason ? btest::to_string(*s.reason) : "failure";
        const std::string error = s.error ? s.error.message() : "";
        const bool udp = t.proto == btest::protocol::udp;  // loss and jitter are UDP receive figures
        if (opt.json) {
            json_line j;
            j.str("type", "summary").str("role", role);
            if (session) j.num("session", session);
            j.str("peer", peer)
                .num("time_s", seconds(s.elapsed))
                .num("duration_s", seconds(s.elapsed))
                .str("protocol", name(t.proto))
                .str("direction", name(t.dir))
                .num("connections", std::uint64_t{s.connections})
                .opt_str("user", t.user)
                .num("bytes", s.tx.bytes + s.rx.bytes)
                .num("bits_per_second", s.tx.average_bps + s.rx.average_bps)
                .num("tx_bytes", s.tx.bytes)
                .num("rx_bytes", s.rx.bytes)
                .num("tx_bits_per_second", s.tx.average_bps)
                .num("rx_bits_per_second", s.rx.average_bps)
                .num("tx_bits_per_second_10s", s.tx.average10_bps)
                .num("rx_bits_per_second_10s", s.rx.average10_bps)
                .num("tx_packets", s.tx.packets)
                .num("rx_packets", s.rx.packets)
                .opt("lost_packets", udp && s.rx.active ? std::optional<std::uint64_t>(s.rx.lost_packets) : std::nullopt)
                .num("jitter_ms", s.rx.jitter_ms)
                .opt("local_cpu", s.local_cpu)
                .opt("remote_cpu", s.remote_cpu)
                .num("status_sent", s.status_sent)
                .num("status_received", s.status_received)
                .num("status_bytes_sent", s.status_bytes_sent)
                .num("status_bytes_received", s.status_bytes_received)
                .str("ended_by", reason)
                .opt_str("error", error)
                .opt_str("error_code", error_name(s.error));
            out(j.done());
        } else if (text) {
            std::string head = prefix + "--- summary: " + name(t.proto) + " " + name(t.dir) + ", " +
                               count_text(t.proto, s.connections) + ", " + fmt::format("{:.2f} s", seconds(s.elapsed)) + ", ended: " + reason;
            if (!error.empty()) head += " (" + error + ")";
            std::string block = head;  // one write, so another process's lines cannot split it
            auto dir_line = [&](const char* tag, const btest::direction_summary& d, bool rx) {
                if (!d.active) return;
                std::string line = fmt::format("{}{}  {:.1f} MB  avg {:.2f} Mbit/s  10-s avg {:.2f} Mbit/s", prefix, tag,
                                               mbytes(d.bytes), mbit(d.average_bps), mbit(d.average10_bps));
                if (rx && udp) line += "  lost " + std::to_string(d.lost_packets) + fmt::format("  jitter {:.3f} ms", d.jitter_ms);
                block += "\n" + line;
            };
            dir_line("TX", s.tx, false);
            dir_line("RX", s.rx, true);
            for (const auto& l : detail) block += "\n" + l;
            out(block);
        }
        if (csv && csv->is_open()) {
            auto row = [&](const char* dir, const btest::direction_summary& d, bool rx) {
                if (!d.active) return;
                csv->write({.role = role, .session = session, .peer = peer, .type = "summary", .direction = dir,
                            .time_s = seconds(s.elapsed), .bits_per_second = d.average_bps, .bytes = d.bytes,
                            .packets = d.packets,
                            .lost_packets = rx && udp ? std::optional<std::uint64_t>(d.lost_packets) : std::nullopt,
                            .jitter_ms = rx ? d.jitter_ms : 0.0, .local_cpu = s.local_cpu, .remote_cpu = s.remote_cpu,
                            .test = csv_row::test_columns{.protocol = name(t.proto), .test_direction = name(t.dir),
                                                          .connections = s.connections,
                                                          .duration_s = seconds(s.elapsed), .ended_by = reason}});
            };
            row("tx", s.tx, false);
            row("rx", s.rx, true);
        }
        if (syslog && syslog->is_open()) {
            syslog->send(6, "test-end",
                         std::string("test ended: role=") + role + " peer=" + peer + " protocol=" + name(t.proto) +
                             " direction=" + name(t.dir) + " connections=" + std::to_string(s.connections) +
                             " user=" + (t.user.empty() ? "-" : t.user) + " duration_s=" + fmt::format("{:.3f}", seconds(s.elapsed)) +
                             " tx_bytes=" + std::to_string(s.tx.bytes) + " rx_bytes=" + std::to_string(s.rx.bytes) +
                             (udp ? " lost_packets=" + std::to_string(s.rx.lost_packets) : "") + " ended_by=" + reason +
                             (error.empty() ? "" : " error=\"" + error + "\""));
        }
    }

    void error_object(const std::string& message, const char* code, int status, const std::string& peer,
                      std::uint64_t session = 0) const {
        if (!opt.json) return;
        json_line j;
        j.str("type", "error").str("role", role);
        if (session) j.num("session", session);
        j.str("peer", peer).num("time_s", 0.0).str("message", message).str("error_code", code);
        if (status >= 0) j.num("exit_status", static_cast<std::uint64_t>(status));
        out(j.done());
    }
};

bool is_auth_error(const std::error_code& ec) {
    return ec == btest::errc::auth_failed || ec == btest::errc::auth_required || ec == btest::errc::auth_unsupported_method ||
           ec == btest::errc::bad_server_key;
}

// ---- client ------------------------------------------------------------------------------

class client_app final : public bta::client_observer {
public:
    client_app(const options& o, printer& p) : opt_(o), p_(p) {}
    int status = exit_failure;
    bta::client* cli = nullptr;
    boost::asio::signal_set* signals = nullptr;

    void on_connected(const btest::endpoint& ep) override {
        peer_ = bta::to_string(ep);
        if (opt_.verbose) p_.err("connected to " + peer_);
    }

    void on_event(const btest::client_session& s, const btest::event& ev) override {
        if (auto* r = std::get_if<btest::interval_report>(&ev)) {
            p_.interval(*r, info_.proto, "", 0, peer_, !opt_.quiet);
        } else if (auto* t = std::get_if<btest::test_started>(&ev)) {
            info_ = {t->proto, t->dir, t->connections, t->user};
            if (opt_.verbose)
                p_.err(std::string("test started: ") + name(t->proto) + " " + name(t->dir) + ", " +
                       count_text(t->proto, t->connections) +
                       (t->proto == btest::protocol::udp ? ", server UDP port " + std::to_string(t->udp_port) : ""));
            if (p_.syslog && p_.syslog->is_open())
                p_.syslog->send(6, "test-start", std::string("test started: role=client peer=") + peer_ +
                                                     " protocol=" + name(t->proto) + " direction=" + name(t->dir) +
                                                     " connections=" + std::to_string(t->connections));
        } else if (auto* a = std::get_if<btest::auth_result>(&ev)) {
            if (opt_.verbose) p_.err(std::string("authentication ") + (a->ok ? "accepted" : "refused") + " for user " + a->user);
            if (p_.syslog && p_.syslog->is_open())
                p_.syslog->send(a->ok ? 6 : 4, a->ok ? "auth-ok" : "auth-fail",
                                std::string("authentication ") + (a->ok ? "succeeded" : "failed") + ": role=client peer=" +
                                    peer_ + " user=" + a->user);
        } else if (auto* n = std::get_if<btest::notice>(&ev)) {
            p_.err("btest: " + n->text);
        }
        (void)s;
    }

    void on_control(std::uint32_t conn, bool sent, std::span<const std::byte> b) override {
        if (opt_.verbose < 2) return;
        const std::string tag = "[conn " + std::to_string(conn) + "] " + (sent ? ">> " : "<< ");
        std::string text = tag + std::to_string(b.size()) + " bytes\n" + hex_dump(tag, b);
        text.pop_back();
        p_.err(text);
    }

    void on_finished(const btest::client_session* s, const std::error_code& connect_error, const std::string& detail) override {
        if (signals) {
            boost::system::error_code ignore;
            signals->cancel(ignore);
        }
        if (!s) {
            if (connect_error == std::errc::operation_canceled) {
                status = exit_ok;
                return;
            }
            const std::string msg = detail + ": " + connect_error.message();
            p_.err("btest: " + msg);
            p_.error_object(msg, "connect_failed", exit_failure, peer_or_host());
            status = exit_failure;
            return;
        }
        const auto sum = s->summary();
        const auto reason = sum.reason.value_or(btest::end_reason::failure);
        if (sum.started) {
            if (info_.user.empty() && opt_.user) info_.user = *opt_.user;
            p_.summary(sum, info_, 0, peer_, "", true,
                       opt_.verbose ? printer::per_connection(*s, info_.proto, "") : std::vector<std::string>{});
        }
        std::error_code ec = sum.error;
        switch (reason) {
        case btest::end_reason::completed:
        case btest::end_reason::stopped:
        case btest::end_reason::max_duration:
        case btest::end_reason::quota_exhausted:  // (a server's reasons: never a client's)
        case btest::end_reason::quota_unavailable:
            status = exit_ok;
            return;
        case btest::end_reason::peer_closed:
            ec = btest::make_error_code(btest::errc::peer_closed);
            break;
        case btest::end_reason::failure:
            break;
        }
        status = is_auth_error(ec) ? exit_auth : exit_failure;
        std::string msg = ec.message();
        if (ec == btest::errc::auth_required) msg += ": pass -a/-p";
        if ((ec == btest::errc::not_a_btest_server || ec == btest::errc::peer_closed) && !sum.started && cli &&
            cli->control_bytes_received() == 0)
            msg = "the server closed the connection without a greeting (server busy: max sessions reached? this address not allowed?)";
        if (sum.started && reason == btest::end_reason::peer_closed) msg = "test cut short: " + msg;
        p_.err("btest: " + msg);
        p_.error_object(msg, error_name(ec), status, peer_);
    }

private:
    std::string peer_or_host() const { return peer_.empty() ? opt_.host + ":" + std::to_string(opt_.port) : peer_; }

    const options& opt_;
    printer& p_;
    std::string peer_;
    printer::test_info info_;
};

/// Opens --csv and --syslog; false (after saying why on stderr) when one cannot be opened.
bool open_outputs(const options& opt, csv_file& csv, syslog_sender& syslog) {
    std::string err;
    if (!opt.csv_path.empty() && !csv.open(opt.csv_path, err)) {
        std::fprintf(stderr, "btest: cannot open %s: %s\n", opt.csv_path.c_str(), err.c_str());
        return false;
    }
    if (!opt.syslog.empty() && !syslog.open(opt.syslog, err)) {
        std::fprintf(stderr, "btest: %s\n", err.c_str());
        return false;
    }
    return true;
}

/// -v: which data paths ran (io_counters), one line at the end.
std::string describe(const bta::io_counters& c) {
    return fmt::format("data plane: TCP sent {} B copied, {} B by reference (sendfile, {} fallbacks); received {} reads, "
                       "{} B dropped unread (MSG_TRUNC, {} calls); UDP sent {} datagrams in {} messages ({} GSO) by {} "
                       "calls, received {} datagrams in {} messages ({} GRO) by {} calls; {} timer wake-ups",
                       c.tcp_bytes_copied, c.tcp_bytes_zerocopy, c.tcp_zerocopy_fallbacks, c.tcp_reads,
                       c.tcp_bytes_discarded, c.tcp_discards, c.udp_datagrams_sent, c.udp_send_messages,
                       c.udp_gso_messages, c.udp_send_calls, c.udp_datagrams_received, c.udp_recv_messages,
                       c.udp_gro_messages, c.udp_recv_calls, c.timer_wakeups);
}

int run_client(const options& opt) {
    boost::asio::io_context ioc(1);
    csv_file csv;
    syslog_sender syslog(ioc);
    if (!open_outputs(opt, csv, syslog)) return exit_usage;
    printer p{opt, &csv, &syslog, "client"};

    bta::client_options co;
    co.host = opt.host;
    co.port = opt.port;
    co.family = opt.only_v4 ? bta::family_preference::v4 : opt.only_v6 ? bta::family_preference::v6 : bta::family_preference::any;
    co.trace_control = opt.verbose >= 2;
    apply_data_plane(opt, co.data_plane);
    auto& c = co.session;
    c.proto = opt.udp ? btest::protocol::udp : btest::protocol::tcp;
    c.dir = opt.transmit && opt.receive ? btest::direction::both
            : opt.transmit              ? btest::direction::transmit
                                        : btest::direction::receive;
    c.connection_count = opt.connection_count;
    if (opt.tx_size) {
        c.tx_size = *opt.tx_size;
        if (opt.udp) c.local_udp_tx_size = *opt.tx_size;
    }
    c.local_tx_speed = opt.local_tx_speed.value_or(opt.bandwidth.value_or(0));
    c.remote_tx_speed = opt.remote_tx_speed.value_or(opt.bandwidth.value_or(0));
    c.random_data = opt.random_data;
    c.user = opt.user.value_or("");
    c.password = opt.password.value_or("");
    c.test_duration = std::chrono::duration_cast<btest::duration>(std::chrono::duration<double>(opt.duration_s));
    c.report_interval = opt.interval;
    c.nat_probe = opt.nat;

    Botan::System_RNG sys;
    btest::auth::botan_entropy rng(sys);
    client_app app(opt, p);
    bta::client cli(ioc, co, rng, app);
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    app.cli = &cli;
    app.signals = &signals;
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) cli.stop();
    });
    cli.start();
    ioc.run();
    if (opt.verbose) p.err(describe(cli.counters()));
    return app.status;
}

// ---- server ------------------------------------------------------------------------------

class server_app final : public bta::server_observer {
public:
    server_app(const options& o, printer& p) : opt_(o), p_(p) {}

    void on_listening(const btest::endpoint& at) override {
        if (!opt_.quiet) p_.err("btest server listening on " + bta::to_string(at));
    }
    void on_listen_skipped(const btest::endpoint& at, const std::error_code& ec) override {
        if (!opt_.quiet) p_.err("btest: not listening on " + bta::to_string(at) + ": " + ec.message());
    }
    void on_refused(const btest::endpoint& peer, btest::refusal r) override {
        // A full server is news at any verbosity; the per-address limits (which a scan or a
        // flood trips thousands of times) are session lines, shown with -v.
        if (r != btest::refusal::max_sessions && !opt_.verbose) return;
        const auto who = bta::to_string(peer);
        const char* why = btest::to_string(r);
        if (opt_.json) p_.error_object(std::string("refused: ") + why, "resource_limit", -1, who);
        else if (!opt_.quiet) p_.out("[   -] " + who + " refused: " + why);
    }
    void on_dropped(const bta::connection_view& c, const std::error_code& why) override {
        if (opt_.verbose) p_.err(tag_of(c.id) + bta::to_string(c.peer) + " closed before a test: " + why.message());
    }

    void on_event(const bta::server_test_view& t, const btest::event& ev) override {
        const auto who = bta::to_string(t.peer);
        const std::string tag = tag_of(t.id) + who + " ";
        if (auto* s = std::get_if<btest::test_started>(&ev)) {
            auto& info = tests_[t.id];
            info = {s->proto, s->dir, s->connections, s->user};
            if (!opt_.json && !opt_.quiet)
                p_.out(tag + "test started: " + name(s->proto) + " " + name(s->dir) + ", " + count_text(s->proto, s->connections) +
                       (s->proto == btest::protocol::udp ? ", UDP port " + std::to_string(s->udp_port) : "") +
                       (s->user.empty() ? "" : ", user " + s->user));
            if (p_.syslog && p_.syslog->is_open())
                p_.syslog->send(6, "test-start", "test started: role=server peer=" + who + " protocol=" + name(s->proto) +
                                                     " direction=" + name(s->dir) + " connections=" +
                                                     std::to_string(s->connections) +
                                                     " user=" + (s->user.empty() ? "-" : s->user));
        } else if (auto* a = std::get_if<btest::auth_result>(&ev)) {
            if (!a->ok || opt_.verbose) {
                const std::string line = tag + "authentication " + (a->ok ? "succeeded" : "failed") + " for user \"" + a->user + "\"";
                if (opt_.json || opt_.quiet) p_.err(line);
                else p_.out(line);
            }
            if (p_.syslog && p_.syslog->is_open())
                p_.syslog->send(a->ok ? 6 : 4, a->ok ? "auth-ok" : "auth-fail",
                                std::string("authentication ") + (a->ok ? "succeeded" : "failed") + ": role=server peer=" +
                                    who + " user=" + a->user);
        } else if (auto* r = std::get_if<btest::interval_report>(&ev)) {
            if (opt_.verbose) {
                const auto it = tests_.find(t.id);
                const auto proto = it != tests_.end() ? it->second.proto : btest::protocol::tcp;
                p_.interval(*r, proto, tag_of(t.id), t.id, who, !opt_.quiet);
            }
        } else if (auto* n = std::get_if<btest::notice>(&ev)) {
            if (opt_.verbose) p_.err(tag + n->text);
        } else if (auto* c = std::get_if<btest::session_closed>(&ev)) {
            const auto sum = t.session.summary();
            auto it = tests_.find(t.id);
            if (sum.started && it != tests_.end()) {
                if (!opt_.json && !opt_.quiet) {
                    std::string line = tag + "test ended: " + btest::to_string(c->reason);
                    if (c->error) line += " (" + c->error.message() + ")";
                    line += fmt::format(", {:.2f} s", seconds(sum.elapsed));
                    if (sum.tx.active) line += fmt::format(", TX {:.1f} MB {:.2f} Mbit/s", mbytes(sum.tx.bytes), mbit(sum.tx.average_bps));
                    if (sum.rx.active) {
                        line += fmt::format(", RX {:.1f} MB {:.2f} Mbit/s", mbytes(sum.rx.bytes), mbit(sum.rx.average_bps));
                        if (it->second.proto == btest::protocol::udp) line += ", lost " + std::to_string(sum.rx.lost_packets);
                    }
                    p_.out(line);
                }
                const bool text = opt_.verbose > 0 && !opt_.quiet;
                p_.summary(sum, it->second, t.id, who, tag_of(t.id), text,
                           text ? printer::per_connection(t.session, it->second.proto, tag_of(t.id)) : std::vector<std::string>{});
                tests_.erase(it);
            } else if (opt_.verbose) {
                p_.err(tag + "closed before a test: " + (c->error ? c->error.message() : btest::to_string(c->reason)));
            }
        }
    }

    void on_control(const bta::connection_view& t, std::uint32_t conn, bool sent, std::span<const std::byte> b) override {
        if (opt_.verbose < 2) return;
        const std::string tag = tag_of(t.id) + "[conn " + std::to_string(conn) + "] " + (sent ? ">> " : "<< ");
        std::string text = tag + std::to_string(b.size()) + " bytes\n" + hex_dump(tag, b);
        text.pop_back();
        p_.err(text);
    }

private:
    static std::string tag_of(std::uint64_t id) { return fmt::format("[#{:3}] ", id); }
    const options& opt_;
    printer& p_;
    std::map<std::uint64_t, printer::test_info> tests_;
};

/// Every test holds a descriptor per TCP connection and UDP socket (two for a UDP test, one
/// per connection of a TCP test): a server for thousands of sessions outgrows the usual soft
/// limit of 1024. The soft limit may be raised to the hard one without privilege; do so when
/// --max-sessions could need more, and say what happened (empty: nothing to say).
std::string raise_descriptor_limit(std::size_t max_sessions) {
    const rlim_t want = static_cast<rlim_t>(max_sessions) * 2 + 64;
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= want) return {};
    const rlim_t before = r.rlim_cur;
    if (r.rlim_max > r.rlim_cur) {
        r.rlim_cur = r.rlim_max == RLIM_INFINITY ? want : std::max(want, std::min(r.rlim_max, want * 2));
        if (r.rlim_max != RLIM_INFINITY) r.rlim_cur = std::min(r.rlim_cur, r.rlim_max);
        if (::setrlimit(RLIMIT_NOFILE, &r) != 0) r.rlim_cur = before;
    }
    std::string msg;
    if (r.rlim_cur != before) msg = fmt::format("btest: descriptor limit raised from {} to {}", before, r.rlim_cur);
    if (r.rlim_cur < want)
        msg += fmt::format("{}btest: warning: --max-sessions {} may need {} descriptors, the limit is {} (hard {}): "
                           "raise it (ulimit -Hn, LimitNOFILE=)",
                           msg.empty() ? "" : "\n", max_sessions, want, r.rlim_cur, r.rlim_max);
    return msg;
}

int run_server(const options& opt) {
    boost::asio::io_context ioc(1);
    csv_file csv;
    syslog_sender syslog(ioc);
    if (!open_outputs(opt, csv, syslog)) return exit_usage;
    printer p{opt, &csv, &syslog, "server"};
    if (const auto msg = raise_descriptor_limit(opt.max_sessions); !msg.empty() && !opt.quiet) p.err(msg);

    auto so = server_options_from(opt, opt, opt, opt,
                                  opt.auth.value_or(opt.user ? btest::auth_method::ec_srp5 : btest::auth_method::none));
    // Every admitted test may be a UDP test holding one port block.
    so.udp_ports.max_blocks = std::max<std::size_t>(so.udp_ports.max_blocks, opt.max_sessions);

    Botan::System_RNG sys;
    btest::auth::botan_entropy rng(sys);
    btest::auth::memory_credentials creds(rng);
    if (opt.user) creds.add(*opt.user, opt.password.value_or(""));

    server_app app(opt, p);
    bta::server srv(ioc, so, rng, &creds, app);
    if (auto ec = srv.start()) {
        const std::string msg = "cannot listen on port " + std::to_string(opt.port) + ": " + ec.message();
        std::fprintf(stderr, "btest: %s\n", msg.c_str());
        p.error_object(msg, "listen_failed", exit_failure, "");
        return exit_failure;
    }
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (!opt.quiet) p.err("btest: stopping");
        srv.stop();
    });
    ioc.run();
    if (opt.verbose) p.err(describe(srv.counters()));
    return exit_ok;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    // `btest probe ...`: the Prometheus exporter mode, with options of its own (probe/).
    if (argc > 1 && std::string_view(argv[1]) == "probe") {
#ifdef BTEST_WITH_PROBE
        return btest_probe::probe_main(argc - 1, argv + 1);
#else
        std::fprintf(stderr, "btest: probe mode is not built into this binary (a static build)\n");
        return exit_usage;
#endif
    }
    command_line cl;
    auto usage = [](const std::string& what) {
        std::fprintf(stderr, "btest: %s\nTry 'btest --help'.\n", what.c_str());
        return exit_usage;
    };
    try {
        const options& opt = cl.parse(argc, argv);
        if (opt.help) {
            std::fputs(cl.help().c_str(), stdout);
            return exit_ok;
        }
        if (opt.help_man) {
            std::fputs(cl.man_options().c_str(), stdout);
            return exit_ok;
        }
        if (opt.version) {
            std::fputs(version_text("btest").c_str(), stdout);
            return exit_ok;
        }
        return opt.mode == run_mode::server ? run_server(opt) : run_client(opt);
    } catch (const usage_error& e) {
        return usage(e.what());
    } catch (const CLI::ParseError& e) {
        return usage(command_line::usage_message(e));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "btest: %s\n", e.what());
        return exit_failure;
    }
}
