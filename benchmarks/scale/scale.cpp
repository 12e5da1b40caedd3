// Scale load: M concurrent rate-limited btest clients (the kit + btest::asio, many sessions on
// a few io_contexts in this process) against one `btest -s` process, TCP and UDP mixed, each
// direction represented. Reports the server's RSS, descriptors and CPU while every session
// runs, and the spread of the per-session achieved rates against the requested ones.
//
//   btest_scale --btest build/apps/btest -m 1000 --duration 10
//
// Achieved rate of a session: what its receiver counted — the client's own receive average
// for server→client tests, the server's STATUS reports (bytes per second received, §10.1) for
// client→server tests; both for "both" (each direction is a sample).
//
// The clients connect from 127.0.0.1 … 127.0.0.K (--ips), so that the server's by-IP routing
// spreads them over its threads. The program raises RLIMIT_NOFILE for itself; the server gets
// the soft limit this program was started with and raises its own. A probe measures the time
// to HELLO of new connections while the load runs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/core/entropy.hpp"
#include "btest/transport/asio/client.hpp"

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

struct options {
    std::string btest;
    std::string host = "127.0.0.1";
    std::uint16_t port = 17000;
    std::size_t m = 100;
    double duration = 10;
    std::uint64_t tcp_rate = 2'000'000;
    std::uint64_t udp_rate = 1'000'000;
    std::uint16_t tcp_chunk = 8192;
    double udp_share = 0.5;
    std::size_t ips = 16;
    std::size_t client_threads = 1;
    std::string server_threads;   // empty: the server's default
    double ramp = 2.0;            // seconds over which the clients start
    std::string json_out;
};

[[noreturn]] void usage() {
    std::fputs(
        "usage: btest_scale --btest PATH [-m M] [--duration S] [--tcp-rate BPS] [--udp-rate BPS]\n"
        "                   [--tcp-chunk BYTES] [--udp-share 0..1] [--ips K] [--client-threads N]\n"
        "                   [--server-threads N] [--ramp S] [--port P] [--json FILE]\n"
        "       btest_scale --connect HOST:PORT ...   (a server already running; no server stats)\n",
        stderr);
    std::exit(1);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto v = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "--btest") o.btest = v();
        else if (a == "--connect") {
            auto s = v();
            auto c = s.rfind(':');
            if (c == std::string::npos) usage();
            o.host = s.substr(0, c);
            o.port = static_cast<std::uint16_t>(std::stoi(s.substr(c + 1)));
        }
        else if (a == "-m") o.m = std::stoul(v());
        else if (a == "--duration") o.duration = std::stod(v());
        else if (a == "--tcp-rate") o.tcp_rate = std::stoull(v());
        else if (a == "--udp-rate") o.udp_rate = std::stoull(v());
        else if (a == "--tcp-chunk") o.tcp_chunk = static_cast<std::uint16_t>(std::stoul(v()));
        else if (a == "--udp-share") o.udp_share = std::stod(v());
        else if (a == "--ips") o.ips = std::max<std::size_t>(1, std::stoul(v()));
        else if (a == "--client-threads") o.client_threads = std::max<std::size_t>(1, std::stoul(v()));
        else if (a == "--server-threads") o.server_threads = v();
        else if (a == "--ramp") o.ramp = std::stod(v());
        else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoul(v()));
        else if (a == "--json") o.json_out = v();
        else usage();
    }
    return o;
}

/// Raises this process's descriptor limit to the hard one; returns the soft limit it had (the
/// server gets that one back: it raises its own).
rlim_t raise_nofile() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
    const rlim_t before = r.rlim_cur;
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
    return before;
}
rlim_t original_nofile = 0;

// ---- the server process --------------------------------------------------------------------

struct proc_sample {
    double rss_mib = 0;
    double hwm_mib = 0;
    std::size_t fds = 0;
    double cpu_s = 0;
    std::size_t threads = 0;
};

