// Where the pro benchmarks find PostgreSQL: a URL given with --pg (an empty database the
// benchmark may fill), else a throwaway cluster of their own (tests/pro/pg_cluster.hpp) with
// PostgreSQL's default durability (fsync and synchronous_commit on), else none (the PostgreSQL
// lines are skipped with the reason).
#pragma once

#include <memory>
#include <string>

#include "pg_cluster.hpp"

namespace pro_bench {

struct pg_source {
    std::unique_ptr<pro_test::pg_cluster> cluster;
    std::string url;      ///< empty: no PostgreSQL in this run
    std::string why_not;  ///< why, when url is empty
    std::string what;     ///< for the report: "throwaway cluster (PostgreSQL defaults)" or the redacted URL

    /// A fresh database in the throwaway cluster, or the --pg URL (the same each time).
    std::string database() {
        if (cluster) return cluster->url(cluster->create_database());
        return url;
    }
};

/// `settings`: postgres -c options for the throwaway cluster ("" = PostgreSQL's defaults).
inline pg_source find_pg(const std::string& given, const std::string& settings = "") {
    pg_source s;
    if (!given.empty()) {
        s.url = given;
        s.what = btest::pro::pg::redact_url(given);
        return s;
    }
    if (pro_test::pg_cluster::bindir().empty()) {
        s.why_not = "PostgreSQL 15 is not installed (apt-get install postgresql-15) and no --pg URL was given";
        return s;
    }
    try {
        s.cluster = std::make_unique<pro_test::pg_cluster>(settings);
        s.url = "(cluster)";
        s.what = "a throwaway local cluster over TCP loopback, " +
                 (settings.empty() ? std::string("PostgreSQL 15 defaults (fsync, synchronous_commit on)") : settings);
    } catch (const std::exception& e) {
        s.why_not = e.what();
    }
    return s;
}

} // namespace pro_bench
