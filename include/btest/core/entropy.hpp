// Randomness comes from outside (PROTOCOL §13.14): challenges, EC-SRP5 secrets, salts, tokens
// and random payload are drawn from an `entropy&` the embedder supplies. Secret material must
// come from a CSPRNG (see auth/botan_entropy.hpp); tests inject fixed or seeded sources.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace btest {

/// A source of random bytes. One thread at a time per object.
class entropy {
public:
    virtual ~entropy() = default;
    /// Fill `out` completely.
    virtual void fill(std::span<std::byte> out) = 0;

    template <std::size_t N>
    std::array<std::byte, N> bytes() {
        std::array<std::byte, N> a{};
        fill(a);
        return a;
    }
    std::uint32_t u32() {
        auto b = bytes<4>();
        return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 |
               std::uint32_t(b[3]) << 24;
    }
};

/// Deterministic, fast, NOT cryptographic: xoshiro256** seeded through splitmix64. For tests,
/// simulations and non-secret payload; never for challenges, keys or tokens on a real server.
class seeded_entropy final : public entropy {
public:
    explicit seeded_entropy(std::uint64_t seed) noexcept {
        for (auto& w : s_) {
            seed += 0x9e3779b97f4a7c15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            w = z ^ (z >> 31);
        }
    }
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Each output word's bytes, least significant first.
    void fill(std::span<std::byte> out) override {
        std::size_t i = 0;
        if constexpr (std::endian::native == std::endian::little) {
            // Whole words at once: a 128 KiB payload ring is filled per random-data test.
            for (; i + 8 <= out.size(); i += 8) {
                const std::uint64_t v = next();
                std::memcpy(out.data() + i, &v, 8);
            }
        }
        while (i < out.size()) {
            std::uint64_t v = next();
            for (int k = 0; k < 8 && i < out.size(); ++k, ++i) {
                out[i] = std::byte(v & 0xff);
                v >>= 8;
            }
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::array<std::uint64_t, 4> s_{};
};

/// Replays a fixed byte string, then repeats it; for known-answer tests that inject a
/// challenge or a private key. An empty pattern yields zeros.
class fixed_entropy final : public entropy {
public:
    explicit fixed_entropy(std::span<const std::byte> pattern) : pattern_(pattern) {}
    void fill(std::span<std::byte> out) override {
        for (auto& b : out) {
            if (pattern_.empty()) { b = std::byte{0}; continue; }
            b = pattern_[pos_++ % pattern_.size()];
        }
    }

private:
    std::span<const std::byte> pattern_;
    std::size_t pos_ = 0;
};

} // namespace btest
