// Field arithmetic mod p = 2^255 − 19 for EC-SRP5 — PROTOCOL §6.3.2. Internal to
// auth/ec_srp5.hpp.
//
// An element is five 51-bit limbs, least significant first: value = Σ v[i]·2^(51·i). Every
// function here returns a "weakly reduced" element (each limb < 2^52, so value < 2^256, not
// necessarily < p) and accepts weakly reduced inputs; fe_canonical() and fe_to_bytes() reduce
// fully. 2^255 ≡ 19 (mod p) folds the top carry back into limb 0.
//
// Constant time: add, sub, mul, sqr, cswap, canonical, invert and the exponentiations contain no
// branch and no memory index that depends on an element's value (loop bounds and exponents are
// public constants). fe_sqrt() branches on whether its input is a square; every caller's input
// is public or the protocol itself already reveals that fact (see math::lift_x).
//
// Why not Botan's BigInt/CurveGFp here: see "Implementation choice" in auth/ec_srp5.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace btest::auth::ec_srp5::detail {

__extension__ using u128 = unsigned __int128;  // GCC and Clang; the kit targets both

/// An element of GF(2^255 − 19). Plain value type; wipe with secure_scrub_memory when secret.
struct fe {
    std::array<std::uint64_t, 5> v{};
};

inline constexpr std::uint64_t fe_limb_mask = (std::uint64_t{1} << 51) - 1;

constexpr fe fe_zero() noexcept { return {}; }
constexpr fe fe_one() noexcept { return {{1, 0, 0, 0, 0}}; }

/// One carry pass; input limbs < 2^63, output limbs < 2^52.
constexpr fe fe_carry(fe a) noexcept {
    std::uint64_t c = a.v[0] >> 51;
    a.v[0] &= fe_limb_mask;
    a.v[1] += c;
    c = a.v[1] >> 51;
    a.v[1] &= fe_limb_mask;
    a.v[2] += c;
    c = a.v[2] >> 51;
    a.v[2] &= fe_limb_mask;
    a.v[3] += c;
    c = a.v[3] >> 51;
    a.v[3] &= fe_limb_mask;
    a.v[4] += c;
    c = a.v[4] >> 51;
    a.v[4] &= fe_limb_mask;
    a.v[0] += 19 * c;
    return a;
}

constexpr fe fe_add(const fe& a, const fe& b) noexcept {
    fe r;
    for (std::size_t i = 0; i < 5; ++i) r.v[i] = a.v[i] + b.v[i];
    return fe_carry(r);
}

/// a − b, computed as a + 4p − b so no limb underflows (b's limbs are < 2^52 < 4p's).
constexpr fe fe_sub(const fe& a, const fe& b) noexcept {
    constexpr std::uint64_t four_p0 = 4 * (fe_limb_mask - 18);  // 4·(2^51 − 19)
    constexpr std::uint64_t four_pi = 4 * fe_limb_mask;         // 4·(2^51 − 1)
    fe r;
    r.v[0] = a.v[0] + four_p0 - b.v[0];
    for (std::size_t i = 1; i < 5; ++i) r.v[i] = a.v[i] + four_pi - b.v[i];
    return fe_carry(r);
}

constexpr fe fe_neg(const fe& a) noexcept { return fe_sub(fe_zero(), a); }

namespace fe_impl {
/// Carries five 128-bit column sums (each < 2^115) into a weakly reduced element.
constexpr fe carry_wide(u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) noexcept {
    fe out;
    r1 += r0 >> 51;
    out.v[0] = static_cast<std::uint64_t>(r0) & fe_limb_mask;
    r2 += r1 >> 51;
    out.v[1] = static_cast<std::uint64_t>(r1) & fe_limb_mask;
    r3 += r2 >> 51;
    out.v[2] = static_cast<std::uint64_t>(r2) & fe_limb_mask;
    r4 += r3 >> 51;
    out.v[3] = static_cast<std::uint64_t>(r3) & fe_limb_mask;
    const u128 top = r4 >> 51;  // < 2^64
    out.v[4] = static_cast<std::uint64_t>(r4) & fe_limb_mask;
    const u128 t0 = u128{out.v[0]} + top * 19;  // < 2^69: keep it wide
    out.v[0] = static_cast<std::uint64_t>(t0) & fe_limb_mask;
    out.v[1] += static_cast<std::uint64_t>(t0 >> 51);  // < 2^18 added: limb stays < 2^52
    return out;
}
} // namespace fe_impl

