// Real-socket test helpers: run the Asio server and client in-process on one io_context over
// loopback, and spawn the btest binary with its output in files. Every run is bounded in time.
//
// Ports: each test owns a slot; slot k uses TCP port 14000 + k and UDP ports from 20000 + 300·k
// (server P … and client P+256 …), so tests can run in parallel (ctest -j).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/transport/asio/client.hpp"
#include "btest/transport/asio/server.hpp"

namespace loopback {

namespace net = boost::asio;
using namespace std::chrono_literals;

struct ports {
    std::uint16_t tcp;
    std::uint16_t udp_base;
};
inline ports slot(unsigned k) {
    return {static_cast<std::uint16_t>(14000 + k), static_cast<std::uint16_t>(20000 + 300 * k)};
}

/// Is [::1] usable here? (Some CI sandboxes have no IPv6 loopback.)
inline bool ipv6_available() {
    net::io_context ioc;
    boost::system::error_code ec;
    net::ip::tcp::acceptor a(ioc);
    a.open(net::ip::tcp::v6(), ec);
    if (!ec) a.bind({net::ip::make_address("::1"), 0}, ec);
    return !ec;
}

/// Collects what the server tells its app.
struct server_log final : btest::asio::server_observer {
    struct test {
        btest::test_summary summary;
        std::optional<btest::test_started> started;
        std::vector<btest::interval_report> reports;
        bool closed = false;
    };
    std::map<std::uint64_t, test> tests;
    std::vector<btest::auth_result> auths;
    std::size_t refused = 0;
    std::size_t closed_tests = 0;

    void on_refused(const btest::endpoint&, const char*) override { ++refused; }
    void on_event(const btest::asio::server_test_view& t, const btest::event& ev) override {
        auto& e = tests[t.id];
        if (auto* s = std::get_if<btest::test_started>(&ev)) e.started = *s;
        if (auto* r = std::get_if<btest::interval_report>(&ev)) e.reports.push_back(*r);
        if (auto* a = std::get_if<btest::auth_result>(&ev)) auths.push_back(*a);
        if (std::get_if<btest::session_closed>(&ev)) {
            e.summary = t.session.summary();
            e.closed = true;
            if (e.started) ++closed_tests;
        }
    }
    /// Finished tests (sessions that got past the handshake).
    std::vector<const test*> finished() const {
        std::vector<const test*> v;
        for (const auto& [id, t] : tests)
            if (t.started && t.closed) v.push_back(&t);
        return v;
    }
};

/// Collects what one client tells its app.
struct client_log final : btest::asio::client_observer {
    bool done = false;
    std::error_code connect_error;
    std::optional<btest::test_summary> summary;
    std::vector<btest::interval_report> reports;
    std::optional<btest::test_started> started;
    std::function<void()> on_done;

    void on_event(const btest::client_session&, const btest::event& ev) override {
        if (auto* r = std::get_if<btest::interval_report>(&ev)) reports.push_back(*r);
        if (auto* s = std::get_if<btest::test_started>(&ev)) started = *s;
    }
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string&) override {
        done = true;
        connect_error = ec;
        if (s) summary = s->summary();
        if (on_done) on_done();
    }
};

/// One server and any number of clients on one io_context (one thread), over loopback.
class rig {
public:
    rig(btest::asio::server_options so, std::vector<std::pair<std::string, std::string>> users = {})
        : rng_(0x5eed), creds_(rng_) {
        for (const auto& [u, p] : users) creds_.add(u, p);
        so.sample_cpu = true;
        server_ = std::make_unique<btest::asio::server>(ioc_, std::move(so), rng_, &creds_, server_log_);
    }
    ~rig() {
        clients_.clear();
        server_.reset();
    }

    std::error_code start() { return server_->start(); }
    btest::asio::server& server() { return *server_; }
    server_log& log() { return server_log_; }
    net::io_context& ioc() { return ioc_; }

    /// Adds a client that starts at once (or after `delay`).
    client_log& add_client(btest::asio::client_options co, std::chrono::milliseconds delay = 0ms) {
        auto e = std::make_unique<entry>();
        e->rng = std::make_unique<btest::seeded_entropy>(0xc0ffee + clients_.size());
        e->client = std::make_unique<btest::asio::client>(ioc_, std::move(co), *e->rng, e->log);
        auto* c = e->client.get();
        if (delay.count() == 0) {
            c->start();
        } else {
            auto t = std::make_shared<net::steady_timer>(ioc_, delay);
            t->async_wait([c, t](const boost::system::error_code& ec) {
                if (!ec) c->start();
            });
        }
        clients_.push_back(std::move(e));
        return clients_.back()->log;
    }

