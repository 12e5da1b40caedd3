// Real-socket test helpers: run a server and clients of either transport (Boost.Asio or plain
// POSIX) over loopback, and spawn the btest binary with its output in files. Every run is
// bounded in time.
//
// A rig<S, C> runs a server of transport S and clients of transport C. With one transport,
// everything runs on one loop in the test's thread (unless asked for two threads). Across
// transports the server runs on its own loop in a background thread and the clients in the
// test's thread; touch the server and its log only through rig::on_server(), which runs a
// function on the server's thread and waits for it (so the same test code serves both cases).
//
// Ports: each test owns a slot; slot k uses TCP port 14000 + k and UDP ports from 20000 + 300·k
// (server P … and client P+256 …), so tests can run in parallel (ctest -j). Slots in use:
//   0–35 matrix (asio)   36–38, 49, 50–63 CLI   39 slow UDP receiver   40–48 behaviour (asio)
//   64–99 matrix (posix)
//   100–108 behaviour (posix)   109 free   110–129 cross-transport   130 README example (posix)
//   131–134 speed measurement (hidden)   135–150 hostile clients (tests/hostile)
//   (a slot above 150 has no room for its UDP ports)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/transport/asio/client.hpp"
#include "btest/transport/asio/server.hpp"
#include "btest/transport/posix/client.hpp"
#include "btest/transport/posix/event_loop.hpp"
#include "btest/transport/posix/server.hpp"

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
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// ---- the two transports, seen through one interface ----------------------------------------

/// Boost.Asio (transports/asio).
struct asio_transport {
    static constexpr const char* name = "asio";
    using context = net::io_context;
    using server = btest::asio::server;
    using server_options = btest::asio::server_options;
    using server_observer = btest::asio::server_observer;
    using server_test_view = btest::asio::server_test_view;
    using client = btest::asio::client;
    using client_options = btest::asio::client_options;
    using client_observer = btest::asio::client_observer;

    /// Listen on 127.0.0.1 or ::1 only.
    static void listen_loopback(server_options& so, bool v6) {
        so.listen_v4.reset();
        so.listen_v6.reset();
        (v6 ? so.listen_v6 : so.listen_v4) = btest::asio::parse_address(v6 ? "::1" : "127.0.0.1");
    }
    /// Calls `f` on the context's thread after `delay`; the handle keeps the timer.
    static std::shared_ptr<void> after(context& ctx, std::chrono::milliseconds delay, std::function<void()> f) {
        auto t = std::make_shared<net::steady_timer>(ctx, delay);
        t->async_wait([f = std::move(f)](const boost::system::error_code& ec) {
            if (!ec) f();
        });
        return t;
    }
    /// From any thread.
    static void post(context& ctx, std::function<void()> f) { net::post(ctx, std::move(f)); }

    /// Runs the context in this thread until `done()` (checked every 20 ms) or `limit`.
    static bool run_until(context& ctx, const std::function<bool()>& done, std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        bool ok = false;
        net::steady_timer tick(ctx);
        std::function<void()> check = [&] {
            if (done()) {
                ok = true;
                ctx.stop();
                return;
            }
            if (std::chrono::steady_clock::now() >= end) {
                ctx.stop();
                return;
            }
            tick.expires_after(20ms);
            tick.async_wait([&](const boost::system::error_code& ec) {
                if (!ec) check();
            });
        };
        ctx.restart();
        check();
        if (!ok) ctx.run();
        ctx.restart();
        return ok;
    }

    /// Runs the context on a thread of its own until destroyed.
    class background {
    public:
        explicit background(context& ctx) : ctx_(ctx), guard_(net::make_work_guard(ctx)), thread_([this] { ctx_.run(); }) {}
        ~background() {
            guard_.reset();
            ctx_.stop();
            thread_.join();
        }

    private:
        context& ctx_;
        net::executor_work_guard<context::executor_type> guard_;
        std::thread thread_;
    };
};

/// Plain POSIX sockets on epoll (transports/posix).
struct posix_transport {
    static constexpr const char* name = "posix";
    using context = btest::posix::event_loop;
    using server = btest::posix::server;
    using server_options = btest::posix::server_options;
    using server_observer = btest::posix::server_observer;
    using server_test_view = btest::posix::server_test_view;
    using client = btest::posix::client;
    using client_options = btest::posix::client_options;
    using client_observer = btest::posix::client_observer;

    static void listen_loopback(server_options& so, bool v6) {
        so.listen_v4.reset();
        so.listen_v6.reset();
        (v6 ? so.listen_v6 : so.listen_v4) = btest::posix::parse_address(v6 ? "::1" : "127.0.0.1");
    }
    static std::shared_ptr<void> after(context& ctx, std::chrono::milliseconds delay, std::function<void()> f) {
        auto t = std::make_shared<btest::posix::timer>(ctx, std::move(f));
        t->arm(btest::clock::now() + delay);
        return t;
    }
    static void post(context& ctx, std::function<void()> f) { ctx.post(std::move(f)); }

    /// Runs the loop in this thread until `done()` (checked every 20 ms) or `limit`.
    static bool run_until(context& ctx, const std::function<bool()>& done, std::chrono::milliseconds limit) {
        ctx.restart();
        const auto end = btest::clock::now() + limit;
        for (auto check = btest::clock::now();;) {
            const auto now = btest::clock::now();
            if (now >= check) {
                if (done()) return true;
                check = now + 20ms;
            }
            if (now >= end) return false;
            ctx.run_once(std::min(check, end) - now);
        }
    }

