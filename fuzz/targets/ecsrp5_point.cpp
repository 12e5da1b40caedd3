// EC-SRP5 point decoding (PROTOCOL §6.3.4, §13.5): 32 bytes of Montgomery u plus a parity byte.
// decode_point accepts exactly the u < p, u ≠ 0 that lift, with parity 0/1; an accepted point
// lies on the curve and re-encodes to the same 33 bytes. lift_x reduces any 256-bit u mod p
// and returns a point on the curve with the asked parity. With a scalar appended (and a marker
// byte, so that only some inputs pay for the ladders), the full ladder with y-recovery and the
// x-only ladder must agree.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include <btest/auth/ec_srp5.hpp>

#include "fuzz/support.hpp"

namespace {

using namespace btest;
namespace math = btest::auth::ec_srp5::math;
namespace fe_ops = btest::auth::ec_srp5::detail;

bool below_p(const wire::u256_bytes& u) {
    return std::lexicographical_compare(u.begin(), u.end(), math::p_bytes.begin(), math::p_bytes.end());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 33) return 0;
    const fuzz::exact_copy in(data, size);
    wire::ec_point_bytes key;
    std::copy_n(in.span().begin(), 32, key.u.begin());
    key.parity = data[32];

    const auto u_fe = fe_ops::fe_from_bytes(key.u);
    const auto p = math::decode_point(key);
    if (key.parity > 1) {
        FUZZ_CHECK(p.error() == errc::bad_parity);
    } else if (!below_p(key.u) || fe_ops::fe_is_zero(u_fe)) {
        FUZZ_CHECK(p.error() == errc::bad_point);
    }
    if (p) {
        FUZZ_CHECK(!p->is_identity());
        FUZZ_CHECK(p->on_curve());
        FUZZ_CHECK(p->encode() == key);
        FUZZ_CHECK(p->parity() == key.parity);
        const auto again = math::decode_point(p->encode());
        FUZZ_CHECK(again && *again == *p);
        FUZZ_CHECK(math::add(*p, math::negate(*p)).is_identity());
        const auto twice = math::add(*p, *p);
        FUZZ_CHECK(twice.on_curve());
    } else {
        FUZZ_CHECK(p.error() == errc::bad_point || p.error() == errc::bad_parity);
    }

    // lift_x on any 256-bit value (reduced mod p first) with parity 0/1.
    const std::uint8_t parity = data[32] & 1;
    const auto q = math::lift_x(key.u, parity);
    if (q) {
        FUZZ_CHECK(!q->is_identity());
        FUZZ_CHECK(q->on_curve());
        FUZZ_CHECK(fe_ops::fe_equal(q->u_fe(), u_fe));
        if (!fe_ops::fe_is_zero(q->y_fe())) FUZZ_CHECK(q->parity() == parity);
        const auto other = math::lift_x(key.u, std::uint8_t(parity ^ 1));
        FUZZ_CHECK(other && *other == math::negate(*q));
    }
    // decode_point agrees with lift_x where it accepts.
    if (p) FUZZ_CHECK(q && *q == *p);
    if (key.parity <= 1 && below_p(key.u) && !fe_ops::fe_is_zero(u_fe)) FUZZ_CHECK(p.has_value() == q.has_value());

    // Optional: [33..65) a scalar, [65] = 'm'.
    if (p && size >= 66 && data[65] == 'm') {
        btest::auth::ec_srp5::bytes32 k{};
        std::copy_n(in.span().begin() + 33, 32, k.begin());
        const auto r = math::mul(k, *p);
        FUZZ_CHECK(r.on_curve());
        const auto ru = math::mul_u(k, *p);
        FUZZ_CHECK(ru.has_value() == !r.is_identity());
        if (ru) FUZZ_CHECK(*ru == r.u());
    }
    return 0;
}