    /// Runs until `done()` holds (checked every 20 ms) or `limit` passes; returns done().
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        bool ok = false;
        net::steady_timer tick(ioc_);
        std::function<void()> check = [&] {
            if (done()) {
                ok = true;
                ioc_.stop();
                return;
            }
            if (std::chrono::steady_clock::now() >= end) {
                ioc_.stop();
                return;
            }
            tick.expires_after(20ms);
            tick.async_wait([&](const boost::system::error_code& ec) {
                if (!ec) check();
            });
        };
        ioc_.restart();
        check();
        if (!ok) ioc_.run();
        ioc_.restart();
        return ok;
    }

    bool clients_done() const {
        for (const auto& e : clients_)
            if (!e->log.done) return false;
        return true;
    }

private:
    struct entry {
        std::unique_ptr<btest::seeded_entropy> rng;
        client_log log;
        std::unique_ptr<btest::asio::client> client;
    };
    net::io_context ioc_{1};
    btest::seeded_entropy rng_;
    btest::auth::memory_credentials creds_;
    server_log server_log_;
    std::unique_ptr<btest::asio::server> server_;
    std::vector<std::unique_ptr<entry>> clients_;
};

// ---- the btest binary ----------------------------------------------------------------------
#ifdef BTEST_CLI_PATH

/// A spawned btest process with stdout and stderr going to files.
class process {
public:
    explicit process(const std::vector<std::string>& args) {
        static int counter = 0;
        const std::string base = "/tmp/btest_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
        out_path_ = base + ".out";
        err_path_ = base + ".err";
        pid_ = ::fork();
        if (pid_ == 0) {
            const int o = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int e = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(o, 1);
            ::dup2(e, 2);
            const int null = ::open("/dev/null", O_RDONLY);
            ::dup2(null, 0);
            std::vector<char*> argv;
            std::string bin = BTEST_CLI_PATH;
            argv.push_back(bin.data());
            std::vector<std::string> copy = args;
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(bin.c_str(), argv.data());
            ::_exit(127);
        }
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process() {
        if (!exited_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        ::unlink(out_path_.c_str());
        ::unlink(err_path_.c_str());
    }

    /// Waits up to `limit` for the exit; returns the exit status, or -1 on timeout.
    int wait(std::chrono::milliseconds limit) {
        if (exited_) return status_;
        const auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            int st = 0;
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                exited_ = true;
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return status_;
            }
            if (std::chrono::steady_clock::now() >= end) return -1;
            std::this_thread::sleep_for(10ms);
        }
    }
    void signal(int sig) { ::kill(pid_, sig); }

    std::string out() const { return slurp(out_path_); }
    std::string err() const { return slurp(err_path_); }
    std::vector<std::string> out_lines() const { return lines(out()); }

    /// Waits until `text` appears on stderr (or stdout); false after `limit`.
    bool wait_for(const std::string& text, std::chrono::milliseconds limit, bool on_stdout = false) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if ((on_stdout ? out() : err()).find(text) != std::string::npos) return true;
            int st = 0;
            if (!exited_ && ::waitpid(pid_, &st, WNOHANG) == pid_) {
                exited_ = true;
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            if (exited_) return (on_stdout ? out() : err()).find(text) != std::string::npos;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    static std::string slurp(const std::string& path) {
        std::ifstream f(path);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    static std::vector<std::string> lines(const std::string& s) {
        std::vector<std::string> v;
        std::istringstream in(s);
        for (std::string l; std::getline(in, l);)
            if (!l.empty()) v.push_back(l);
        return v;
    }

private:
    pid_t pid_ = -1;
    bool exited_ = false;
    int status_ = -1;
    std::string out_path_, err_path_;
};

/// A btest server on loopback for CLI tests; waits until it listens.
struct cli_server {
    explicit cli_server(std::vector<std::string> args) : proc(args) {
        listening = proc.wait_for("listening on", 5000ms);
    }
    process proc;
    bool listening = false;
};
#endif

} // namespace loopback