std::optional<proc_sample> sample(pid_t pid) {
    proc_sample s;
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    if (!st) return std::nullopt;
    std::string line;
    while (std::getline(st, line)) {
        auto kb = [&](const char* key) -> std::optional<double> {
            if (line.rfind(key, 0) != 0) return std::nullopt;
            return std::stod(line.substr(std::strlen(key))) / 1024.0;
        };
        if (auto v = kb("VmRSS:")) s.rss_mib = *v;
        if (auto v = kb("VmHWM:")) s.hwm_mib = *v;
        if (line.rfind("Threads:", 0) == 0) s.threads = std::stoul(line.substr(8));
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), {});
    auto rp = all.rfind(')');
    if (rp != std::string::npos) {
        std::istringstream in(all.substr(rp + 2));
        std::string f;
        std::vector<std::string> fields;
        while (in >> f) fields.push_back(f);
        if (fields.size() > 13)
            s.cpu_s = double(std::stoull(fields[11]) + std::stoull(fields[12])) / double(sysconf(_SC_CLK_TCK));
    }
    if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') ++s.fds;
        closedir(d);
    }
    return s;
}

/// The server's limits, sized to the load this run offers: every session is one TCP connection
/// (connection count 1), the clients come from `ips` addresses in turn, so no address holds more
/// than ceil(M / ips) connections at once; M sessions plus a margin for the ramp's overlap.
struct server_limits {
    std::size_t max_sessions = 0;
    std::size_t max_conn_per_ip = 0;
};
server_limits limits_for(const options& o) {
    const std::size_t ips = std::max<std::size_t>(1, std::min(o.ips, o.m));
    return {o.m + 64, (o.m + ips - 1) / ips};
}

std::vector<std::string> server_args(const options& o) {
    const auto l = limits_for(o);
    std::vector<std::string> args = {o.btest, "-s", "-P", std::to_string(o.port), "--listen", "127.0.0.1",
                                     "--listen6", "none", "--max-sessions", std::to_string(l.max_sessions),
                                     "--max-conn-per-ip", std::to_string(l.max_conn_per_ip),
                                     "--udp-port-start", "30000", "--udp-port-end", "50000"};
    if (!o.server_threads.empty()) {
        args.push_back("--threads");
        args.push_back(o.server_threads);
    }
    return args;
}

std::string server_log(const options& o) { return "/tmp/btest_scale_server_" + std::to_string(o.port) + ".log"; }

pid_t start_server(const options& o) {
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(2);
    }
    if (pid == 0) {
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        // Its log (stderr) is kept for the report; the descriptor limit it raises itself.
        const int log = open(server_log(o).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log >= 0) dup2(log, 2);
        rlimit r{};
        if (original_nofile && getrlimit(RLIMIT_NOFILE, &r) == 0) {
            r.rlim_cur = original_nofile;
            setrlimit(RLIMIT_NOFILE, &r);
        }
        std::vector<std::string> args = server_args(o);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(o.btest.c_str(), argv.data());
        std::perror("execv");
        _exit(127);
    }
    return pid;
}

// ---- the clients ---------------------------------------------------------------------------

struct load_client final : btest::asio::client_observer {
    btest::protocol proto{};
    btest::direction dir{};
    std::uint64_t rate = 0;
    bool done = false;
    bool started = false;
    std::error_code error;
    std::optional<btest::test_summary> summary;
    std::unique_ptr<btest::seeded_entropy> rng;
    std::unique_ptr<btest::asio::client> client;

    void on_event(const btest::client_session&, const btest::event& ev) override {
        if (std::get_if<btest::test_started>(&ev)) started = true;
    }
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string&) override {
        done = true;
        error = ec;
        if (s) summary = s->summary();
    }
};

