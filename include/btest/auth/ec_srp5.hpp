// EC-SRP5 authentication mathematics — PROTOCOL §6.3 (framing is wire/ec_srp5.hpp, §2.5).
//
// Curve25519 computed in short-Weierstrass form y² = x³ + a·x + b over p = 2^255 − 19; G has
// Montgomery u = 9 and even y, prime order r, cofactor 8 (constants: §6.3.1). A point travels
// as its Montgomery u = x − A/3 (32 bytes big-endian, < p) plus the parity of y (§6.3.4).
// Every formula, stated once:
//
//   lift_x(u, par)  c = u³ + A·u² + u mod p; v = √c chosen with v mod 2 = par; (u + A/3, v)
//   redp1(x, par)   t = SHA256(x); loop { h = SHA256(t); Q = lift_x(int(h) mod p, par);
//                   if Q exists return Q; t = t + 1 mod 2^256 }
//   inner = SHA256(user ‖ ":" ‖ password)     i = SHA256(salt ‖ inner)     V = i·G
//   validator_record = (salt, x_γ = u(V), parity_γ = y(V) mod 2)
//   client  W_a = s_a·G                               server  W_b = s_b·G + redp1(x_γ, 0)
//   j = SHA256(u(W_a) ‖ u(W_b))                      (the 32-byte u values as sent, no parity)
//   client  k = (i·j + s_a) mod r;  Z = k·(W_b + redp1(x_γ, 1))
//   server  Z = s_b·(W_a + j·V)                      (V lifted with its TRUE parity, §6.3.10)
//   z = u(Z);  client_proof = SHA256(j ‖ z);  server_proof = SHA256(j ‖ client_proof ‖ z)
//
// Scalars are 32-byte big-endian integers and multiply at full 256-bit width (§6.3.5).
//
// Implementation choice. Points are affine Weierstrass (x, y) over the dedicated field type of
// detail/ec_srp5_field.hpp. A scalar multiplication is the Montgomery ladder (RFC 7748
// formulas, x-only) over all 256 bits of the scalar, followed when y is needed by Okeya–Sakurai
// y-recovery; the Montgomery and Weierstrass forms are isomorphic (x = u + A/3, same y), so the
// results are those of Weierstrass arithmetic (§6.3.3). Botan 2's EC_Group blinded multiplies
// are not used: for this curve Botan takes its generic-prime path, measured on the development
// machine at ~80 µs per blinded base-point and ~470 µs per blinded variable-point
// multiplication, which would put a server handshake near 0.8 ms; the ladder takes ~50 µs and
// a whole server handshake ~160 µs (benchmarks/kit/bench_ec_srp5.cpp). The ladder is constant
// time by construction (a fixed 256 iterations, masked swaps, branch-free field arithmetic),
// multiplies by the full scalar as the spec requires (Botan's blinding adds multiples of r,
// which is equivalent only inside the prime-order subgroup), and needs no randomness beyond
// s_a and s_b. Botan supplies SHA-256, HMAC, the mod-r scalar arithmetic,
// constant_time_compare and secure_scrub_memory; the unit tests check the curve arithmetic
// against Botan's EC_Group/PointGFp.
//
// Timing that the protocol itself leaks: redp1's number of rounds depends on x_γ, i.e. on
// (password, salt). A server avoids it by logging in from prepared records (prepare(),
// credential_store::ecsrp5_prepared); a client necessarily runs redp1 on the salt the server
// sent, so a malicious server that times it learns about two bits of (password, salt) per salt.
// An unknown user name is answered with decoy_record, which needs no curve arithmetic, so a
// server refuses it as fast as a known name's wrong password (no user enumeration by timing).
//
// Secrets (s_a, s_b, i, k, z, inner hash) are wiped with Botan::secure_scrub_memory once used,
// and by the destructors (best effort: copies the compiler keeps in registers or spills are
// out of reach).
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include <botan/bigint.h>
#include <botan/hash.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/reducer.h>

#include "btest/auth/detail/ec_srp5_field.hpp"
#include "btest/core/bytes.hpp"
#include "btest/core/entropy.hpp"
#include "btest/core/result.hpp"
#include "btest/wire/ec_srp5.hpp"

namespace btest::auth::ec_srp5 {

using bytes32 = wire::u256_bytes;  ///< a 32-byte big-endian integer, hash or coordinate
using salt_bytes = std::array<std::byte, 16>;

namespace detail {
inline const std::uint8_t* u8(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p); }
inline std::uint8_t* u8(std::byte* p) noexcept { return reinterpret_cast<std::uint8_t*>(p); }

/// Best-effort wipe of a secret held in a trivially copyable object.
template <class T>
void wipe(T& secret) noexcept {
    Botan::secure_scrub_memory(&secret, sizeof(T));
}

/// SHA256 of the concatenation of `parts`. Through Botan's public HashFunction interface
/// (botan/sha2_32.h is slated to become internal).
inline bytes32 sha256(std::initializer_list<std::span<const std::byte>> parts) {
    const auto h = Botan::HashFunction::create_or_throw("SHA-256");
    for (auto part : parts) h->update(u8(part.data()), part.size());
    bytes32 out{};
    h->final(u8(out.data()));
    return out;
}
} // namespace detail

