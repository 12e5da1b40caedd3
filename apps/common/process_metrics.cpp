#include "common/process_metrics.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

namespace btest_app::prom {

namespace {

std::optional<std::string> slurp(const char* path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Boot time (seconds since the epoch) from /proc/stat's "btime" line.
std::optional<double> boot_time() {
    const auto stat = slurp("/proc/stat");
    if (!stat) return std::nullopt;
    std::istringstream in(*stat);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
    return std::nullopt;
}

} // namespace

process_stats read_process_stats() {
    process_stats s;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (const auto stat = slurp("/proc/self/stat"); stat && ticks > 0 && page > 0) {
        // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: fields start after
        // the last ')'. After it, field 3 (state) is index 0; utime is field 14, stime 15,
        // starttime 22, vsize 23, rss 24 (proc(5)).
        if (const auto close = stat->rfind(')'); close != std::string::npos) {
            std::istringstream in(stat->substr(close + 1));
            std::vector<std::string> f;
            for (std::string t; in >> t;) f.push_back(t);
            auto field = [&](std::size_t n) { return std::strtod(f[n - 3].c_str(), nullptr); };
            if (f.size() >= 22) {
                s.cpu_seconds = (field(14) + field(15)) / static_cast<double>(ticks);
                if (const auto bt = boot_time()) s.start_time_seconds = *bt + field(22) / static_cast<double>(ticks);
                s.virtual_bytes = field(23);
                s.resident_bytes = field(24) * static_cast<double>(page);
            }
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        double n = 0;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        s.open_fds = n - 1;   // the directory stream's own descriptor
    }
    if (rlimit r{}; ::getrlimit(RLIMIT_NOFILE, &r) == 0)
        s.max_fds = r.rlim_cur == RLIM_INFINITY ? 1.8446744073709552e19 : static_cast<double>(r.rlim_cur);
    return s;
}

void write_process_metrics(text_writer& w, const process_stats& s) {
    auto put = [&](const char* name, metric_type t, const char* help, const std::optional<double>& v) {
        if (v) w.single(name, t, help, *v);
    };
    put("process_cpu_seconds_total", metric_type::counter, "Total user and system CPU time spent in seconds.", s.cpu_seconds);
    put("process_resident_memory_bytes", metric_type::gauge, "Resident memory size in bytes.", s.resident_bytes);
    put("process_virtual_memory_bytes", metric_type::gauge, "Virtual memory size in bytes.", s.virtual_bytes);
    put("process_open_fds", metric_type::gauge, "Number of open file descriptors.", s.open_fds);
    put("process_max_fds", metric_type::gauge, "Maximum number of open file descriptors.", s.max_fds);
    put("process_start_time_seconds", metric_type::gauge, "Start time of the process since unix epoch in seconds.",
        s.start_time_seconds);
}

} // namespace btest_app::prom
