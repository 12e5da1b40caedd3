// What is particular to the SQLite backend: URLs, schema creation and migration, files that are
// not usable (newer schema, another program's database, damaged, read-only), WAL concurrency
// and what the file holds at rest. Real files in a temporary directory.
#include <catch2/catch.hpp>

#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pro_support.hpp"

using namespace btest::pro;
using namespace std::chrono_literals;
using pro_test::temp_dir;
using pro_test::test_account;

namespace {

storage_errc open_error(const std::string& url, const open_options& o = {}) {
    try {
        open_storage(url, o);
    } catch (const storage_error& e) {
        INFO(e.what());
        return e.code();
    }
    FAIL("opening " << url << " succeeded");
    return storage_errc::io;
}

std::string message_of(const std::string& url, const open_options& o = {}) {
    try {
        open_storage(url, o);
    } catch (const storage_error& e) {
        return e.what();
    }
    return {};
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
}

/// Runs `fn` in a child process as an unprivileged user when we are root (root ignores file
/// permissions); returns its exit status.
template <class F>
int as_unprivileged(F fn) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(99);
        ::_exit(fn());
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

TEST_CASE("pro: sqlite: URLs select the backend, anything else is a clear error", "[pro][sqlite]") {
    temp_dir dir;
    CHECK(open_storage("sqlite:" + dir.file("a.db"))->describe() == "sqlite:" + dir.file("a.db"));
    CHECK(open_storage("sqlite://" + dir.file("b.db"))->describe() == "sqlite:" + dir.file("b.db"));  // sqlite:///abs
    // postgresql:// and postgres:// select the PostgreSQL backend (pg_test.cpp); nothing
    // listens on port 1, and the password stays out of the message.
    CHECK(open_error("postgresql://user:pw@127.0.0.1:1/db") == storage_errc::unavailable);
    CHECK(open_error("postgres://127.0.0.1:1/db") == storage_errc::unavailable);
    CHECK_THAT(message_of("postgresql://u:secret@127.0.0.1:1/db"),
               Catch::Contains("cannot connect to PostgreSQL") && !Catch::Contains("secret"));
    for (const char* bad : {"", "btest-server.db", "mysql://h/db", "sqlite:", "sqlite://host/db", "file:x.db", "SQLITE:x"}) {
        INFO("url: '" << bad << "'");
        CHECK(open_error(bad) == storage_errc::bad_url);
    }
    CHECK(open_error("sqlite:" + dir.file("missing.db"), pro_test::options(false, 5000, false)) == storage_errc::not_found);
    CHECK_FALSE(std::filesystem::exists(dir.file("missing.db")));
    CHECK(open_error("sqlite:" + dir.file("no/such/dir.db")) == storage_errc::cannot_open);
    CHECK(open_error("sqlite:" + dir.path()) == storage_errc::cannot_open);  // a directory
}

TEST_CASE("pro: sqlite: a new database gets the latest schema in WAL mode, readable by its owner only", "[pro][sqlite]") {
    temp_dir dir;
    auto db = open_sqlite(dir.file("new.db"), {});
    CHECK(db->schema_version() == sqlite_latest_schema());
    for (const char* suffix : {"", "-wal", "-shm"}) {
        struct stat st{};
        REQUIRE(::stat((dir.file("new.db") + suffix).c_str(), &st) == 0);
        INFO("file new.db" << suffix);
        CHECK((st.st_mode & 0777) == 0600);
    }
    CHECK(sqlite_latest_schema() == 2);
    sqlite::connection raw(dir.file("new.db"), {});
    auto q = raw.prepare("PRAGMA journal_mode");
    REQUIRE(q->step());
    CHECK(q->text_at(0) == "wal");
}

TEST_CASE("pro: sqlite: a version-1 database with an account migrates to version 2 and keeps it", "[pro][sqlite]") {
    temp_dir dir;
    const auto path = dir.file("old.db");
    {
        auto v1 = open_sqlite(path, {}, 1);
        CHECK(v1->schema_version() == 1);
    }
    // An account as version 1 stored it (no quota columns yet).
    const auto rec = btest::auth::ec_srp5::derive_record("olduser", "oldpw", {});
    {
        sqlite::connection raw(path, {});
        auto q = raw.prepare("INSERT INTO accounts (name, ecsrp5_salt, ecsrp5_x, ecsrp5_parity, md5_password, created_ms, "
                             "updated_ms) VALUES ('olduser', ?1, ?2, ?3, NULL, 1000, 2000)");
        q->bind_blob(1, rec.salt).bind_blob(2, rec.validator.u).bind(3, int{rec.validator.parity});
        q->run();
        auto t = raw.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sessions'");
        REQUIRE(t->step());
        CHECK(t->int64_at(0) == 0);
    }
    auto db = open_storage("sqlite:" + path);
    CHECK(db->schema_version() == 2);
    auto a = db->find_account("olduser");
    REQUIRE(a);
    CHECK(a->ecsrp5 == rec);
    CHECK_FALSE(a->quotas.any());
    CHECK(a->created == from_unix_ms(1000));
    // The migrated database works as a new one: quotas, ledger, history.
    btest::seeded_entropy rng{1};
    account_change c;
    c.quotas[0][2] = std::uint64_t{5'000'000};
    CHECK(change_account(*db, "olduser", c, rng, utc_now()) == account_status::ok);
    ledger l{ledger_config{}};
    auto r = l.open_test(*db, pro_test::request("192.0.2.1", "olduser"), utc_now());
    CHECK(r.admitted);
    CHECK(r.budget.total == 5'000'000u);
    // Opening again does not migrate again.
    CHECK(open_storage("sqlite:" + path)->schema_version() == 2);
}

TEST_CASE("pro: sqlite: a newer schema, or another program's database, is refused untouched", "[pro][sqlite]") {
    temp_dir dir;
    const auto path = dir.file("future.db");
    open_storage("sqlite:" + path).reset();
    {
        sqlite::connection raw(path, {});
        raw.exec("UPDATE schema_version SET version = 99");
    }
    CHECK(open_error("sqlite:" + path) == storage_errc::schema_too_new);
    CHECK_THAT(message_of("sqlite:" + path), Catch::Contains("schema version 99") && Catch::Contains("upgrade"));
    {
        sqlite::connection raw(path, {});
        auto q = raw.prepare("SELECT version FROM schema_version");
        REQUIRE(q->step());
        CHECK(q->int64_at(0) == 99);
    }

    const auto other = dir.file("other.db");
    {
        sqlite::connection raw(other, {});
        raw.exec("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos (name) VALUES ('x');");
    }
    CHECK(open_error("sqlite:" + other) == storage_errc::corrupt);
    CHECK_THAT(message_of("sqlite:" + other), Catch::Contains("not a btest-server-pro database"));
    sqlite::connection raw(other, {});
    auto q = raw.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'");
    REQUIRE(q->step());
    CHECK(q->int64_at(0) == 1);
}

TEST_CASE("pro: sqlite: a damaged file is a clear error, never a crash", "[pro][sqlite]") {
    temp_dir dir;
    SECTION("not a database at all") {
        const auto path = dir.file("garbage.db");
        std::string junk(8192, '\0');
        for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 131 + 7) % 251);
        write_file(path, junk);
        CHECK(open_error("sqlite:" + path) == storage_errc::corrupt);
        CHECK_THAT(message_of("sqlite:" + path), Catch::Contains(path) && Catch::Contains("not a database"));
        CHECK(slurp(path) == junk);  // untouched
    }
    SECTION("a database whose pages were overwritten") {
        const auto path = dir.file("damaged.db");
        {
            auto db = open_storage("sqlite:" + path);
            for (int i = 0; i < 200; ++i)
                REQUIRE(add_account(*db, test_account("user" + std::to_string(i), "pw", false, {}, 7)) == account_status::ok);
        }
        {
            // Fold the WAL into the file, then scribble over the pages after the first.
            sqlite::connection raw(path, {});
            raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        auto bytes = slurp(path);
        REQUIRE(bytes.size() > 8192);
        for (std::size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0xa5);
        write_file(path, bytes);
        // Opened with verify (what `serve` does at startup): refused at once.
        CHECK(open_error("sqlite:" + path, pro_test::options(true, 5000, true)) == storage_errc::corrupt);
        // Opened without it: the first query that reads a bad page fails cleanly instead.
        bool failed_cleanly = false;
        try {
            auto db = open_storage("sqlite:" + path);
            db->list_accounts();
        } catch (const storage_error& e) {
            failed_cleanly = e.code() == storage_errc::corrupt;
            INFO(e.what());
        }
        CHECK(failed_cleanly);
    }
}

