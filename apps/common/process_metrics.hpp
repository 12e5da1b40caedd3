// The standard process_* metrics of Prometheus client libraries, read from /proc (Linux):
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. A value that cannot be read
// is left out rather than reported as 0.
#pragma once

#include <optional>

#include "common/prometheus.hpp"

namespace btest_app::prom {

struct process_stats {
    std::optional<double> cpu_seconds;        ///< user + system time
    std::optional<double> resident_bytes;
    std::optional<double> virtual_bytes;
    std::optional<double> open_fds;
    std::optional<double> max_fds;            ///< the soft RLIMIT_NOFILE
    std::optional<double> start_time_seconds; ///< since the Unix epoch
};

/// Reads this process's figures now.
process_stats read_process_stats();

/// Writes the families that could be read.
void write_process_metrics(text_writer& w, const process_stats& s);
inline void write_process_metrics(text_writer& w) { write_process_metrics(w, read_process_stats()); }

} // namespace btest_app::prom
