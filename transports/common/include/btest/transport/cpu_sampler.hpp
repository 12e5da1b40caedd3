// CPU load for the STATUS cpu byte (PROTOCOL §2.8): the kit only carries the number an embedder
// supplies (set_local_cpu); the transports read Linux's /proc/stat once per second.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace btest::transport {

/// Whole-machine CPU load between two calls of sample(), from the first line of /proc/stat.
/// Where /proc/stat cannot be read, sample() returns nullopt.
class cpu_sampler {
public:
    explicit cpu_sampler(std::string path = "/proc/stat") : path_(std::move(path)) { last_ = read(); }

    /// Load in percent (0..100) since the previous call (or construction); nullopt when
    /// /proc/stat cannot be read or no time passed.
    std::optional<std::uint8_t> sample() {
        const auto now = read();
        if (!now) return std::nullopt;
        const auto prev = last_.value_or(ticks{});
        last_ = now;
        const auto total = now->total - prev.total;
        const auto idle = now->idle - prev.idle;
        if (total == 0 || idle > total || !prev.total) return std::nullopt;
        return static_cast<std::uint8_t>((100 * (total - idle) + total / 2) / total);
    }

private:
    struct ticks {
        std::uint64_t total = 0;
        std::uint64_t idle = 0;  ///< idle + iowait
    };

    std::optional<ticks> read() const {
        std::FILE* f = std::fopen(path_.c_str(), "re");
        if (!f) return std::nullopt;
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"; guest time is
        // already inside user and nice, so only the first eight fields count.
        std::array<unsigned long long, 8> v{};
        const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                                  &v[4], &v[5], &v[6], &v[7]);
        std::fclose(f);
        if (n < 4) return std::nullopt;
        ticks t;
        for (int i = 0; i < n; ++i) t.total += v[static_cast<std::size_t>(i)];
        t.idle = v[3] + (n > 4 ? v[4] : 0);
        return t;
    }

    std::string path_;
    std::optional<ticks> last_;
};

} // namespace btest::transport
