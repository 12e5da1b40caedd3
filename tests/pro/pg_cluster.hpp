// A throwaway PostgreSQL cluster for the pro tests: initdb into a temporary directory, a
// postmaster on a Unix socket in that directory and on a free loopback port (password login
// over TCP, trust on the socket), every test database created in it, and everything removed
// at the end. As root, the cluster runs as nobody (PostgreSQL refuses to run as root) and the
// directory is handed to nobody for that.
//
// The binaries come from $BTEST_PG_BINDIR, else /usr/lib/postgresql/15/bin (Debian's
// postgresql-15). Without them the tests that need a cluster skip with a message saying so,
// unless $BTEST_REQUIRE_POSTGRESQL is set (CI), where a missing cluster is a failure.
//
// One cluster per test process, started on first use (about two seconds: initdb dominates)
// and stopped when the process exits (a watchdog stops it if the process dies instead); each
// test takes a fresh database of its own.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "btest/pro/pg.hpp"
#include "pro_support.hpp"
#include "process.hpp"

namespace pro_test {

class pg_cluster {
public:
    static constexpr const char* user = "btest";
    static constexpr const char* password = "fixture-pw";

    /// Where initdb and pg_ctl are, or "" when they are not installed.
    static std::string bindir() {
        const char* env = std::getenv("BTEST_PG_BINDIR");
        const std::string dir = env && *env ? env : "/usr/lib/postgresql/15/bin";
        return ::access((dir + "/initdb").c_str(), X_OK) == 0 && ::access((dir + "/pg_ctl").c_str(), X_OK) == 0 ? dir : "";
    }

    /// Why the shared cluster is missing ("" when it is there).
    static std::string unavailable_reason() {
        shared();
        return reason();
    }

    /// The process's cluster, started on first use; nullptr when PostgreSQL is not installed
    /// (or did not start: unavailable_reason() says why).
    static pg_cluster* shared() {
        static std::once_flag once;
        static std::unique_ptr<pg_cluster> cluster;
        std::call_once(once, [] {
            if (bindir().empty()) {
                reason() = "PostgreSQL 15 is not installed (no initdb in $BTEST_PG_BINDIR or /usr/lib/postgresql/15/bin; "
                           "apt-get install postgresql-15): skipped";
                return;
            }
            try {
                cluster = std::make_unique<pg_cluster>();
            } catch (const std::exception& e) {
                reason() = std::string("the throwaway PostgreSQL cluster did not start: ") + e.what();
            }
        });
        return cluster.get();
    }

    /// Test settings trade durability for speed; a benchmark passes "" for PostgreSQL's
    /// defaults (fsync and synchronous_commit on).
    static constexpr const char* fast_settings = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off";