/// The building blocks of §6.3.2–§6.3.6, exposed so that tests can check every intermediate
/// value of spec/vectors/ecsrp5.json. Pure functions on values; safe from any number of threads.
namespace math {

using detail::fe;

/// Curve constants of PROTOCOL §6.3.1 (compile-time constants: no static state).
inline constexpr fe montgomery_a{{486662, 0, 0, 0, 0}};
inline constexpr std::uint32_t ladder_a24 = 121665;  // (A − 2)/4, RFC 7748
inline constexpr fe a_over_3 = detail::fe_from_hex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad2451");
inline constexpr fe weierstrass_a = detail::fe_from_hex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa984914a144");
inline constexpr fe weierstrass_b = detail::fe_from_hex("7b425ed097b425ed097b425ed097b425ed097b425ed097b4260b5e9c7710c864");
inline constexpr fe generator_x = detail::fe_from_hex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad245a");
inline constexpr fe generator_y = detail::fe_from_hex("5f51e65e475f794b1fe122d388b72eb36dc2b28192839e4dd6163a5d81312c14");
/// p and r as big-endian bytes.
inline constexpr bytes32 p_bytes = detail::bytes_from_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
inline constexpr bytes32 order_bytes = detail::bytes_from_hex("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed");

/// A curve point in affine Weierstrass coordinates, or the identity O. Value type.
class point {
public:
    constexpr point() noexcept = default;  ///< the identity O
    /// Precondition: (x, y) lies on the curve (on_curve() checks; the functions below only
    /// construct points that do).
    constexpr point(const fe& x, const fe& y) noexcept : x_(x), y_(y), identity_(false) {}

    bool is_identity() const noexcept { return identity_; }
    const fe& x_fe() const noexcept { return x_; }
    const fe& y_fe() const noexcept { return y_; }
    fe u_fe() const noexcept { return detail::fe_sub(x_, a_over_3); }

