// EC-SRP5 frames (PROTOCOL §2.5): the input is a stream of `[len][payload]` frames. Each frame
// is split off an exactly-sized copy of what remains, and its payload decoded as MSG1, MSG2 and
// MSG3/MSG4; every accepted message re-encodes to exactly the frame it came from and decodes
// back to the same value. Errors are the documented ones (§13.5).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <btest/wire/ec_srp5.hpp>

#include "fuzz/support.hpp"

namespace {

using namespace btest;

void check_payload(std::span<const std::byte> frame, std::span<const std::byte> payload) {
    const fuzz::exact_copy p(payload);

    const auto m1 = wire::decode_ecsrp5_msg1(p.span());
    if (m1) {
        const auto ulen = m1->username.size();
        FUZZ_CHECK(ulen <= wire::ecsrp5_max_username);
        FUZZ_CHECK(payload.size() == ulen + 34);
        FUZZ_CHECK(m1->username.find('\0') == std::string_view::npos);
        FUZZ_CHECK(m1->client_key.parity <= 1);
        std::array<std::byte, wire::ecsrp5_max_frame> buf{};
        const auto n = wire::encode_ecsrp5_msg1(m1->username, m1->client_key, buf);
        FUZZ_CHECK(n == wire::ecsrp5_msg1_frame_size(ulen));
        FUZZ_CHECK(fuzz::same_bytes(std::span<const std::byte>(buf.data(), n), frame));
        // Too small a buffer is refused, not overrun.
        FUZZ_CHECK(wire::encode_ecsrp5_msg1(m1->username, m1->client_key, std::span(buf).first(n - 1)) == 0);
        const fuzz::exact_copy enc{std::span<const std::byte>(buf.data(), n)};
        const auto f = wire::decode_ecsrp5_frame(enc.span());
        FUZZ_CHECK(f && f->frame_size == n);
        const auto again = wire::decode_ecsrp5_msg1(f->payload);
        FUZZ_CHECK(again && again->username == m1->username && again->client_key == m1->client_key);
    } else {
        const auto e = m1.error();
        FUZZ_CHECK(e == errc::bad_frame_length || e == errc::bad_username || e == errc::bad_parity);
        FUZZ_CHECK((e == errc::bad_frame_length) == (payload.size() < 34));
    }

    const auto m2 = wire::decode_ecsrp5_msg2(p.span());
    if (m2) {
        FUZZ_CHECK(payload.size() == wire::ecsrp5_msg2_len);
        const auto enc = wire::encode_ecsrp5_msg2(*m2);
        FUZZ_CHECK(fuzz::same_bytes(std::span<const std::byte>(enc), frame));
        const fuzz::exact_copy c{std::span<const std::byte>(enc).subspan(1)};
        const auto again = wire::decode_ecsrp5_msg2(c.span());
        FUZZ_CHECK(again && *again == *m2);
    } else {
        const auto e = m2.error();
        FUZZ_CHECK(e == errc::bad_frame_length || e == errc::bad_parity);
        FUZZ_CHECK((e == errc::bad_frame_length) == (payload.size() != wire::ecsrp5_msg2_len));
    }

    const auto pr = wire::decode_ecsrp5_proof(p.span());
    FUZZ_CHECK(pr.has_value() == (payload.size() == wire::ecsrp5_proof_len));
    if (pr) {
        const auto enc = wire::encode_ecsrp5_proof(*pr);
        FUZZ_CHECK(fuzz::same_bytes(std::span<const std::byte>(enc), frame));
        const fuzz::exact_copy c{std::span<const std::byte>(enc).subspan(1)};
        const auto again = wire::decode_ecsrp5_proof(c.span());
        FUZZ_CHECK(again && *again == *pr);
    } else {
        FUZZ_CHECK(pr.error() == errc::bad_frame_length);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> rest(data, size);
    for (;;) {
        const fuzz::exact_copy in(rest.data(), rest.size());
        const auto f = wire::decode_ecsrp5_frame(in.span());
        if (!f) {
            FUZZ_CHECK(f.error() == errc::truncated);
            FUZZ_CHECK(rest.empty() || rest.size() < 1u + rest[0]);
            break;
        }
        FUZZ_CHECK(f->frame_size == 1 + f->payload.size());
        FUZZ_CHECK(f->frame_size <= rest.size());
        FUZZ_CHECK(f->payload.data() == in.span().data() + 1);
        FUZZ_CHECK(f->payload.size() == rest[0]);
        check_payload(in.first(f->frame_size), f->payload);
        rest = rest.subspan(f->frame_size);
    }
    return 0;
}