    class background {
    public:
        explicit background(context& ctx) : ctx_(ctx), thread_([this] {
            while (!quit_.load()) ctx_.run_once(std::nullopt);
        }) {}
        ~background() {
            quit_.store(true);
            ctx_.post([] {});  // wakes the loop
            thread_.join();
        }

    private:
        context& ctx_;
        std::atomic<bool> quit_{false};
        std::thread thread_;
    };
};

// ---- observers -------------------------------------------------------------------------------

/// Collects what the server tells its app.
template <class T>
struct server_log final : T::server_observer {
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

    void on_refused(const btest::endpoint&, btest::refusal) override { ++refused; }
    void on_event(const typename T::server_test_view& t, const btest::event& ev) override {
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
    /// Finished tests (sessions that got past the handshake), copied.
    std::vector<test> finished() const {
        std::vector<test> v;
        for (const auto& [id, t] : tests)
            if (t.started && t.closed) v.push_back(t);
        return v;
    }
};

/// Collects what one client tells its app.
template <class T>
struct client_log final : T::client_observer {
    bool done = false;
    std::error_code connect_error;
    std::optional<btest::test_summary> summary;
    std::vector<btest::interval_report> reports;
    std::optional<btest::test_started> started;

    void on_event(const btest::client_session&, const btest::event& ev) override {
        if (auto* r = std::get_if<btest::interval_report>(&ev)) reports.push_back(*r);
        if (auto* s = std::get_if<btest::test_started>(&ev)) started = *s;
    }
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string&) override {
        done = true;
        connect_error = ec;
        if (s) summary = s->summary();
    }
};

// ---- the rig ---------------------------------------------------------------------------------

/// One server (transport S) and any number of clients (transport C) over loopback; `Threaded`:
/// the server on a thread of its own (always across transports).
template <class S, class C = S, bool Threaded = !std::is_same_v<S, C>>
class rig {
public:
    static constexpr bool threaded = Threaded;
    static_assert(Threaded || std::is_same_v<S, C>, "two transports need two threads");
    using server_type = typename S::server;
    using server_options = typename S::server_options;
    using client_options = typename C::client_options;

    rig(server_options so, std::vector<std::pair<std::string, std::string>> users = {})
        : rng_(0x5eed), creds_(rng_) {
        for (const auto& [u, p] : users) creds_.add(u, p);
        so.sample_cpu = true;
        server_ = std::make_unique<server_type>(server_ctx(), std::move(so), rng_, &creds_, server_log_);
        if constexpr (threaded) background_ = std::make_unique<typename S::background>(server_ctx_);
    }
    ~rig() {
        clients_.clear();
        on_server([&] { server_.reset(); });
        background_.reset();
    }

    std::error_code start() {
        return on_server([&] { return server_->start(); });
    }

    /// Runs `f` where the server lives (its own thread when threaded) and returns its result.
    template <class F>
    auto on_server(F&& f) -> decltype(f()) {
        if constexpr (!threaded) {
            return f();
        } else {
            std::packaged_task<decltype(f())()> task(std::forward<F>(f));
            auto result = task.get_future();
            S::post(server_ctx_, [&task] { task(); });
            return result.get();
        }
    }
    /// The server and its log: only inside on_server() when threaded.
    server_type& server() { return *server_; }
    server_log<S>& log() { return server_log_; }

    /// Adds a client that starts at once (or after `delay`).
    client_log<C>& add_client(client_options co, std::chrono::milliseconds delay = 0ms) {
        auto e = std::make_unique<entry>();
        e->rng = std::make_unique<btest::seeded_entropy>(0xc0ffee + clients_.size());
        e->client = std::make_unique<typename C::client>(client_ctx(), std::move(co), *e->rng, e->log);
        auto* c = e->client.get();
        if (delay.count() == 0) c->start();
        else e->delay = C::after(client_ctx(), delay, [c] { c->start(); });
        clients_.push_back(std::move(e));
        return clients_.back()->log;
    }

    /// Runs the clients' loop (and, with one transport, the server's) until `done()` holds or
    /// `limit` passes; returns done(). `done` runs where the server lives.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
        if constexpr (!threaded) {
            return C::run_until(client_ctx_, done, limit);
        } else {
            return C::run_until(client_ctx_, [&] { return on_server(done); }, limit);
        }
    }

    bool clients_done() const {
        for (const auto& e : clients_)
            if (!e->log.done) return false;
        return true;
    }

private:
    struct entry {
        std::unique_ptr<btest::seeded_entropy> rng;
        client_log<C> log;
        std::unique_ptr<typename C::client> client;
        std::shared_ptr<void> delay;
    };
    typename S::context& server_ctx() {
        if constexpr (threaded) return server_ctx_;
        else return client_ctx_;
    }
    typename C::context& client_ctx() { return client_ctx_; }

    typename C::context client_ctx_;
    struct none {};
    [[no_unique_address]] std::conditional_t<threaded, typename S::context, none> server_ctx_;
    btest::seeded_entropy rng_;
    btest::auth::memory_credentials creds_;
    server_log<S> server_log_;
    std::unique_ptr<server_type> server_;
    std::unique_ptr<typename S::background> background_;
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
    pid_t pid() const { return pid_; }

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
