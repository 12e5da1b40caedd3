// STATUS (PROTOCOL §2.8): decode from exactly-sized copies of every short prefix and of the
// whole input; a decoded status re-encodes with byte 0 = 07, byte 1 = 0x80 | load, bytes 2-3
// zero and seq/bytes unchanged, and decodes back to the same value.
#include <cstddef>
#include <cstdint>

#include <btest/wire/status.hpp>

#include "fuzz/support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace btest;
    const fuzz::exact_copy all(data, size);
    for (std::size_t n = 0; n < wire::status_size && n < size; ++n) {
        const fuzz::exact_copy prefix(all.first(n));
        FUZZ_CHECK(wire::decode_status(prefix.span()).error() == errc::truncated);
    }
    const auto in = all.span();
    const auto s = wire::decode_status(in);
    if (size < wire::status_size) {
        FUZZ_CHECK(s.error() == errc::truncated);
        return 0;
    }
    if (!s) {
        FUZZ_CHECK(s.error() == errc::bad_status_type);
        FUZZ_CHECK(in[0] != wire::status_type);
        return 0;
    }
    FUZZ_CHECK(in[0] == wire::status_type);
    FUZZ_CHECK(s->cpu_load <= 100);
    const auto enc = wire::encode_status(*s);
    FUZZ_CHECK(enc[0] == wire::status_type);
    FUZZ_CHECK(enc[1] == std::byte(0x80 | s->cpu_load));
    FUZZ_CHECK(enc[2] == std::byte{0} && enc[3] == std::byte{0});
    for (std::size_t i = 4; i < wire::status_size; ++i) FUZZ_CHECK(enc[i] == in[i]);
    const fuzz::exact_copy enc_copy(enc);
    const auto again = wire::decode_status(enc_copy.span());
    FUZZ_CHECK(again && *again == *s);
    // Saturation of a 64-bit count (§13.11).
    std::uint64_t wide = 0;
    for (std::size_t i = 0; i < 8 && i < size; ++i) wide = wide << 8 | data[i];
    const auto sat = wire::status::saturate(wide);
    FUZZ_CHECK(wide > 0xffffffffULL ? sat == 0xffffffffu : sat == wide);
    return 0;
}
