// MD5 reply (PROTOCOL §2.4): decode from exactly-sized copies; a decoded reply re-encodes from
// (response, username) to the same response and username, and to the same 48 bytes when the
// name field is NUL-padded as a client writes it. The server-side check must not crash on any
// reply, and accepts exactly the right response for the configured name.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <btest/auth/md5.hpp>
#include <btest/wire/md5.hpp>

#include "fuzz/support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace btest;
    const fuzz::exact_copy all(data, size);
    for (std::size_t n = 0; n < wire::md5_reply_size && n < size; ++n) {
        const fuzz::exact_copy prefix(all.first(n));
        FUZZ_CHECK(wire::decode_md5_reply(prefix.span()).error() == errc::truncated);
    }
    const auto r = wire::decode_md5_reply(all.span());
    if (size < wire::md5_reply_size) {
        FUZZ_CHECK(r.error() == errc::truncated);
        return 0;
    }
    FUZZ_CHECK(r.has_value());
    const auto in = all.span();
    FUZZ_CHECK(std::equal(r->response.begin(), r->response.end(), in.begin()));
    FUZZ_CHECK(std::equal(r->username_field.begin(), r->username_field.end(), in.begin() + 16));
    const std::string_view name = r->username();
    FUZZ_CHECK(name.size() <= wire::md5_username_field);
    FUZZ_CHECK(name.find('\0') == std::string_view::npos);

    const auto enc = wire::encode_md5_reply(r->response, name);
    const fuzz::exact_copy enc_copy(enc);
    const auto again = wire::decode_md5_reply(enc_copy.span());
    FUZZ_CHECK(again && again->response == r->response && again->username() == name);
    // Canonical padding: everything after the name is NUL.
    const bool padded = std::all_of(in.begin() + 16 + std::ptrdiff_t(name.size()), in.begin() + 48,
                                    [](std::byte b) { return b == std::byte{0}; });
    if (padded) FUZZ_CHECK(fuzz::same_bytes(std::span(enc), in.first(wire::md5_reply_size)));

    // The verifier, with the trailing input as challenge and password.
    std::array<std::byte, 16> challenge{};
    const auto tail = in.subspan(wire::md5_reply_size);
    std::copy_n(tail.begin(), std::min<std::size_t>(16, tail.size()), challenge.begin());
    const auto pw_bytes = tail.size() > 16 ? tail.subspan(16) : std::span<const std::byte>{};
    const std::string_view password(reinterpret_cast<const char*>(pw_bytes.data()), pw_bytes.size());
    const bool ok = auth::md5_verify(*r, name, password, challenge);
    const auto expected = auth::md5_response(password, challenge);
    FUZZ_CHECK(ok == (expected == r->response));
    const auto honest = wire::decode_md5_reply(wire::encode_md5_reply(expected, name));
    FUZZ_CHECK(auth::md5_verify(*honest, name, password, challenge));
    return 0;
}
