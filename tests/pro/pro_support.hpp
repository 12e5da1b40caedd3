// Test support for btest-server-pro's library: temporary directories holding real SQLite
// files, the list of storage backends the shared suite runs against, and small builders.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "btest/core/entropy.hpp"
#include "btest/pro/accounts.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/ledger.hpp"
#include "btest/pro/sqlite_storage.hpp"
#include "btest/pro/storage.hpp"

namespace pro_test {

namespace pro = btest::pro;

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/btest_pro_XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const noexcept { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// Backends for TEMPLATE_TEST_CASE: each gives a URL for a fresh database in `dir` and opens
/// connections to it. The other one, pg_backend, is in pg_cluster.hpp.
struct sqlite_backend {
    static constexpr const char* name = "sqlite";
    static bool available() { return true; }
    static std::string unavailable_reason() { return {}; }
    static std::string url(const temp_dir& dir) { return "sqlite:" + dir.file("test.db"); }
    static std::unique_ptr<pro::storage> open(const temp_dir& dir) { return pro::open_storage(url(dir)); }
};

/// open_options with the first three fields set (the rest default).
inline pro::open_options options(bool create, int busy_timeout_ms, bool verify) {
    pro::open_options o;
    o.create = create;
    o.busy_timeout_ms = busy_timeout_ms;
    o.verify = verify;
    return o;
}

/// Midday UTC on a date, plus an offset in seconds.
inline pro::sys_ms utc(int y, unsigned m, unsigned d, int hour = 12, int minute = 0, int second = 0) {
    using namespace std::chrono;
    return pro::sys_ms{sys_days{year{y} / month{m} / day{d}}} + hours{hour} + minutes{minute} + seconds{second};
}

inline pro::test_request request(const std::string& ip, const std::string& user = {}, std::uint16_t port = 40000) {
    pro::test_request r;
    r.user = user;
    auto a = pro::parse_ip(ip);
    if (!a) throw std::runtime_error("bad test ip " + ip);
    r.peer_ip = *a;
    r.peer_port = port;
    return r;
}

/// An account with a deterministic salt (tests only: real accounts draw it from a CSPRNG).
inline pro::account test_account(const std::string& name, const std::string& password, bool md5 = false,
                                 const pro::quota_limits& q = {}, std::uint64_t seed = 1) {
    btest::seeded_entropy rng{seed};
    return pro::make_account(name, password, md5, q, rng, pro::utc_now());
}

inline pro::quota_limits limit(pro::window w, pro::quota_dir d, std::uint64_t bytes, pro::quota_limits q = {}) {
    q.set(w, d, bytes);
    return q;
}

} // namespace pro_test