TEST_CASE("pro: sqlite: a read-only database file is a clear startup error", "[pro][sqlite]") {
    temp_dir dir;
    ::chmod(dir.path().c_str(), 0755);
    const auto path = dir.file("ro.db");
    open_storage("sqlite:" + path).reset();
    ::chmod(path.c_str(), 0444);
    const int status = as_unprivileged([&] {
        try {
            open_storage("sqlite:" + path);
        } catch (const storage_error& e) {
            return e.code() == storage_errc::read_only && std::string(e.what()).find("read-only") != std::string::npos ? 0 : 2;
        } catch (...) {
            return 3;
        }
        return 1;  // opened: wrong
    });
    CHECK(status == 0);
}

TEST_CASE("pro: sqlite: WAL lets a reader read and a writer wait while another connection writes", "[pro][sqlite]") {
    temp_dir dir;
    auto a = pro_test::sqlite_backend::open(dir);
    auto b = pro_test::sqlite_backend::open(dir);
    REQUIRE(add_account(*a, test_account("first", "x")) == account_status::ok);

    a->begin();  // a holds the write lock
    REQUIRE(a->insert_account(test_account("second", "x", false, {}, 2)));
    // b reads the committed state without waiting.
    CHECK(b->list_accounts().size() == 1);
    // b's write waits for a's commit (busy timeout) and then succeeds.
    auto writer = std::async(std::launch::async, [&] { return add_account(*b, test_account("third", "x", false, {}, 3)); });
    CHECK(writer.wait_for(200ms) == std::future_status::timeout);  // still waiting on the lock
    a->commit();
    CHECK(writer.get() == account_status::ok);
    CHECK(a->list_accounts().size() == 3);
}