    /// Coordinates as 32 big-endian bytes, fully reduced. Precondition: !is_identity().
    bytes32 weierstrass_x() const noexcept { assert(!identity_); return detail::fe_to_bytes(x_); }
    bytes32 weierstrass_y() const noexcept { assert(!identity_); return detail::fe_to_bytes(y_); }
    /// Montgomery u = x − A/3. Precondition: !is_identity().
    bytes32 u() const noexcept { assert(!identity_); return detail::fe_to_bytes(u_fe()); }
    /// y mod 2. Precondition: !is_identity().
    std::uint8_t parity() const noexcept { assert(!identity_); return detail::fe_parity(y_); }
    /// The wire form (u, parity) of §6.3.4. Precondition: !is_identity() (O has no wire form;
    /// in release builds it encodes as u = 0, which every receiver rejects).
    wire::ec_point_bytes encode() const noexcept {
        if (identity_) return {};
        return {u(), parity()};
    }
    /// y² = x³ + a·x + b (the identity counts as on the curve).
    bool on_curve() const noexcept {
        if (identity_) return true;
        using namespace detail;
        const fe rhs = fe_add(fe_mul(fe_add(fe_sqr(x_), weierstrass_a), x_), weierstrass_b);
        return fe_equal(fe_sqr(y_), rhs);
    }
    friend bool operator==(const point& a, const point& b) noexcept {
        if (a.identity_ || b.identity_) return a.identity_ == b.identity_;
        return detail::fe_equal(a.x_, b.x_) && detail::fe_equal(a.y_, b.y_);
    }

private:
    fe x_{};
    fe y_{};
    bool identity_ = true;
};

inline constexpr point generator() noexcept { return {generator_x, generator_y}; }

/// lift_x of §6.3.4 on an element u (already reduced mod p by construction): the point with
/// Montgomery u and y parity `parity` (0/1), or nullopt when u³ + A·u² + u has no square root.
/// When that value is 0 the result is the point of order 2 (y = 0, any parity); decode_point()
/// rejects it, redp1 (§6.3.6) accepts it.
inline std::optional<point> lift_x(const fe& u, std::uint8_t parity) noexcept {
    using namespace detail;
    const fe c = fe_mul(fe_add(fe_mul(fe_add(u, montgomery_a), u), fe_one()), u);  // u(u² + Au + 1)
    auto v = fe_sqrt(c);
    if (!v) return std::nullopt;
    if (fe_parity(*v) != parity) *v = fe_neg(*v);
    return point{fe_add(u, a_over_3), *v};
}
/// lift_x of §6.3.4 on 32 big-endian bytes: step 1 reduces any value below 2^256 mod p.
inline std::optional<point> lift_x(const bytes32& u_be, std::uint8_t parity) noexcept {
    return lift_x(detail::fe_from_bytes(u_be), parity);
}

/// Decodes a point received from the peer (§6.3.4, §13.5). Errors: bad_point when u ≥ p, when
/// u does not lift, or when it lifts to the point of order 2 (c = 0, i.e. u = 0); bad_parity
/// for a parity other than 0/1 (wire:: decoding already refuses those).
inline result<point> decode_point(const wire::ec_point_bytes& key) noexcept {
    if (key.parity > 1) return errc::bad_parity;
    // u < p, compared on the public big-endian bytes.
    for (std::size_t i = 0; i < 32; ++i) {
        if (key.u[i] != p_bytes[i]) {
            if (key.u[i] > p_bytes[i]) return errc::bad_point;
            break;
        }
        if (i == 31) return errc::bad_point;  // u == p
    }
    const fe u = detail::fe_from_bytes(key.u);
    if (detail::fe_is_zero(u)) return errc::bad_point;  // c = 0: the point of order 2
    auto q = lift_x(u, key.parity);
    if (!q) return errc::bad_point;
    return *q;
}

/// −P.
inline point negate(const point& p) noexcept {
    if (p.is_identity()) return p;
    return {p.x_fe(), detail::fe_neg(p.y_fe())};
}

/// P + Q with the affine group law of §6.3.5 (handles O, P = Q and P = −Q). Branches only on
/// those exceptional equalities; the field operations themselves are constant time.
inline point add(const point& p, const point& q) noexcept {
    using namespace detail;
    if (p.is_identity()) return q;
    if (q.is_identity()) return p;
    fe lambda;
    if (fe_equal(p.x_fe(), q.x_fe())) {
        if (fe_is_zero(fe_add(p.y_fe(), q.y_fe()))) return {};
        // P = Q, y ≠ 0: λ = (3x² + a) / (2y)
        lambda = fe_mul(fe_add(fe_mul_small(fe_sqr(p.x_fe()), 3), weierstrass_a),
                        fe_invert(fe_add(p.y_fe(), p.y_fe())));
    } else {
        lambda = fe_mul(fe_sub(q.y_fe(), p.y_fe()), fe_invert(fe_sub(q.x_fe(), p.x_fe())));
    }
    const fe x3 = fe_sub(fe_sub(fe_sqr(lambda), p.x_fe()), q.x_fe());
    const fe y3 = fe_sub(fe_mul(lambda, fe_sub(p.x_fe(), x3)), p.y_fe());
    return {x3, y3};
}

namespace ladder_impl {
/// The Montgomery ladder's state: x1 = u(P); (x2:z2) = k·P and (x3:z3) = (k+1)·P on exit.
/// Kept in one struct, temporaries included, so that one wipe clears all of it.
struct state {
    fe x1, x2, z2, x3, z3;
    fe a, aa, b, bb, e, c, d, da, cb;
};

/// Runs the ladder over all 256 bits of k, most significant first (RFC 7748 §5 formulas with
/// a24 = 121665). Constant time in k: the bit index is public, the swap is masked.
inline void run(state& s, const bytes32& k) noexcept {
    using namespace detail;
    s.x2 = fe_one();
    s.z2 = fe_zero();
    s.x3 = s.x1;
    s.z3 = fe_one();
    std::uint64_t swap = 0;
    for (int t = 255; t >= 0; --t) {
        const auto idx = static_cast<std::size_t>(31 - t / 8);
        const std::uint64_t bit = (std::to_integer<std::uint64_t>(k[idx]) >> (t % 8)) & 1;
        swap ^= bit;
        fe_cswap(s.x2, s.x3, swap);
        fe_cswap(s.z2, s.z3, swap);
        swap = bit;
        s.a = fe_add(s.x2, s.z2);
        s.aa = fe_sqr(s.a);
        s.b = fe_sub(s.x2, s.z2);
        s.bb = fe_sqr(s.b);
        s.e = fe_sub(s.aa, s.bb);
        s.c = fe_add(s.x3, s.z3);
        s.d = fe_sub(s.x3, s.z3);
        s.da = fe_mul(s.d, s.a);
        s.cb = fe_mul(s.c, s.b);
        s.x3 = fe_sqr(fe_add(s.da, s.cb));
        s.z3 = fe_mul(s.x1, fe_sqr(fe_sub(s.da, s.cb)));
        s.x2 = fe_mul(s.aa, s.bb);
        s.z2 = fe_mul(s.e, fe_add(s.aa, fe_mul_small(s.e, ladder_a24)));
    }
    fe_cswap(s.x2, s.x3, swap);
    fe_cswap(s.z2, s.z3, swap);
}
} // namespace ladder_impl

/// k·P for the full 256-bit big-endian scalar k (§6.3.5), in constant time with respect to k
/// (the only branches are on results of probability ~2^-250 for a prime-order P: k·P = O or
/// k·P = −P). Any point is accepted, including O and points outside the prime-order subgroup.
inline point mul(const bytes32& k, const point& p) noexcept {
    using namespace detail;
    if (p.is_identity()) return {};
    ladder_impl::state s;
    s.x1 = p.u_fe();
    if (fe_is_zero(s.x1)) {  // P = (0, 0) has order 2 (the only such point)
        return (std::to_integer<unsigned>(k[31]) & 1) ? p : point{};
    }
    ladder_impl::run(s, k);
    // Okeya–Sakurai y-recovery on the Montgomery curve v² = u³ + A·u² + u (B = 1): from P,
    // Q = (x2:z2) = k·P and R = (x3:z3) = Q + P, the projective (X : Y : Z) of Q.
    const fe& xp = s.x1;
    fe v1 = fe_mul(xp, s.z2);
    fe v2 = fe_add(s.x2, v1);
    fe v3 = fe_mul(fe_sqr(fe_sub(s.x2, v1)), s.x3);
    v1 = fe_mul_small(s.z2, 2 * 486662);  // 2A·z2
    v2 = fe_add(v2, v1);
    fe v4 = fe_add(fe_mul(xp, s.x2), s.z2);
    v2 = fe_mul(v2, v4);
    v1 = fe_mul(v1, s.z2);
    v2 = fe_mul(fe_sub(v2, v1), s.z3);
    const fe y_proj = fe_sub(v2, v3);
    v1 = fe_mul(fe_mul(fe_add(p.y_fe(), p.y_fe()), s.z2), s.z3);
    const fe x_proj = fe_mul(v1, s.x2);
    const fe z_proj = fe_mul(v1, s.z2);
    point out;
    if (fe_is_zero(s.z2)) {
        out = point{};            // k·P = O
    } else if (fe_is_zero(s.z3)) {
        out = negate(p);          // (k+1)·P = O, so k·P = −P (the formula degenerates)
    } else {
        const fe zi = fe_invert(z_proj);
        out = point{fe_add(fe_mul(x_proj, zi), a_over_3), fe_mul(y_proj, zi)};
    }
    wipe(s);
    wipe(v1);
    wipe(v2);
    wipe(v3);
    wipe(v4);
    return out;
}

/// u(k·P) as 32 big-endian bytes, x-only (cheaper than mul()), or nullopt when k·P = O.
/// Constant time with respect to k. Precondition: P ≠ O and P is not the point of order 2
/// (callers reject those first; they are asserted).
inline std::optional<bytes32> mul_u(const bytes32& k, const point& p) noexcept {
    using namespace detail;
    assert(!p.is_identity());
    ladder_impl::state s;
    s.x1 = p.u_fe();
    assert(!fe_is_zero(s.x1));
    ladder_impl::run(s, k);
    std::optional<bytes32> out;
    if (!fe_is_zero(s.z2)) out = fe_to_bytes(fe_mul(s.x2, fe_invert(s.z2)));
    wipe(s);
    return out;
}

/// redp1 of §6.3.6 with its intermediate values (for the vectors' "redp1 details").
struct redp1_trace {
    bytes32 first_hash{};      ///< t = SHA256(x)
    unsigned increments = 0;   ///< how many times t was incremented before a candidate lifted
    bytes32 winning_hash{};    ///< the SHA256(t) that lifted, before reduction mod p
    point q;                   ///< the result
};

/// redp1(x, parity) with details. The loop ends after about two rounds on average; each round
/// fails with probability about 1/2 independently (SHA-256), so it has no explicit bound. Its
/// running time depends on x (see "Timing" at the top of this file).
inline redp1_trace redp1_traced(const bytes32& x, std::uint8_t parity) {
    redp1_trace tr;
    bytes32 t = ec_srp5::detail::sha256({x});
    tr.first_hash = t;
    for (;;) {
        const bytes32 h = ec_srp5::detail::sha256({t});
        if (auto q = lift_x(h, parity)) {
            tr.winning_hash = h;
            tr.q = *q;
            return tr;
        }
        ++tr.increments;
        for (std::size_t i = 32; i-- > 0;) {  // t = t + 1 mod 2^256, big-endian
            t[i] = std::byte(std::to_integer<unsigned>(t[i]) + 1);
            if (t[i] != std::byte{0}) break;
        }
    }
}

/// redp1(x, parity) of §6.3.6. redp1(x, 1) = −redp1(x, 0).
inline point redp1(const bytes32& x, std::uint8_t parity) { return redp1_traced(x, parity).q; }

/// The points an unknown user's decoy record logs in from (decoy_record, §6.3.9 step 2), fixed
/// so that answering an unknown name needs no curve arithmetic at all (the unit tests recompute
/// them from these definitions):
///
///   V_d = redp1(SHA256("btest ec-srp5 decoy validator"), 0): the decoy validator, a point
///         nobody knows the discrete logarithm of (which is what keeps a decoy login failing);
///   T   = r·redp1(SHA256("btest ec-srp5 decoy torsion 1"), 0): a point of order 8;
///   γ_c = G + c·T for c = 0..7: the decoy blinding points, one per coset of ⟨G⟩.
///
/// Why this hides an unknown user: MSG2 carries W_b = s_b·G + γ with s_b fresh and random, so
/// the ⟨G⟩ part of γ never shows; only its coset (the class of r·W_b) does, and that is all a
/// client can learn about γ. A real user's γ = redp1(x_γ, 0) falls in a pseudo-random coset
/// (redp1's output is spread evenly over the eight); decoy_record draws c from the server
/// secret and the name, so each name keeps its coset across attempts, like a real user.
inline constexpr point decoy_validator{
    detail::fe_from_hex("2ab9e4161f7d5224ab19746fdd7d32a27c451f9f03be645770b957935fb61773"),
    detail::fe_from_hex("53edb20c6f00dd5db6933b9134187cef1036f77c3d3917b9268c8cee780f92b2")};
inline constexpr std::array<point, 8> decoy_gammas{{
    {detail::fe_from_hex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad245a"),
     detail::fe_from_hex("5f51e65e475f794b1fe122d388b72eb36dc2b28192839e4dd6163a5d81312c14")},
    {detail::fe_from_hex("208a5fcba826e2184cf1dc08c944e1796e698e2d611f1f35d18425234cc7ab3c"),
     detail::fe_from_hex("1491cddd7b1f5c3c40bcf4ff3fa47f29798da71f788b816580fe1f28f734d70c")},
    {detail::fe_from_hex("4bfbdcbbc82dff75fce309f1874d61c7eeba14fc95f7bcb22c15c8abe281a6e1"),
     detail::fe_from_hex("2e66cce0e0a9cf4405b64e4e4fd4df84b6c2f59c44b070fe3feedbd063916171")},
    {detail::fe_from_hex("48ba1178b53d945496c593976173d5f8a2935ae33c3b9dfb4f34104e5522fe85"),
     detail::fe_from_hex("34b37c92bb50c273aa022c5188cf65bee0bb6a68eb95ebf063d1d9420e62b1a5")},
    {detail::fe_from_hex("71c71c71c71c71c71c71c71c71c71c71c71c71c71c71c71c71c71c71c71eeb63"),
     detail::fe_from_hex("4783bac91b90343b1f361c03b59eec75e23353212a702721cdf315672454b9e2")},
    {detail::fe_from_hex("39f24ef5e600bf3f03b2473c78693b30178776c0fd841b2242038973621a2085"),
     detail::fe_from_hex("322ee77e7b240214a219bf8c02ca5f1b6a08af5aa22e8e7d69e24cd40c1250be")},
    {detail::fe_from_hex("495978998d2755df58724b63ce07f38d669b4058bf5d98a3293f8ca972dccf0e"),
     detail::fe_from_hex("569cb94433608bc26e24bbd11544d351fd0c674f1c5aac29dd0f18ce20d1633b")},
    {detail::fe_from_hex("5dd02a7128be38494caf4364d19486ca469906a2be0e2e2519c0931acbde970c"),
     detail::fe_from_hex("340fc3a22946cc44cf9c90f8534eb0ebd8b36e57937b135711bb506a1a52db19")},
}};

} // namespace math

