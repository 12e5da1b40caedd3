// AUTH / OK words (PROTOCOL §2.3), in both positions, plus HELLO (§2.1) and UDP PORT (§2.6),
// the other 2- and 4-byte server messages: every accepted word is canonical (re-encodes to the
// same 4 bytes) and decodes back to the same value; MD5/EC-SRP5 words only in the first
// position; the two positions agree on everything else.
#include <cstddef>
#include <cstdint>

#include <btest/wire/auth_word.hpp>
#include <btest/wire/hello.hpp>
#include <btest/wire/udp_port.hpp>

#include "fuzz/support.hpp"

namespace {

using namespace btest;

void check_word(std::span<const std::byte> in, wire::word_position pos) {
    const auto w = wire::decode_auth_word(in, pos);
    if (in.size() < wire::auth_word_size) {
        FUZZ_CHECK(w.error() == errc::truncated);
        return;
    }
    if (!w) {
        FUZZ_CHECK(w.error() == errc::bad_auth_word);
        return;
    }
    if (pos == wire::word_position::after_auth)
        FUZZ_CHECK(w->kind == wire::auth_word_kind::ok || w->kind == wire::auth_word_kind::failed);
    if (w->kind != wire::auth_word_kind::ok) FUZZ_CHECK(w->token == 0);
    const auto enc = wire::encode_auth_word(*w);
    for (std::size_t i = 0; i < wire::auth_word_size; ++i) FUZZ_CHECK(enc[i] == in[i]);
    const fuzz::exact_copy enc_copy(enc);
    const auto again = wire::decode_auth_word(enc_copy.span(), pos);
    FUZZ_CHECK(again && *again == *w);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fuzz::exact_copy all(data, size);
    for (std::size_t n = 0; n <= size && n <= wire::auth_word_size; ++n) {
        const fuzz::exact_copy prefix(all.first(n));
        check_word(prefix.span(), wire::word_position::first);
        check_word(prefix.span(), wire::word_position::after_auth);

        const auto h = wire::decode_hello(prefix.span());
        if (n < wire::hello_size) FUZZ_CHECK(h == errc::truncated);
        else FUZZ_CHECK(bool(h) != fuzz::same_bytes(prefix.span(), wire::hello));

        const auto p = wire::decode_udp_port(prefix.span());
        if (n < wire::udp_port_size) {
            FUZZ_CHECK(p.error() == errc::truncated);
        } else {
            FUZZ_CHECK(p.has_value());
            const auto enc = wire::encode_udp_port(*p);
            FUZZ_CHECK(enc[0] == prefix.span()[0] && enc[1] == prefix.span()[1]);
            const fuzz::exact_copy enc_copy(enc);
            FUZZ_CHECK(*wire::decode_udp_port(enc_copy.span()) == *p);
        }
    }
    check_word(all.span(), wire::word_position::first);
    check_word(all.span(), wire::word_position::after_auth);
    if (size >= wire::auth_word_size) {
        const auto a = wire::decode_auth_word(all.span(), wire::word_position::first);
        const auto b = wire::decode_auth_word(all.span(), wire::word_position::after_auth);
        if (b) FUZZ_CHECK(a && *a == *b);
        if (a && (a->kind == wire::auth_word_kind::ok || a->kind == wire::auth_word_kind::failed))
            FUZZ_CHECK(b && *a == *b);
    }
    return 0;
}