/// Time to HELLO: how long a new client waits from connect() to the server's HELLO (4 bytes,
/// PROTOCOL §4) while the load runs — an accept stall or a slow front end shows here. One probe
/// at a time, every `every`, from 127.0.1.1 (an address of its own, outside the load's per-IP
/// counts); each closes without a COMMAND. Milliseconds, with the second of the run it started.
struct hello_probe {
    std::vector<std::pair<double, double>> samples;  // (start s, ms); ms < 0: no HELLO within 5 s
    void run(const options& o, std::atomic<bool>& running, std::chrono::steady_clock::time_point t0,
             std::chrono::milliseconds every) {
        while (running) {
            const auto start = std::chrono::steady_clock::now();
            const double at = std::chrono::duration<double>(start - t0).count();
            samples.emplace_back(at, once(o));
            std::this_thread::sleep_until(start + every);
        }
    }
    static double once(const options& o) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        sockaddr_in src{}, dst{};
        src.sin_family = dst.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000101);  // 127.0.1.1
        dst.sin_addr.s_addr = htonl(0x7f000001);
        dst.sin_port = htons(o.port);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        double ms = -1;
        const auto t = std::chrono::steady_clock::now();
        if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0 &&
            ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
            unsigned char hello[4];
            std::size_t got = 0;
            while (got < 4) {
                const ssize_t n = ::recv(fd, hello + got, 4 - got, 0);
                if (n <= 0) break;
                got += static_cast<std::size_t>(n);
            }
            if (got == 4) ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
        }
        ::close(fd);
        return ms;
    }
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double idx = p * double(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(idx));
    const auto hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    options o = parse(argc, argv);
    original_nofile = raise_nofile();
    pid_t server = -1;
    if (!o.btest.empty()) {
        // Say what the server was started with: its limits must admit every session offered.
        std::string cmd = "btest_scale: server:";
        for (const auto& a : server_args(o)) cmd += " " + a;
        std::printf("%s\n", cmd.c_str());
        std::fflush(stdout);
        server = start_server(o);
        std::this_thread::sleep_for(700ms);
        if (waitpid(server, nullptr, WNOHANG) == server) {
            std::fprintf(stderr, "btest_scale: the server did not start\n");
            return 2;
        }
    }

    // Clients: round-robin over io_contexts, directions and protocols mixed.
    std::vector<std::unique_ptr<net::io_context>> iocs;
    for (std::size_t t = 0; t < o.client_threads; ++t) iocs.push_back(std::make_unique<net::io_context>(1));
    std::vector<std::unique_ptr<load_client>> clients;
    const btest::direction dirs[] = {btest::direction::transmit, btest::direction::receive, btest::direction::both};
    const auto n_udp = static_cast<std::size_t>(std::llround(double(o.m) * o.udp_share));
    for (std::size_t i = 0; i < o.m; ++i) {
        auto c = std::make_unique<load_client>();
        const bool udp = (i * n_udp) / std::max<std::size_t>(o.m, 1) != ((i + 1) * n_udp) / std::max<std::size_t>(o.m, 1);
        c->proto = udp ? btest::protocol::udp : btest::protocol::tcp;
        c->dir = dirs[(i / 2) % 3];
        c->rate = udp ? o.udp_rate : o.tcp_rate;
        c->rng = std::make_unique<btest::seeded_entropy>(0x5ca1e + i);
        btest::asio::client_options co;
        co.host = o.host;
        co.port = o.port;
        co.sample_cpu = false;
        co.connect_timeout = 30s;
        co.data_plane.udp_socket_buffer = 256 * 1024;
        if (o.host == "127.0.0.1")
            co.local_address = btest::ip_address::v4(127, 0, 0, static_cast<std::uint8_t>(1 + i % o.ips));
        auto& s = co.session;
        s.proto = c->proto;
        s.dir = c->dir;
        s.local_tx_speed = c->rate;
        s.remote_tx_speed = c->rate;
        s.tx_size = udp ? 1500 : o.tcp_chunk;
        s.test_duration = std::chrono::duration_cast<btest::duration>(std::chrono::duration<double>(o.duration));
        s.limits.handshake = 30s;
        s.limits.idle = 30s;
        c->client = std::make_unique<btest::asio::client>(*iocs[i % iocs.size()], std::move(co), *c->rng, *c);
        clients.push_back(std::move(c));
    }
    // Staggered starts over the ramp (a burst of M SYNs would only measure the accept queue).
    for (std::size_t i = 0; i < clients.size(); ++i) {
        auto& ioc = *iocs[i % iocs.size()];
        auto t = std::make_shared<net::steady_timer>(
            ioc, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(o.ramp * double(i) / double(std::max<std::size_t>(clients.size(), 1)))));
        t->async_wait([t, c = clients[i]->client.get()](const boost::system::error_code& ec) {
            if (!ec) c->start();
        });
    }

    // Server samples once a second from a side thread while the clients run.
    std::vector<std::pair<double, proc_sample>> samples;
    std::atomic<bool> running{true};
    const auto t0 = std::chrono::steady_clock::now();
    std::thread sampler([&] {
        while (running && server > 0) {
            if (auto s = sample(server)) {
                const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                samples.emplace_back(t, *s);
            }
            std::this_thread::sleep_for(1s);
        }
    });
    hello_probe probe;
    std::thread prober([&] {
        if (server > 0 || o.btest.empty()) probe.run(o, running, t0, 50ms);
    });
    std::vector<std::thread> threads;
    for (std::size_t t = 1; t < iocs.size(); ++t) threads.emplace_back([&, t] { iocs[t]->run(); });
    iocs[0]->run();
    for (auto& t : threads) t.join();
    running = false;
    sampler.join();
    prober.join();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto final_sample = server > 0 ? sample(server) : std::nullopt;
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, nullptr, 0);
    }

    // Per-session achieved rates.
    std::vector<double> errs;  // achieved / requested − 1, one per active direction
    std::map<std::string, std::vector<double>> groups;  // the same by protocol, direction and receiver
    std::size_t completed = 0, failed = 0, outside = 0;
    std::map<std::string, std::size_t> why_failed;  // "udp: <error>" → sessions
    for (auto& c : clients) {
        const std::string proto = c->proto == btest::protocol::udp ? "udp" : "tcp";
        if (!c->summary || !c->summary->started || c->error) {
            ++failed;
            ++why_failed[proto + (c->summary && c->summary->started ? " after start: " : " before start: ") +
                         (c->error ? c->error.message() : "no error")];
            continue;
        }
        const auto& s = *c->summary;
        const bool ok = s.reason == btest::end_reason::completed || s.reason == btest::end_reason::max_duration;
        if (!ok) {
            ++failed;
            ++why_failed[proto + ": ended " + std::to_string(static_cast<int>(s.reason.value_or(btest::end_reason::failure)))];
            continue;
        }
        ++completed;
        const double req = double(c->rate);
        const std::string tag = std::string(c->proto == btest::protocol::udp ? "udp " : "tcp ") +
                                (c->dir == btest::direction::both ? "both " : "") ;
        if (s.rx.active) {
            errs.push_back(double(s.rx.average_bps) / req - 1);
            groups[tag + "server->client (client counts)"].push_back(errs.back());
        }
        if (s.tx.active && s.status_received > 0) {
            // TCP: the server reports on each connection; UDP: once a second on the control one.
            const double per_s = double(s.status_bytes_received) * 8 / double(s.status_received);
            errs.push_back(per_s / req - 1);
            groups[tag + "client->server (server STATUS)"].push_back(errs.back());
        }
    }
    for (double e : errs) outside += std::abs(e) > 0.10 ? 1 : 0;

    // The server while every session ran: samples from the end of the ramp to the end of the
    // test (minus a second at each edge).
    double rss_max = 0, hwm = 0, cpu_pct = 0;
    std::size_t fds_max = 0, threads_n = 0;
    std::optional<std::pair<double, double>> cpu_first, cpu_last;
    for (const auto& [t, s] : samples) {
        rss_max = std::max(rss_max, s.rss_mib);
        hwm = std::max(hwm, s.hwm_mib);
        fds_max = std::max(fds_max, s.fds);
        threads_n = std::max(threads_n, s.threads);
        if (t >= o.ramp + 1 && t <= o.ramp + o.duration - 1) {
            if (!cpu_first) cpu_first = {t, s.cpu_s};
            cpu_last = {t, s.cpu_s};
        }
    }
    if (cpu_first && cpu_last && cpu_last->first > cpu_first->first)
        cpu_pct = 100 * (cpu_last->second - cpu_first->second) / (cpu_last->first - cpu_first->first);
    double offered = 0;
    for (auto& c : clients)
        offered += double(c->rate) * (c->dir == btest::direction::both ? 2 : 1);

    std::printf("scale: M=%zu sessions (%zu UDP, %zu TCP; transmit/receive/both mixed), %.0f s each, from %zu source IPs\n",
                o.m, n_udp, o.m - n_udp, o.duration, o.ips);
    std::printf("  requested: TCP %.2f Mbit/s, UDP %.2f Mbit/s per direction; offered total %.1f Mbit/s\n",
                double(o.tcp_rate) / 1e6, double(o.udp_rate) / 1e6, offered / 1e6);
    std::printf("  sessions: %zu completed, %zu failed; wall %.1f s\n", completed, failed, wall);
    for (const auto& [why, n] : why_failed) std::printf("    failed: %zu x %s\n", n, why.c_str());
    if (!errs.empty()) {
        std::vector<double> pct;
        for (double e : errs) pct.push_back(100 * e);
        std::printf("  achieved/requested - 1 over %zu session directions: min %+.2f%%  p1 %+.2f%%  median %+.2f%%  "
                    "p99 %+.2f%%  max %+.2f%%;  outside +-10%%: %zu\n",
                    errs.size(), percentile(pct, 0), percentile(pct, 0.01), percentile(pct, 0.5), percentile(pct, 0.99),
                    percentile(pct, 1), outside);
    }
    for (auto& [g, v] : groups) {
        for (auto& x : v) x *= 100;
        std::printf("    %-44s n=%4zu  min %+6.2f%%  median %+6.2f%%  max %+6.2f%%\n", g.c_str(), v.size(), percentile(v, 0),
                    percentile(v, 0.5), percentile(v, 1));
    }
    if (server > 0)
        std::printf("  server: RSS max %.1f MiB (high-water %.1f MiB), fds max %zu, threads %zu, CPU %.1f%% of one core "
                    "while all ran\n",
                    rss_max, final_sample ? std::max(hwm, final_sample->hwm_mib) : hwm, fds_max, threads_n, cpu_pct);
    // Time to HELLO, while the clients were starting (the ramp) and once all of them ran.
    double hello_p99_all = 0;
    for (int phase = 0; phase < 2; ++phase) {
        std::vector<double> ms;
        std::size_t lost = 0;
        for (const auto& [at, v] : probe.samples) {
            const bool in_ramp = at < o.ramp;
            if ((phase == 0) != in_ramp || at > o.ramp + o.duration - 0.5) continue;
            if (v < 0) ++lost;
            else ms.push_back(v);
        }
        if (ms.empty() && lost == 0) continue;
        if (phase == 1) hello_p99_all = percentile(ms, 0.99);
        std::printf("  time to HELLO %s: n=%zu  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  no HELLO in 5 s: %zu\n",
                    phase == 0 ? "during the ramp  " : "with all running", ms.size() + lost, percentile(ms, 0.5),
                    percentile(ms, 0.9), percentile(ms, 0.99), percentile(ms, 1), lost);
    }
    if (server > 0) {
        std::ifstream log(server_log(o));
        for (std::string line; std::getline(log, line);)
            if (line.find("descriptor") != std::string::npos) std::printf("  server said: %s\n", line.c_str());
    }
    if (!o.json_out.empty()) {
        std::ofstream j(o.json_out);
        j << "{\"m\":" << o.m << ",\"udp\":" << n_udp << ",\"completed\":" << completed << ",\"failed\":" << failed
          << ",\"outside_10pct\":" << outside << ",\"directions\":" << errs.size()
          << ",\"err_min_pct\":" << 100 * percentile(errs, 0) << ",\"err_median_pct\":" << 100 * percentile(errs, 0.5)
          << ",\"err_max_pct\":" << 100 * percentile(errs, 1) << ",\"rss_max_mib\":" << rss_max
          << ",\"fds_max\":" << fds_max << ",\"cpu_pct\":" << cpu_pct << ",\"hello_p99_ms\":" << hello_p99_all << "}\n";
    }
    return failed == 0 ? 0 : 3;
}
