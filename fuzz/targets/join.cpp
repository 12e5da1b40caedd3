// JOIN (PROTOCOL §2.7): any 16 bytes decode to the token in bytes 0-1; shorter inputs are
// truncated. The token re-encodes to `HI LO 02 00 …` and decodes back.
#include <cstddef>
#include <cstdint>

#include <btest/wire/join.hpp>

#include "fuzz/support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace btest;
    const fuzz::exact_copy all(data, size);
    for (std::size_t n = 0; n < wire::join_size && n < size; ++n) {
        const fuzz::exact_copy prefix(all.first(n));
        FUZZ_CHECK(wire::decode_join(prefix.span()).error() == errc::truncated);
    }
    const auto t = wire::decode_join(all.span());
    if (size < wire::join_size) {
        FUZZ_CHECK(t.error() == errc::truncated);
        return 0;
    }
    FUZZ_CHECK(t.has_value());
    FUZZ_CHECK(*t == (unsigned(data[0]) << 8 | data[1]));
    const auto enc = wire::encode_join(*t);
    FUZZ_CHECK(enc[0] == all.span()[0] && enc[1] == all.span()[1] && enc[2] == std::byte{2});
    for (std::size_t i = 3; i < wire::join_size; ++i) FUZZ_CHECK(enc[i] == std::byte{0});
    const fuzz::exact_copy enc_copy(enc);
    const auto again = wire::decode_join(enc_copy.span());
    FUZZ_CHECK(again && *again == *t);
    return 0;
}
