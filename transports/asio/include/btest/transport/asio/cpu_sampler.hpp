// CPU load sampling for the STATUS cpu byte (PROTOCOL §2.8): the kit only carries a number the
// embedder supplies; this reads Linux's /proc/stat, once per second, outside the kit.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace btest::asio {

/// Whole-machine CPU load between two calls of sample(), from the first line of /proc/stat.
/// Elsewhere than Linux (no /proc/stat) sample() always returns nullopt.
class cpu_sampler {
public:
    explicit cpu_sampler(std::string path = "/proc/stat") : path_(std::move(path)) { read(last_); }

    /// Load in percent (0..100) since the previous call (or construction); nullopt when
    /// /proc/stat cannot be read or no time passed.
    std::optional<std::uint8_t> sample() {
        times now{};
        if (!read(now)) return std::nullopt;
        const auto total = now.total - last_.total;
        const auto idle = now.idle - last_.idle;
        last_ = now;
        if (total == 0 || idle > total) return std::nullopt;
        return static_cast<std::uint8_t>((100 * (total - idle) + total / 2) / total);
    }

private:
    struct times {
        std::uint64_t total = 0;
        std::uint64_t idle = 0;  ///< idle + iowait
    };
    bool read(times& t) const {
        std::ifstream in(path_);
        std::string cpu;
        if (!(in >> cpu) || cpu != "cpu") return false;
        // user nice system idle iowait irq softirq steal (guest fields are inside user/nice)
        std::array<std::uint64_t, 8> v{};
        for (auto& x : v)
            if (!(in >> x)) x = 0;
        t.total = 0;
        for (auto x : v) t.total += x;
        t.idle = v[3] + v[4];
        return t.total > 0;
    }

    std::string path_;
    times last_{};
};

} // namespace btest::asio