TEST_CASE("pro: sqlite: a lock held past the busy timeout is a clear busy error", "[pro][sqlite]") {
    temp_dir dir;
    auto a = pro_test::sqlite_backend::open(dir);
    auto b = open_storage(pro_test::sqlite_backend::url(dir), pro_test::options(true, 50, false));
    a->begin();
    bool busy = false;
    try {
        add_account(*b, test_account("blocked", "x"));
    } catch (const storage_error& e) {
        busy = e.code() == storage_errc::busy;
    }
    a->rollback();
    CHECK(busy);
    CHECK(b->list_accounts().empty());
}

TEST_CASE("pro: sqlite: the file holds no EC-SRP5 password, an MD5 account's is there", "[pro][sqlite]") {
    temp_dir dir;
    const auto path = dir.file("rest.db");
    {
        auto db = open_storage("sqlite:" + path);
        REQUIRE(add_account(*db, test_account("srp", "Zebra-Password-4471")) == account_status::ok);
        REQUIRE(add_account(*db, test_account("legacy", "Okapi-Password-9902", true)) == account_status::ok);
    }
    const auto bytes = slurp(path) + slurp(path + "-wal");
    CHECK(bytes.find("Zebra-Password-4471") == std::string::npos);
    CHECK(bytes.find("Okapi-Password-9902") != std::string::npos);  // MD5 needs it: documented as weaker
}
