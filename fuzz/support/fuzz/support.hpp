// Shared pieces of the fuzz targets (STYLE.md §7): invariant checks that abort, exactly-sized
// heap copies (so AddressSanitizer sees any read past a decoder's span), entropy drawn from the
// fuzzer's input, and a writer that lays out inputs the way FuzzedDataProvider reads them, for
// the seed generator.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include <btest/core/entropy.hpp>

// Manual poisoning where AddressSanitizer is on (clang's __has_feature, gcc's macro); no-ops in
// the g++ replay builds.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_HAS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FUZZ_HAS_ASAN)
#define FUZZ_HAS_ASAN 1
#endif
#ifdef FUZZ_HAS_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace fuzz {

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", what, file, line);
    std::fflush(stderr);
    std::abort();
}

} // namespace fuzz

/// Aborts (a libFuzzer finding) when `cond` is false; active in every build type.
#define FUZZ_CHECK(cond)                                         \
    do {                                                         \
        if (!(cond)) ::fuzz::violated(#cond, __FILE__, __LINE__); \
    } while (0)

namespace fuzz {

/// FUZZ_TRACE=1 in the environment makes the session targets print each operation (for
/// diagnosing a finding by replaying it).
inline bool tracing() {
    static const bool on = std::getenv("FUZZ_TRACE") != nullptr;
    return on;
}
inline void trace_bytes(const char* what, std::span<const std::uint8_t> b) {
    if (!tracing()) return;
    std::fprintf(stderr, "  %s (%zu):", what, b.size());
    for (std::size_t i = 0; i < b.size() && i < 48; ++i) std::fprintf(stderr, " %02x", b[i]);
    std::fprintf(stderr, b.size() > 48 ? " ...\n" : "\n");
}

/// A heap buffer of exactly `bytes.size()` bytes holding a copy of `bytes`. A decoder handed
/// its span cannot read one byte past the end without AddressSanitizer reporting it (a
/// zero-size copy is a 1-byte allocation whose span is empty).
class exact_copy {
public:
    explicit exact_copy(std::span<const std::byte> bytes)
        : size_(bytes.size()), data_(new std::byte[std::max<std::size_t>(bytes.size(), 1)]) {
        if (size_) std::memcpy(data_.get(), bytes.data(), size_);
    }
    exact_copy(const std::uint8_t* data, std::size_t size)
        : exact_copy(std::as_bytes(std::span<const std::uint8_t>(data, size))) {}
    std::span<const std::byte> span() const noexcept { return {data_.get(), size_}; }
    std::span<const std::byte> first(std::size_t n) const noexcept { return span().first(std::min(n, size_)); }

private:
    std::size_t size_;
    std::unique_ptr<std::byte[]> data_;
};

/// One heap block kept across calls, of which only a prefix is addressable: everything past
/// expose()'s `n` is ASan-poisoned, so an access past the span handed out is reported as an
/// access past a fresh exact-size allocation would be, without a new allocation (and its page
/// faults) per call. hide() poisons it all, so a span kept too long is reported too.
class poisoned_block {
public:
    poisoned_block() = default;
    poisoned_block(const poisoned_block&) = delete;
    poisoned_block& operator=(const poisoned_block&) = delete;
    ~poisoned_block() { FUZZ_UNPOISON(buf_.get(), cap_); }

    std::span<std::byte> expose(std::size_t n) {
        if (n > cap_) {
            FUZZ_UNPOISON(buf_.get(), cap_);
            cap_ = std::max(n, 2 * cap_);
            buf_ = std::make_unique_for_overwrite<std::byte[]>(cap_);
            FUZZ_POISON(buf_.get(), cap_);
            exposed_ = 0;
        }
        if (n < exposed_) FUZZ_POISON(buf_.get() + n, exposed_ - n);
        else FUZZ_UNPOISON(buf_.get(), n);
        exposed_ = n;
        return {buf_.get(), n};
    }
    void hide() noexcept {
        FUZZ_POISON(buf_.get(), exposed_);
        exposed_ = 0;
    }

private:
    std::unique_ptr<std::byte[]> buf_;
    std::size_t cap_ = 0;
    std::size_t exposed_ = 0;
};

/// What exact_copy checks, for inputs too large to allocate afresh on every call (a harness that
/// feeds hundreds of kilobytes at a time): a copy in a poisoned_block kept for the whole process,
/// addressable only while the `held` lives.
class reused_copy {
public:
    class held {
    public:
        held(reused_copy& owner, std::span<const std::byte> bytes) : owner_(owner), span_(owner.block_.expose(bytes.size())) {
            if (!bytes.empty()) std::memcpy(span_.data(), bytes.data(), bytes.size());
        }
        held(const held&) = delete;
        held& operator=(const held&) = delete;
        ~held() { owner_.block_.hide(); }
        std::span<const std::byte> span() const noexcept { return span_; }

    private:
        reused_copy& owner_;
        std::span<std::byte> span_;
    };

    held hold(std::span<const std::byte> bytes) { return held(*this, bytes); }
    held hold(const std::uint8_t* data, std::size_t size) {
        return hold(std::as_bytes(std::span<const std::uint8_t>(data, size)));
    }

private:
    poisoned_block block_;
};

inline std::span<const std::byte> as_bytes(const std::vector<std::uint8_t>& v) noexcept {
    return std::as_bytes(std::span<const std::uint8_t>(v.data(), v.size()));
}

template <class A, class B>
bool same_bytes(const A& a, const B& b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

/// Randomness taken from the fuzzer's input, so that challenges, keys, tokens and salts are the
/// fuzzer's to choose; zeros once the input is exhausted. A large request (a session's 128 KiB
/// random-payload ring) would swallow the rest of the input, so requests longer than
/// `direct_limit` bytes are expanded from an 8-byte seed taken from the input instead (a
/// repeated 64-byte pattern).
class provider_entropy final : public btest::entropy {
public:
    static constexpr std::size_t direct_limit = 64;

    explicit provider_entropy(FuzzedDataProvider& in) noexcept : in_(in) {}

    void fill(std::span<std::byte> out) override {
        if (out.size() > direct_limit) {
            std::uint64_t seed = 0;
            if (in_.remaining_bytes() > 0) in_.ConsumeData(&seed, sizeof seed);
            // 64 seeded bytes, then copies of them: the contents of a payload ring do not matter
            // to the fuzzing, and an instrumented loop over 128 KiB would cost most of a run.
            btest::seeded_entropy expand(seed);
            expand.fill(out.first(direct_limit));
            for (std::size_t have = direct_limit; have < out.size(); have *= 2)
                std::memcpy(out.data() + have, out.data(), std::min(have, out.size() - have));
            return;
        }
        // (An exhausted provider may hold a null pointer, which memcpy must not see.)
        const auto n = out.empty() || in_.remaining_bytes() == 0 ? 0 : in_.ConsumeData(out.data(), out.size());
        if (n < out.size()) std::memset(out.data() + n, 0, out.size() - n);
    }

private:
    FuzzedDataProvider& in_;
};

/// Builds an input that FuzzedDataProvider reads back as the given sequence of calls: byte
/// strings (ConsumeBytes, ConsumeData) come from the front of the input, integers
/// (ConsumeIntegralInRange, ConsumeBool) from the back, most significant byte first. Used only
/// by the seed generator; the targets themselves read with FuzzedDataProvider.
class seed_writer {
public:
    /// An integer read as ConsumeIntegralInRange<T>(min, max) that must come out as `value`.
    template <class T>
    seed_writer& integral(T min, T max, T value) {
        const auto range = static_cast<std::uint64_t>(max) - static_cast<std::uint64_t>(min);
        const auto r = static_cast<std::uint64_t>(value) - static_cast<std::uint64_t>(min);
        std::size_t n = 0;
        while (n < 8 && (range >> (8 * n)) > 0) ++n;
        for (std::size_t i = n; i-- > 0;) back_.push_back(static_cast<std::uint8_t>(r >> (8 * i)));
        return *this;
    }
    seed_writer& boolean(bool v) { return integral<std::uint8_t>(0, 255, v ? 1 : 0); }
    /// Bytes read by ConsumeBytes/ConsumeData (the reader asks for exactly this many).
    seed_writer& bytes(std::span<const std::byte> b) {
        for (auto x : b) front_.push_back(std::to_integer<std::uint8_t>(x));
        return *this;
    }
    seed_writer& bytes(std::span<const std::uint8_t> b) {
        front_.insert(front_.end(), b.begin(), b.end());
        return *this;
    }
    std::vector<std::uint8_t> finish() const {
        std::vector<std::uint8_t> out = front_;
        out.insert(out.end(), back_.rbegin(), back_.rend());
        return out;
    }

private:
    std::vector<std::uint8_t> front_;
    std::vector<std::uint8_t> back_;  // in consumption order
};

} // namespace fuzz