constexpr fe fe_mul(const fe& a, const fe& b) noexcept {
    const u128 a0 = a.v[0], a1 = a.v[1], a2 = a.v[2], a3 = a.v[3], a4 = a.v[4];
    const u128 b0 = b.v[0], b1 = b.v[1], b2 = b.v[2], b3 = b.v[3], b4 = b.v[4];
    const u128 b1_19 = 19 * b1, b2_19 = 19 * b2, b3_19 = 19 * b3, b4_19 = 19 * b4;
    return fe_impl::carry_wide(a0 * b0 + a1 * b4_19 + a2 * b3_19 + a3 * b2_19 + a4 * b1_19,
                               a0 * b1 + a1 * b0 + a2 * b4_19 + a3 * b3_19 + a4 * b2_19,
                               a0 * b2 + a1 * b1 + a2 * b0 + a3 * b4_19 + a4 * b3_19,
                               a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + a4 * b4_19,
                               a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0);
}

constexpr fe fe_sqr(const fe& a) noexcept {
    const u128 a0 = a.v[0], a1 = a.v[1], a2 = a.v[2], a3 = a.v[3], a4 = a.v[4];
    const u128 d0 = 2 * a0, d1 = 2 * a1;
    const u128 a3_19 = 19 * a3, a4_19 = 19 * a4, a3_38 = 38 * a3, a4_38 = 38 * a4;
    return fe_impl::carry_wide(a0 * a0 + a1 * a4_38 + a2 * a3_38,
                               d0 * a1 + a2 * a4_38 + a3 * a3_19,
                               d0 * a2 + a1 * a1 + a3 * a4_38,
                               d0 * a3 + d1 * a2 + a4 * a4_19,
                               d0 * a4 + d1 * a3 + a2 * a2);
}

/// a·k for a small constant k < 2^32.
constexpr fe fe_mul_small(const fe& a, std::uint32_t k) noexcept {
    return fe_impl::carry_wide(u128{a.v[0]} * k, u128{a.v[1]} * k, u128{a.v[2]} * k,
                               u128{a.v[3]} * k, u128{a.v[4]} * k);
}

/// a^(2^n): n squarings.
constexpr fe fe_sqr_n(fe a, int n) noexcept {
    for (int i = 0; i < n; ++i) a = fe_sqr(a);
    return a;
}

/// Swaps a and b when bit == 1, leaves them when bit == 0, without branching on bit.
constexpr void fe_cswap(fe& a, fe& b, std::uint64_t bit) noexcept {
    const std::uint64_t mask = std::uint64_t{0} - bit;
    for (std::size_t i = 0; i < 5; ++i) {
        const std::uint64_t x = mask & (a.v[i] ^ b.v[i]);
        a.v[i] ^= x;
        b.v[i] ^= x;
    }
}

/// The unique representative in [0, p), limbs < 2^51.
constexpr fe fe_canonical(fe a) noexcept {
    a = fe_carry(fe_carry(a));  // now every limb < 2^51: value in [0, 2^255)
    // Add 19: a value ≥ p carries out of bit 255 and wraps to +19, i.e. becomes (a − p) + 19.
    a.v[0] += 19;
    a = fe_carry(a);            // value = (a mod p) + 19, in [19, 2^255)
    // Add 2^255 − 19 limb-wise and drop bit 255: leaves (a mod p).
    a.v[0] += fe_limb_mask - 18;
    for (std::size_t i = 1; i < 5; ++i) a.v[i] += fe_limb_mask;
    for (std::size_t i = 0; i < 4; ++i) {
        a.v[i + 1] += a.v[i] >> 51;
        a.v[i] &= fe_limb_mask;
    }
    a.v[4] &= fe_limb_mask;
    return a;
}

/// Equality of the values mod p (constant time; the result is the caller's to branch on).
constexpr bool fe_equal(const fe& a, const fe& b) noexcept {
    const fe x = fe_canonical(a), y = fe_canonical(b);
    std::uint64_t diff = 0;
    for (std::size_t i = 0; i < 5; ++i) diff |= x.v[i] ^ y.v[i];
    return diff == 0;
}

constexpr bool fe_is_zero(const fe& a) noexcept { return fe_equal(a, fe_zero()); }

/// The low bit of the canonical value: the "parity" of PROTOCOL §6.3.4.
constexpr std::uint8_t fe_parity(const fe& a) noexcept {
    return static_cast<std::uint8_t>(fe_canonical(a).v[0] & 1);
}

/// Loads 32 big-endian bytes holding any value below 2^256; the result is that value mod p.
constexpr fe fe_from_bytes(const std::array<std::byte, 32>& be) noexcept {
    std::array<std::uint64_t, 4> w{};  // little-endian 64-bit words
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 8; ++j)
            w[i] |= std::to_integer<std::uint64_t>(be[31 - 8 * i - j]) << (8 * j);
    fe r;
    r.v[0] = w[0] & fe_limb_mask;
    r.v[1] = ((w[0] >> 51) | (w[1] << 13)) & fe_limb_mask;
    r.v[2] = ((w[1] >> 38) | (w[2] << 26)) & fe_limb_mask;
    r.v[3] = ((w[2] >> 25) | (w[3] << 39)) & fe_limb_mask;
    r.v[4] = (w[3] >> 12) & fe_limb_mask;
    r.v[0] += 19 * (w[3] >> 63);  // bit 255: 2^255 ≡ 19
    return r;
}