    explicit pg_cluster(std::string settings = fast_settings) : bin_(bindir()), settings_(std::move(settings)) {
        if (bin_.empty()) throw std::runtime_error("PostgreSQL binaries not found");
        const bool root = ::geteuid() == 0;
        if (root && ::chown(dir_.path().c_str(), 65534, 65534) != 0) throw std::runtime_error("cannot chown the cluster dir");
        ::chmod(dir_.path().c_str(), 0700);
        data_ = dir_.file("data");
        port_ = free_port();
        const auto pwfile = dir_.file("pw");
        {
            std::ofstream f(pwfile);
            f << password << "\n";
        }
        if (root && ::chown(pwfile.c_str(), 65534, 65534) != 0) throw std::runtime_error("cannot chown the password file");
        start_watchdog(root);
        run({bin_ + "/initdb", "-D", data_, "-U", user, "--pwfile=" + pwfile, "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
            std::chrono::seconds{120}, "initdb");
        // The free port may be taken by someone else before the postmaster binds it (another
        // test process doing the same): try another.
        for (int attempt = 0;; ++attempt) {
            try {
                start();
                break;
            } catch (const std::exception&) {
                if (attempt == 2) throw;
                port_ = free_port();
            }
        }
    }
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;
    ~pg_cluster() {
        try {
            run({bin_ + "/pg_ctl", "-D", data_, "-m", "immediate", "-w", "-t", "30", "stop"}, std::chrono::seconds{40},
                "pg_ctl stop");
        } catch (...) {
        }
        if (watch_fd_ >= 0) ::close(watch_fd_);  // the watchdog finds nothing left to stop
        if (watchdog_ > 0) ::waitpid(watchdog_, nullptr, 0);
    }

    /// Starts the postmaster (again) on the same socket directory and port.
    void start() {
        const std::string opts = "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) + " -k " + dir_.path() +
                                 " -c max_connections=200 " + settings_;
        run({bin_ + "/pg_ctl", "-D", data_, "-l", dir_.file("log"), "-w", "-t", "60", "-o", opts, "start"},
            std::chrono::seconds{70}, "pg_ctl start");
    }
    /// Stops it as an operator would (fast: open transactions are rolled back, clients are
    /// disconnected).
    void stop() {
        run({bin_ + "/pg_ctl", "-D", data_, "-m", "fast", "-w", "-t", "60", "stop"}, std::chrono::seconds{70},
            "pg_ctl stop");
    }

    int port() const noexcept { return port_; }
    const std::string& socket_dir() const noexcept { return dir_.path(); }

    /// A URL with the password, over TCP on loopback (as a fleet would connect).
    std::string url(const std::string& db) const {
        return "postgresql://" + std::string(user) + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
    }
    /// A URL over the Unix socket (trust: no password).
    std::string socket_url(const std::string& db) const {
        return "postgresql:///" + db + "?host=" + dir_.path() + "&port=" + std::to_string(port_) + "&user=" + user;
    }

    /// A new, empty database; its name.
    std::string create_database() {
        static std::atomic<int> counter{0};
        const std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
        btest::pro::pg::connect_options o;
        o.conninfo = socket_url("postgres");
        btest::pro::pg::connection admin(o);
        admin.exec("CREATE DATABASE " + name);
        return name;
    }

    /// The server's log so far (for a failure message).
    std::string log() const {
        std::ifstream f(dir_.file("log"));
        return std::string(std::istreambuf_iterator<char>(f), {});
    }

private:
    static std::string& reason() {
        static std::string r;
        return r;
    }

    /// A shell that waits for this process to go away, however it goes (a sanitizer abort, a
    /// ctest timeout's SIGKILL), then stops the postmaster and removes the directory: a test
    /// process that dies never leaves a cluster running. It reads a pipe whose only writer is
    /// this process (close-on-exec, so no child holds it), and keeps none of our output open.
    void start_watchdog(bool root) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
        const std::string as = root ? "runuser -u nobody -- " : "";
        const std::string script = "cat >/dev/null; if [ -f " + data_ + "/postmaster.pid ]; then " + as + bin_ +
                                   "/pg_ctl -D " + data_ + " -m immediate -w stop; fi; rm -rf " + dir_.path();
        watchdog_ = ::fork();
        if (watchdog_ == 0) {
            ::dup2(fds[0], 0);
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::setsid();  // not in the test's process group: a kill of the group still leaves it to clean up
            ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[0]);
        if (watchdog_ < 0) {
            ::close(fds[1]);
            throw std::runtime_error("fork failed");
        }
        watch_fd_ = fds[1];
    }

    static int free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("no free loopback port");
        }
        ::close(fd);
        return ntohs(a.sin_port);
    }

    void run(const std::vector<std::string>& argv, std::chrono::seconds limit, const char* what) const {
        process_options po;
        po.unprivileged = true;
        po.cwd = dir_.path();
        process p(argv.front(), {argv.begin() + 1, argv.end()}, po);
        const int st = p.wait(limit);
        if (st != 0)
            throw std::runtime_error(std::string(what) + " failed (status " + std::to_string(st) + "): " + p.err() + p.out() +
                                     "\nserver log:\n" + log());
    }

    std::string bin_;
    std::string settings_;
    temp_dir dir_;
    std::string data_;
    int port_ = 0;
    pid_t watchdog_ = -1;
    int watch_fd_ = -1;
};

/// The PostgreSQL backend of the shared storage suite (see sqlite_backend): a fresh database
/// per temp_dir, in the process's throwaway cluster.
struct pg_backend {
    static constexpr const char* name = "postgresql";
    static bool available() { return pg_cluster::shared() != nullptr; }
    static std::string unavailable_reason() { return pg_cluster::unavailable_reason(); }
    static std::string url(const temp_dir& dir) {
        static std::mutex mu;
        static std::map<std::string, std::string> dbs;
        std::lock_guard lock(mu);
        auto& db = dbs[dir.path()];
        if (db.empty()) db = pg_cluster::shared()->create_database();
        return pg_cluster::shared()->url(db);
    }
    static std::unique_ptr<btest::pro::storage> open(const temp_dir& dir) { return btest::pro::open_storage(url(dir)); }
};

/// At the top of a test that needs `Backend`: returns (a skip, with the reason as a warning)
/// when it is not available here, fails when $BTEST_REQUIRE_POSTGRESQL says it must be.
#define PRO_REQUIRE_BACKEND(Backend)                                                                 \
    do {                                                                                             \
        if (!Backend::available()) {                                                                 \
            const char* must = std::getenv("BTEST_REQUIRE_POSTGRESQL");                              \
            if (must && *must) FAIL(Backend::unavailable_reason());                                  \
            WARN(Backend::unavailable_reason());                                                     \
            return;                                                                                  \
        }                                                                                            \
    } while (0)

} // namespace pro_test
