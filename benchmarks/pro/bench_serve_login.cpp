// End-to-end EC-SRP5 logins per second of the public server against the plain one, in the same
// run: `btest-server-pro serve` (its account in an SQLite file; every test admitted by the
// ledger and written to the history) and `btest -s -a/-p` (one account in memory), each a real
// process on loopback, each offered the same load in alternating rounds. A login here is a
// whole test start — connect, HELLO, COMMAND, EC-SRP5 MSG1…MSG4, the OK word — and the client
// stops the test as soon as it has started.
//
//   btest_bench_serve_login --btest build/apps/btest --pro build/apps/btest-server-pro
//                           [--seconds 3] [--concurrency 32] [--rounds 5] [--ip-quota BYTES]
//
// --ip-quota gives the public server a daily IP quota, so that every test also takes and
// returns a quota lease (the configuration of a real public server).
//
// Prints logins/s per round and server, the medians, and the ratio pro / btest -s (target
// ≥ 0.8). The clients run in this process on one thread, so they compete for the same cores as
// the server: the ratio is the figure to read, not the absolute rates.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/core/entropy.hpp"
#include "btest/transport/asio/client.hpp"

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

struct options {
    std::string btest, pro;
    double seconds = 3;
    std::size_t concurrency = 32;  // enough to keep both servers busy: a sustained rate
    int rounds = 5;
    std::string ip_quota;
};

[[noreturn]] void usage() {
    std::fputs("usage: btest_bench_serve_login --btest PATH --pro PATH [--seconds S] [--concurrency C] [--rounds R]\n"
               "                               [--ip-quota BYTES]\n",
               stderr);
    std::exit(1);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto v = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "--btest") o.btest = v();
        else if (a == "--pro") o.pro = v();
        else if (a == "--seconds") o.seconds = std::stod(v());
        else if (a == "--concurrency") o.concurrency = std::max<std::size_t>(1, std::stoul(v()));
        else if (a == "--rounds") o.rounds = std::max(1, std::stoi(v()));
        else if (a == "--ip-quota") o.ip_quota = v();
        else usage();
    }
    if (o.btest.empty() || o.pro.empty()) usage();
    return o;
}

pid_t spawn(const std::vector<std::string>& args, bool quiet) {
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(2);
    }
    if (pid == 0) {
        if (quiet) {
            const int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
        }
        std::vector<std::string> copy = args;
        std::vector<char*> argv;
        for (auto& a : copy) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        std::perror("execv");
        _exit(127);
    }
    return pid;
}