// --- the protocol's steps (§6.3.7–§6.3.9), each a pure function ------------------------------

/// SHA256(user ‖ ":" ‖ password), the bytes taken as they are (UTF-8, §6.1).
inline bytes32 inner_hash(std::string_view user, std::string_view password) {
    const std::byte colon{0x3a};
    return detail::sha256({bytes::of(user), std::span<const std::byte>(&colon, 1), bytes::of(password)});
}

/// i = SHA256(salt ‖ inner): the validator's private scalar (password-equivalent: wipe it).
inline bytes32 validator_scalar(const salt_bytes& salt, const bytes32& inner) {
    return detail::sha256({salt, inner});
}

/// What a server stores per user: no password-equivalent secret.
struct validator_record {
    salt_bytes salt{};
    wire::ec_point_bytes validator;  ///< x_γ = u(V) and the parity of y(V), V = i·G
    friend bool operator==(const validator_record&, const validator_record&) = default;
};

/// The record for (user, password, salt) (§6.3.7), so that an account database can store
/// records only. Costs one scalar multiplication.
inline validator_record derive_record(std::string_view user, std::string_view password, const salt_bytes& salt) {
    bytes32 inner = inner_hash(user, password);
    bytes32 i = validator_scalar(salt, inner);
    validator_record rec{salt, math::mul(i, math::generator()).encode()};
    detail::wipe(inner);
    detail::wipe(i);
    return rec;
}