/// The canonical value as 32 big-endian bytes.
constexpr std::array<std::byte, 32> fe_to_bytes(const fe& a) noexcept {
    const fe c = fe_canonical(a);
    const std::array<std::uint64_t, 4> w{c.v[0] | (c.v[1] << 51), (c.v[1] >> 13) | (c.v[2] << 38),
                                         (c.v[2] >> 26) | (c.v[3] << 25), (c.v[3] >> 39) | (c.v[4] << 12)};
    std::array<std::byte, 32> be{};
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 8; ++j) be[31 - 8 * i - j] = std::byte((w[i] >> (8 * j)) & 0xff);
    return be;
}

/// Parses 64 hex digits into 32 big-endian bytes at compile time; for the constants of
/// PROTOCOL §6.3.1.
constexpr std::array<std::byte, 32> bytes_from_hex(const char (&hex)[65]) noexcept {
    std::array<std::byte, 32> be{};
    for (std::size_t i = 0; i < 64; ++i) {
        const char c = hex[i];
        const unsigned d = c >= '0' && c <= '9' ? unsigned(c - '0')
                         : c >= 'a' && c <= 'f' ? unsigned(c - 'a' + 10)
                                                : unsigned(c - 'A' + 10);
        be[i / 2] |= std::byte(i % 2 == 0 ? d << 4 : d);
    }
    return be;
}
constexpr fe fe_from_hex(const char (&hex)[65]) noexcept { return fe_from_bytes(bytes_from_hex(hex)); }

namespace fe_impl {
/// z^(2^250 − 1) and z^11, the shared prefix of the two fixed exponentiations below.
struct pow_prefix {
    fe z_250_0;
    fe z11;
    fe z2;
};
constexpr pow_prefix pow_2_250_minus_1(const fe& z) noexcept {
    const fe z2 = fe_sqr(z);
    const fe z9 = fe_mul(fe_sqr_n(z2, 2), z);
    const fe z11 = fe_mul(z9, z2);
    const fe z_5_0 = fe_mul(fe_sqr(z11), z9);              // 2^5 − 1
    const fe z_10_0 = fe_mul(fe_sqr_n(z_5_0, 5), z_5_0);     // 2^10 − 1
    const fe z_20_0 = fe_mul(fe_sqr_n(z_10_0, 10), z_10_0);  // 2^20 − 1
    const fe z_40_0 = fe_mul(fe_sqr_n(z_20_0, 20), z_20_0);  // 2^40 − 1
    const fe z_50_0 = fe_mul(fe_sqr_n(z_40_0, 10), z_10_0);  // 2^50 − 1
    const fe z_100_0 = fe_mul(fe_sqr_n(z_50_0, 50), z_50_0); // 2^100 − 1
    const fe z_200_0 = fe_mul(fe_sqr_n(z_100_0, 100), z_100_0);
    return {fe_mul(fe_sqr_n(z_200_0, 50), z_50_0), z11, z2};  // 2^250 − 1
}
} // namespace fe_impl

/// z^(p − 2) = z^-1 for z ≠ 0 (and 0 for z = 0). PROTOCOL §6.3.2.
constexpr fe fe_invert(const fe& z) noexcept {
    const auto pre = fe_impl::pow_2_250_minus_1(z);
    return fe_mul(fe_sqr_n(pre.z_250_0, 5), pre.z11);  // 2^255 − 32 + 11 = p − 2
}

/// z^((p + 3)/8) = z^(2^252 − 2), the square-root candidate for p ≡ 5 (mod 8).
constexpr fe fe_pow_p3_8(const fe& z) noexcept {
    const auto pre = fe_impl::pow_2_250_minus_1(z);
    return fe_mul(fe_sqr_n(pre.z_250_0, 2), pre.z2);
}

/// √−1 = 2^((p − 1)/4) mod p.
inline constexpr fe fe_sqrt_m1 =
    fe_from_hex("2b8324804fc1df0b2b4d00993dfbd7a72f431806ad2fe478c4ee1b274a0ea0b0");

/// A square root of c (PROTOCOL §6.3.2), or nullopt when c is not a square. Which of the two
/// roots is returned is unspecified; callers fix the parity. sqrt(0) = 0.
constexpr std::optional<fe> fe_sqrt(const fe& c) noexcept {
    const fe t = fe_pow_p3_8(c);
    const fe t2 = fe_sqr(t);
    if (fe_equal(t2, c)) return t;
    if (fe_equal(t2, fe_neg(c))) return fe_mul(t, fe_sqrt_m1);
    return std::nullopt;
}

} // namespace btest::auth::ec_srp5::detail
