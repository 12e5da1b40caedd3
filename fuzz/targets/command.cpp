// COMMAND (PROTOCOL §2.2): decode every prefix of the input from an exactly-sized copy; a
// decoded command re-encodes to the same 16 bytes (zero_fill normalised to 00/01) and decodes
// back to the same value.
#include <cstddef>
#include <cstdint>

#include <btest/wire/command.hpp>

#include "fuzz/support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace btest;
    const fuzz::exact_copy all(data, size);
    // The short prefixes must all be refused as truncated, without reading past them.
    for (std::size_t n = 0; n < wire::command_size && n < size; ++n) {
        const fuzz::exact_copy prefix(all.first(n));
        FUZZ_CHECK(wire::decode_command(prefix.span()).error() == errc::truncated);
    }
    const auto in = all.span();
    const auto c = wire::decode_command(in);
    if (size < wire::command_size) {
        FUZZ_CHECK(c.error() == errc::truncated);
        return 0;
    }
    const auto proto = std::to_integer<unsigned>(in[0]);
    const auto dir = std::to_integer<unsigned>(in[1]);
    if (!c) {
        FUZZ_CHECK(c.error() == errc::bad_command_proto || c.error() == errc::bad_command_direction);
        FUZZ_CHECK(proto > 1 || dir < 1 || dir > 3);
        FUZZ_CHECK((c.error() == errc::bad_command_proto) == (proto > 1));
        return 0;
    }
    FUZZ_CHECK(proto <= 1 && dir >= 1 && dir <= 3);
    FUZZ_CHECK(c->random_data == (in[2] == std::byte{0}));
    FUZZ_CHECK(c->connections() >= 1 && c->connections() <= 255);
    FUZZ_CHECK(c->tcp_chunk() >= 1 && c->tcp_chunk() <= 65535);

    const auto enc = wire::encode_command(*c);
    for (std::size_t i = 0; i < wire::command_size; ++i) {
        if (i == 2) FUZZ_CHECK(enc[2] == (c->random_data ? std::byte{0} : std::byte{1}));
        else FUZZ_CHECK(enc[i] == in[i]);
    }
    const fuzz::exact_copy enc_copy(enc);
    const auto again = wire::decode_command(enc_copy.span());
    FUZZ_CHECK(again && *again == *c);
    return 0;
}