/// A record for an unknown user, derived deterministically from a per-server secret and the
/// username: salt = HMAC-SHA256(secret, "btest ec-srp5 fake salt" ‖ 00 ‖ user)[0..16),
/// V = HMAC-SHA256(secret, "btest ec-srp5 fake validator" ‖ 00 ‖ user)·G. A server that answers
/// unknown users with it fails them at the proof step exactly like a wrong password, with a
/// salt that stays the same across attempts (§6.3.9 step 2). `server_secret` must be random
/// and kept secret (e.g. 32 bytes drawn at server start). Costs one scalar multiplication
/// (~50 µs), and preparing it a redp1 loop, that a stored prepared record does not: an unknown
/// user's login is measurably slower than a known user's. A server logs unknown users in from
/// decoy_record instead, which costs what a stored record costs.
inline validator_record fake_record(std::string_view user, std::span<const std::byte, 32> server_secret) {
    using detail::u8;
    const auto mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    mac->set_key(u8(server_secret.data()), server_secret.size());
    auto prf = [&](std::string_view label) {
        mac->update(reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
        mac->update(std::uint8_t{0});
        mac->update(reinterpret_cast<const std::uint8_t*>(user.data()), user.size());
        bytes32 out{};
        mac->final(u8(out.data()));
        return out;
    };
    bytes32 s = prf("btest ec-srp5 fake salt");
    bytes32 i = prf("btest ec-srp5 fake validator");
    validator_record rec;
    std::copy_n(s.begin(), rec.salt.size(), rec.salt.begin());
    rec.validator = math::mul(i, math::generator()).encode();
    detail::wipe(i);
    return rec;
}

/// A validator_record with the server's per-user work of §6.3.9 done once: V lifted with its
/// true parity (step 6) and γ = redp1(x_γ, 0) (step 4). A login from a prepared record skips two
/// square roots and the redp1 loop; and since that loop's length depends on x_γ, i.e. on the
/// password, it also keeps the server's login time independent of the password. Value type.
struct prepared_record {
    validator_record record;
    math::point v;      ///< V = lift_x(x_γ, parity_γ)
    math::point gamma;  ///< γ = redp1(x_γ, 0)
};

/// Prepares `rec`. Errors: bad_point when its validator does not decode (a corrupt record,
/// which could never authenticate anyone).
inline result<prepared_record> prepare(const validator_record& rec) {
    auto v = math::decode_point(rec.validator);
    if (!v) return v.error();
    return prepared_record{rec, *v, math::redp1(rec.validator.u, 0)};
}

/// The record a server answers an unknown `user` with ([Design], §6.3.9 step 2), at the cost of
/// one HMAC and no curve arithmetic, so that refusing an unknown name takes as long as refusing
/// a known name's wrong password (a real user's record is prepared once, when stored):
///
///   h = HMAC-SHA256(server_secret, "btest ec-srp5 decoy" ‖ 00 ‖ user)
///   salt = h[0..16),  V = math::decoy_validator,  γ = math::decoy_gammas[h[16] mod 8]
///
/// The salt and the coset of γ — everything of the record that reaches the wire — are
/// pseudo-random per name and stable across attempts, as a real user's are; V never reaches
/// the wire, and nobody knows its discrete logarithm, so the login fails at the proof step
/// like a wrong password. Nothing is computed per name beyond the HMAC, so there is nothing to
/// cache: memory stays constant under a flood of random names. Value in, value out.
inline prepared_record decoy_record(std::string_view user, std::span<const std::byte, 32> server_secret) {
    using detail::u8;
    const auto mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    mac->set_key(u8(server_secret.data()), server_secret.size());
    constexpr std::string_view label = "btest ec-srp5 decoy";
    mac->update(reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
    mac->update(std::uint8_t{0});
    mac->update(reinterpret_cast<const std::uint8_t*>(user.data()), user.size());
    bytes32 h{};
    mac->final(u8(h.data()));
    prepared_record rec;
    std::copy_n(h.begin(), rec.record.salt.size(), rec.record.salt.begin());
    rec.record.validator = math::decoy_validator.encode();
    rec.v = math::decoy_validator;
    rec.gamma = math::decoy_gammas[std::to_integer<std::size_t>(h[16]) % math::decoy_gammas.size()];
    detail::wipe(h);
    return rec;
}

/// j = SHA256(x_a ‖ x_b): the two u values exactly as sent, parity bytes excluded (§6.3.10).
inline bytes32 shared_j(const bytes32& x_a, const bytes32& x_b) { return detail::sha256({x_a, x_b}); }

namespace detail {
/// Reduction mod r. A function-local static: immutable after construction (thread-safe
/// initialisation by C++ "magic statics"; Modular_Reducer::reduce is const and keeps its
/// workspace on the stack), so safe from any number of threads.
inline const Botan::Modular_Reducer& mod_order() {
    static const Botan::Modular_Reducer reducer{Botan::BigInt(u8(math::order_bytes.data()), math::order_bytes.size())};
    return reducer;
}
} // namespace detail

/// The client's scalar k = (i·j + s_a) mod r (§6.3.8 step 9), 32 bytes big-endian. Botan's
/// BigInt keeps its limbs in zeroing memory; the Barrett reduction is the one Botan's ECDSA
/// uses for its secret nonces.
inline bytes32 client_scalar(const bytes32& i, const bytes32& j, const bytes32& s_a) {
    using detail::u8;
    const Botan::BigInt bi(u8(i.data()), i.size()), bj(u8(j.data()), j.size()), bs(u8(s_a.data()), s_a.size());
    const Botan::BigInt k = detail::mod_order().reduce(bi * bj + bs);
    bytes32 out{};
    k.binary_encode(u8(out.data()), out.size());
    return out;
}

/// The server's blinded key W_b = B + redp1(x_γ, 0), B = s_b·G (§6.3.9 step 4).
inline math::point blind_server_key(const math::point& b, const bytes32& x_gamma) {
    return math::add(b, math::redp1(x_gamma, 0));
}
/// What the client recovers from W_b: T = W_b + redp1(x_γ, 1) = s_b·G (§6.3.8 step 7).
inline math::point unblind_server_key(const math::point& w_b, const bytes32& x_gamma) {
    return math::add(w_b, math::redp1(x_gamma, 1));
}

/// Client z = u(k·T) (§6.3.8 step 10), or nullopt when T or k·T is O, or T is the point of
/// order 2 (no honest server produces either).
inline std::optional<bytes32> client_z(const bytes32& k, const math::point& t) {
    if (t.is_identity() || detail::fe_is_zero(t.u_fe())) return std::nullopt;
    return math::mul_u(k, t);
}

/// Server z = u(s_b·(W_a + j·V)) (§6.3.9 step 6), or nullopt when the point multiplied is O
/// or of order 2, or the result is O. `v` must be the validator point with its true parity.
inline std::optional<bytes32> server_z(const bytes32& s_b, const math::point& w_a, const bytes32& j,
                                       const math::point& v) {
    const math::point p = math::add(w_a, math::mul(j, v));
    if (p.is_identity() || detail::fe_is_zero(p.u_fe())) return std::nullopt;
    return math::mul_u(s_b, p);
}

/// SHA256(j ‖ z): the MSG3 payload.
inline wire::ecsrp5_proof client_proof(const bytes32& j, const bytes32& z) { return detail::sha256({j, z}); }
/// SHA256(j ‖ client_proof ‖ z): the MSG4 payload.
inline wire::ecsrp5_proof server_proof(const bytes32& j, const wire::ecsrp5_proof& client_proof, const bytes32& z) {
    return detail::sha256({j, client_proof, z});
}

/// Constant-time equality of two proofs.
inline bool proof_equal(const wire::ecsrp5_proof& a, const wire::ecsrp5_proof& b) noexcept {
    return Botan::constant_time_compare(detail::u8(a.data()), detail::u8(b.data()), a.size());
}

// --- the two sides ----------------------------------------------------------------------------

/// One authentication, client side (§6.3.8). Sequence: construct (draws s_a), send MSG1 with
/// client_key(), on_msg2 → send MSG3, on_msg4 → authenticated. Each step once, in order; any
/// error is final. One thread at a time per object. Not copyable (it holds secrets); movable.
class client_exchange {
public:
    /// Draws s_a (exactly 32 bytes) from `rng`, which need not outlive the constructor, and
    /// computes W_a = s_a·G. Keeps SHA256(user ‖ ":" ‖ password), never the password. Should
    /// s_a·G be O (s_a ≡ 0 mod r: a broken generator), client_key() is u = 0, which servers
    /// reject, and on_msg2 fails with auth_failed.
    client_exchange(std::string_view user, std::string_view password, entropy& rng)
        : inner_(inner_hash(user, password)) {
        rng.fill(s_a_);
        const math::point w_a = math::mul(s_a_, math::generator());
        key_ok_ = !w_a.is_identity();
        client_key_ = w_a.encode();
    }
    client_exchange(const client_exchange&) = delete;
    client_exchange& operator=(const client_exchange&) = delete;
    client_exchange(client_exchange&&) noexcept = default;
    client_exchange& operator=(client_exchange&&) noexcept = default;
    ~client_exchange() { wipe_secrets(); }

    /// The client key (X_A, PA) for MSG1. The caller encodes MSG1 with its username through
    /// wire::encode_ecsrp5_msg1, which also checks the username (≤ 221 bytes, no NUL).
    const wire::ec_point_bytes& client_key() const noexcept { return client_key_; }

    /// Given MSG2 (length and parity already checked by wire::decode_ecsrp5_msg2), returns the
    /// MSG3 payload. Errors: bad_server_key (u ≥ p, not liftable, or the point of order 2);
    /// auth_failed (T or Z is O, s_a·G was O, or called out of order). Wipes s_a, i, k, z and
    /// the inner hash before returning.
    result<wire::ecsrp5_proof> on_msg2(const wire::ecsrp5_msg2& m) {
        if (state_ != state::awaiting_msg2 || !key_ok_) return fail(errc::auth_failed);
        auto w_b = math::decode_point(m.server_key);
        if (!w_b) return fail(errc::bad_server_key);

        bytes32 i = validator_scalar(m.salt, inner_);
        const bytes32 j = shared_j(client_key_.u, m.server_key.u);
        bytes32 k = client_scalar(i, j, s_a_);
        const math::point v = math::mul(i, math::generator());  // V; x_γ = u(V)
        detail::wipe(i);
        wipe_secrets();  // inner hash and s_a are not needed any more
        std::optional<bytes32> z;
        if (!v.is_identity()) z = client_z(k, unblind_server_key(*w_b, v.u()));
        detail::wipe(k);
        if (!z) return fail(errc::auth_failed);
        const auto proof = client_proof(j, *z);
        expected_server_proof_ = server_proof(j, proof, *z);
        detail::wipe(*z);
        state_ = state::awaiting_msg4;
        return proof;
    }

    /// Verifies MSG4 in constant time: {} when the server proved knowledge of the validator,
    /// auth_failed otherwise (or when on_msg2 did not succeed first).
    std::error_code on_msg4(const wire::ecsrp5_proof& server_proof) {
        const bool ok = proof_equal(server_proof, expected_server_proof_);
        if (state_ != state::awaiting_msg4 || !ok) return make_error_code(fail(errc::auth_failed));
        state_ = state::done;
        detail::wipe(expected_server_proof_);
        return {};
    }

private:
    enum class state : std::uint8_t { awaiting_msg2, awaiting_msg4, done, failed };

    errc fail(errc e) noexcept {
        state_ = state::failed;
        wipe_secrets();
        detail::wipe(expected_server_proof_);
        return e;
    }
    void wipe_secrets() noexcept {
        detail::wipe(inner_);
        detail::wipe(s_a_);
    }

    bytes32 inner_{};
    bytes32 s_a_{};
    wire::ec_point_bytes client_key_{};
    wire::ecsrp5_proof expected_server_proof_{};
    bool key_ok_ = false;
    state state_ = state::awaiting_msg2;
};

/// One authentication, server side (§6.3.9). Sequence: on_msg1 (with the user's record, or a
/// decoy_record for an unknown user) → send MSG2; on_msg3 → send MSG4 and the OK word, or
/// `00 00 00 00` on error. Each step once, in order; any error is final. One thread at a time
/// per object. Not copyable (it holds secrets); movable.
class server_exchange {
public:
    /// `rng` must outlive the object; s_b is drawn from it in on_msg1.
    explicit server_exchange(entropy& rng) noexcept : rng_(&rng) {}
    server_exchange(const server_exchange&) = delete;
    server_exchange& operator=(const server_exchange&) = delete;
    server_exchange(server_exchange&&) noexcept = default;
    server_exchange& operator=(server_exchange&&) noexcept = default;
    ~server_exchange() { wipe_secrets(); }

    /// Validates W_a (errc::bad_point: u ≥ p, not liftable, or of order 2), draws s_b (32
    /// bytes), computes W_b and the proofs to expect and to send, and returns MSG2. The caller
    /// looked `rec` up by m.username (a decoy record for an unknown user); this function does not
    /// read the name. W_a outside the prime-order subgroup is not refused (§6.3.9 step 3 allows
    /// either): such a client cannot authenticate without the password anyway. Should Z be
    /// O (an impossible-in-practice client key), MSG2 is still returned and on_msg3 fails, like
    /// a wrong password.
    result<wire::ecsrp5_msg2> on_msg1(const wire::ecsrp5_msg1& m, const prepared_record& rec) {
        if (state_ != state::awaiting_msg1) return fail(errc::auth_failed);
        auto w_a = math::decode_point(m.client_key);
        if (!w_a) return fail(errc::bad_point);

        bytes32 s_b{};
        rng_->fill(s_b);
        const math::point w_b = math::add(math::mul(s_b, math::generator()), rec.gamma);
        if (w_b.is_identity()) {  // s_b·G = −γ: not reachable with SHA-256 and a real generator
            detail::wipe(s_b);
            return fail(errc::auth_failed);
        }
        const wire::ecsrp5_msg2 out{w_b.encode(), rec.record.salt};
        const bytes32 j = shared_j(m.client_key.u, out.server_key.u);
        auto z = server_z(s_b, *w_a, j, rec.v);
        detail::wipe(s_b);
        z_ok_ = z.has_value();
        if (z) {
            expected_client_proof_ = client_proof(j, *z);
            server_proof_ = server_proof(j, expected_client_proof_, *z);
            detail::wipe(*z);
        }
        state_ = state::awaiting_msg3;
        return out;
    }
    /// The same from a plain record, prepared on the fly (this runs the redp1 loop, whose length
    /// depends on the record; prefer prepared records, e.g. credential_store::ecsrp5_prepared).
    /// A record whose validator does not decode fails with auth_failed.
    result<wire::ecsrp5_msg2> on_msg1(const wire::ecsrp5_msg1& m, const validator_record& rec) {
        auto prepared = prepare(rec);
        if (!prepared) return fail(errc::auth_failed);
        return on_msg1(m, *prepared);
    }

    /// Checks the client proof in constant time; returns the MSG4 payload, or auth_failed (also
    /// when on_msg1 did not succeed first).
    result<wire::ecsrp5_proof> on_msg3(const wire::ecsrp5_proof& client_proof) {
        const bool match = proof_equal(client_proof, expected_client_proof_);
        if (state_ != state::awaiting_msg3 || !z_ok_ || !match) return fail(errc::auth_failed);
        state_ = state::done;
        const wire::ecsrp5_proof out = server_proof_;
        wipe_secrets();
        return out;
    }

private:
    enum class state : std::uint8_t { awaiting_msg1, awaiting_msg3, done, failed };

    errc fail(errc e) noexcept {
        state_ = state::failed;
        wipe_secrets();
        return e;
    }
    void wipe_secrets() noexcept {
        detail::wipe(expected_client_proof_);
        detail::wipe(server_proof_);
    }

    entropy* rng_;
    wire::ecsrp5_proof expected_client_proof_{};
    wire::ecsrp5_proof server_proof_{};
    bool z_ok_ = false;
    state state_ = state::awaiting_msg1;
};

} // namespace btest::auth::ec_srp5