int run_to_end(const std::vector<std::string>& args) {
    const pid_t pid = spawn(args, true);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/// Waits until something accepts on 127.0.0.1:port (at most 10 s).
bool wait_listening(std::uint16_t port) {
    for (int i = 0; i < 1000; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        close(fd);
        if (ok) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

/// `concurrency` clients logging in back to back for `seconds`; logins per second.
class load final {
public:
    load(std::uint16_t port, const options& o) : port_(port), o_(o) {}

    double run() {
        net::io_context ioc(1);
        ioc_ = &ioc;
        end_ = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                      std::chrono::duration<double>(o_.seconds));
        slots_.clear();
        for (std::size_t i = 0; i < o_.concurrency; ++i) slots_.push_back(std::make_unique<slot>(*this, i));
        const auto t0 = std::chrono::steady_clock::now();
        for (auto& s : slots_) s->launch();
        ioc.run();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return double(ok_) / wall;
    }
    std::size_t failed() const { return failed_; }

private:
    struct slot final : btest::asio::client_observer {
        load& l;
        std::size_t index;
        btest::seeded_entropy rng;
        std::unique_ptr<btest::asio::client> client;
        bool started = false;

        slot(load& owner, std::size_t i) : l(owner), index(i), rng(0x10c1 + i) {}

        void launch() {
            started = false;
            btest::asio::client_options co;
            co.host = "127.0.0.1";
            co.port = l.port_;
            co.sample_cpu = false;
            // Spread over 127.0.0.x: the server routes sessions to its threads by address.
            co.local_address = btest::ip_address::v4(127, 0, 0, static_cast<std::uint8_t>(1 + index % 8));
            co.session.dir = btest::direction::receive;
            co.session.remote_tx_speed = 1'000'000;
            co.session.user = "bench";
            co.session.password = "bench-password";
            client = std::make_unique<btest::asio::client>(*l.ioc_, std::move(co), rng, *this);
            client->start();
        }
        void on_event(const btest::client_session&, const btest::event& ev) override {
            if (!std::holds_alternative<btest::test_started>(ev) || started) return;
            started = true;
            net::post(*l.ioc_, [this] { client->stop(); });
        }
        void on_finished(const btest::client_session*, const std::error_code&, const std::string&) override {
            if (started) ++l.ok_;
            else ++l.failed_;
            // Replaced after this callback returns (the client is still on the stack here).
            net::post(*l.ioc_, [this] {
                if (std::chrono::steady_clock::now() < l.end_) launch();
                else client.reset();
            });
        }
    };

    std::uint16_t port_;
    const options& o_;
    net::io_context* ioc_ = nullptr;
    std::chrono::steady_clock::time_point end_;
    std::vector<std::unique_ptr<slot>> slots_;
    std::size_t ok_ = 0, failed_ = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const options o = parse(argc, argv);
    char dir_tmpl[] = "/tmp/btest_bench_login_XXXXXX";
    if (!mkdtemp(dir_tmpl)) return 2;
    const std::string dir = dir_tmpl;
    const std::string db = "sqlite:" + dir + "/bench.db";
    if (run_to_end({o.pro, "user", "add", "bench", "-p", "bench-password", "--db", db}) != 0) {
        std::fprintf(stderr, "bench: user add failed\n");
        return 2;
    }
    // The same limits on both: nothing but the login path differs.
    const std::vector<std::string> limits = {"-q", "--listen", "127.0.0.1", "--listen6", "none", "--max-sessions", "1000",
                                             "--max-conn-per-ip", "0", "--max-auth-failures", "0"};
    std::vector<std::string> plain = {o.btest, "-s", "-P", "17200", "-a", "bench", "-p", "bench-password"};
    std::vector<std::string> pro = {o.pro, "serve", "-P", "17201", "--db", db};
    plain.insert(plain.end(), limits.begin(), limits.end());
    pro.insert(pro.end(), limits.begin(), limits.end());
    if (!o.ip_quota.empty()) {
        pro.push_back("--ip-quota-daily");
        pro.push_back(o.ip_quota);
    }
    const pid_t plain_pid = spawn(plain, true);
    const pid_t pro_pid = spawn(pro, true);
    int status = 0;
    if (!wait_listening(17200) || !wait_listening(17201)) {
        std::fprintf(stderr, "bench: a server did not start\n");
        status = 2;
    } else {
        std::printf("EC-SRP5 logins (whole test starts), %zu clients back to back, %.1f s per round\n", o.concurrency,
                    o.seconds);
        std::vector<double> plain_rates, pro_rates;
        std::size_t failures = 0;
        for (int r = 1; r <= o.rounds; ++r) {
            for (int which = 0; which < 2; ++which) {
                // Alternate which goes first, so that drift on a shared machine hits both.
                const bool is_pro = (which == 0) == (r % 2 == 0);
                load l(is_pro ? 17201 : 17200, o);
                const double rate = l.run();
                failures += l.failed();
                (is_pro ? pro_rates : plain_rates).push_back(rate);
                std::printf("  round %d  %-34s %8.1f logins/s%s\n", r,
                            is_pro ? (o.ip_quota.empty() ? "btest-server-pro serve (SQLite)" : "btest-server-pro serve (SQLite, IP quota)")
                                   : "btest -s -a/-p (memory)",
                            rate,
                            l.failed() ? "  (some failed)" : "");
                std::fflush(stdout);
            }
        }
        const double a = median(plain_rates), b = median(pro_rates);
        std::printf("median  btest -s -a/-p:            %8.1f logins/s\n", a);
        std::printf("median  btest-server-pro serve:    %8.1f logins/s\n", b);
        std::printf("ratio   pro / btest -s:            %8.3f   (target >= 0.8)\n", a > 0 ? b / a : 0.0);
        if (failures) {
            std::printf("failed logins: %zu\n", failures);
            status = 1;
        }
    }
    kill(plain_pid, SIGTERM);
    kill(pro_pid, SIGTERM);
    waitpid(plain_pid, nullptr, 0);
    waitpid(pro_pid, nullptr, 0);
    std::system(("rm -rf '" + dir + "'").c_str());
    return status;
}
