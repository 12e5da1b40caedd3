// EC-SRP5 (PROTOCOL §6.3): every intermediate value of the three runs of
// spec/vectors/ecsrp5.json, both directions of the exchange replayed with the recorded random
// values, the "wrong parity" diagnostic of §6.3.10, the negative cases of §13.5 and §15, a
// cross-check of the curve arithmetic against Botan's EC_Group/PointGFp, and a randomized
// client ↔ server property test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <botan/bigint.h>
#include <botan/ec_group.h>
#include <botan/numthry.h>
#include <botan/point_gfp.h>

#include <btest/auth/ec_srp5.hpp>
#include <btest/core/entropy.hpp>
#include <btest/wire/ec_srp5.hpp>

#include "test/hex.hpp"
#include "test/vectors.hpp"

using namespace btest;
namespace ec = btest::auth::ec_srp5;
using ec::bytes32;

namespace {

bytes32 b32(const test::json::value& v) { return test::unhex_array<32>(v.str()); }
std::string hex32(const bytes32& b) { return test::hex(b); }

/// One run of spec/vectors/ecsrp5.json, inputs decoded.
struct run {
    const test::json::value& v;
    std::string name;
    std::string user;
    std::string password;
    ec::salt_bytes salt;
    bytes32 s_a;
    bytes32 s_b;

    explicit run(const test::json::value& j)
        : v(j),
          name(j["name"].str()),
          user(j["inputs"]["username_utf8"].str()),
          password(j["inputs"]["password_utf8"].str()),
          salt(test::unhex_array<16>(j["inputs"]["salt_hex"].str())),
          s_a(b32(j["inputs"]["client_private_key_s_a_hex"])),
          s_b(b32(j["inputs"]["server_private_key_s_b_hex"])) {}

    const test::json::value& kd() const { return v["key_derivation"]; }
    const test::json::value& cpk() const { return v["client_public_key"]; }
    const test::json::value& spk() const { return v["server_public_key"]; }
    const test::json::value& shared() const { return v["shared"]; }
    const test::json::value& wire() const { return v["wire"]; }

    std::vector<std::byte> frame_payload(const char* key) const {
        const auto frame = test::unhex(wire()[key].str());
        auto f = wire::decode_ecsrp5_frame(frame);
        REQUIRE(f);
        REQUIRE(f->frame_size == frame.size());
        return {f->payload.begin(), f->payload.end()};
    }
    wire::ecsrp5_msg1 msg1(std::vector<std::byte>& storage) const {
        storage = frame_payload("msg1_client_to_server_hex");
        auto m = wire::decode_ecsrp5_msg1(storage);
        REQUIRE(m);
        return *m;
    }
    wire::ecsrp5_msg2 msg2() const {
        auto m = wire::decode_ecsrp5_msg2(frame_payload("msg2_server_to_client_hex"));
        REQUIRE(m);
        return *m;
    }
    wire::ecsrp5_proof msg3() const {
        auto m = wire::decode_ecsrp5_proof(frame_payload("msg3_client_to_server_hex"));
        REQUIRE(m);
        return *m;
    }
    wire::ecsrp5_proof msg4() const {
        auto m = wire::decode_ecsrp5_proof(frame_payload("msg4_server_to_client_hex"));
        REQUIRE(m);
        return *m;
    }
};

std::vector<run> runs() {
    std::vector<run> out;
    for (const auto& v : test::ecsrp5_vectors()["vectors"].arr()) out.emplace_back(v);
    return out;
}

std::string encode_msg1(std::string_view user, const wire::ec_point_bytes& key) {
    std::array<std::byte, wire::ecsrp5_max_frame> buf{};
    const auto n = wire::encode_ecsrp5_msg1(user, key, buf);
    REQUIRE(n > 0);
    return test::hex(std::span<const std::byte>(buf.data(), n));
}

bytes32 with_u(const char* hex) { return test::unhex_array<32>(hex); }

// Botan reference: the same curve through EC_Group/PointGFp (generic-prime arithmetic).
const Botan::EC_Group& botan_group() {
    static const Botan::EC_Group g = [] {
        const auto& c = test::ecsrp5_vectors()["curve"];
        auto big = [](const test::json::value& h) { return Botan::BigInt("0x" + h.str()); };
        return Botan::EC_Group(big(c["p_hex"]), big(c["weierstrass_a_hex"]), big(c["weierstrass_b_hex"]),
                               big(c["generator_weierstrass_x_hex"]), big(c["generator_weierstrass_y_hex"]),
                               big(c["r_order_hex"]), Botan::BigInt(8));
    }();
    return g;
}
Botan::BigInt to_big(const bytes32& b) {
    return Botan::BigInt(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
}
bytes32 from_big(const Botan::BigInt& n) {
    bytes32 out{};
    n.binary_encode(reinterpret_cast<std::uint8_t*>(out.data()), out.size());
    return out;
}
Botan::PointGFp to_botan(const ec::math::point& p) {
    if (p.is_identity()) return botan_group().zero_point();
    return botan_group().point(to_big(p.weierstrass_x()), to_big(p.weierstrass_y()));
}
bool same(const ec::math::point& ours, const Botan::PointGFp& ref) {
    if (ours.is_identity() || ref.is_zero()) return ours.is_identity() && ref.is_zero();
    return to_big(ours.weierstrass_x()) == ref.get_affine_x() && to_big(ours.weierstrass_y()) == ref.get_affine_y();
}
const Botan::BigInt& big_p() {
    static const Botan::BigInt p("0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
    return p;
}

} // namespace

// --- constants and building blocks -------------------------------------------------------------

TEST_CASE("ec_srp5: curve constants match the spec and each other") {
    const auto& c = test::ecsrp5_vectors()["curve"];
    CHECK(hex32(ec::math::p_bytes) == c["p_hex"].str());
    CHECK(hex32(ec::math::order_bytes) == c["r_order_hex"].str());
    CHECK(hex32(ec::detail::fe_to_bytes(ec::math::a_over_3)) == c["A_over_3_mod_p_hex"].str());
    CHECK(hex32(ec::detail::fe_to_bytes(ec::detail::fe_neg(ec::math::a_over_3))) == c["minus_A_over_3_mod_p_hex"].str());
    CHECK(hex32(ec::detail::fe_to_bytes(ec::math::weierstrass_a)) == c["weierstrass_a_hex"].str());
    CHECK(hex32(ec::detail::fe_to_bytes(ec::math::weierstrass_b)) == c["weierstrass_b_hex"].str());
    CHECK(c["montgomery_A"].number() == 486662);

    const auto g = ec::math::generator();
    CHECK(hex32(g.weierstrass_x()) == c["generator_weierstrass_x_hex"].str());
    CHECK(hex32(g.weierstrass_y()) == c["generator_weierstrass_y_hex"].str());
    CHECK(g.u() == with_u("0000000000000000000000000000000000000000000000000000000000000009"));
    CHECK(g.parity() == 0);
    CHECK(g.on_curve());

    // a = 1 − A²/3, b = 2A³/27 − A/3, √−1, recomputed with Botan's BigInt.
    const auto& p = big_p();
    const Botan::BigInt big_a(486662);
    const Botan::BigInt inv3 = Botan::inverse_mod(3, p), inv27 = Botan::inverse_mod(27, p);
    const Botan::BigInt wa = (Botan::BigInt(1) + p * p - (big_a * big_a % p) * inv3 % p) % p;
    const Botan::BigInt wb = (2 * big_a * big_a * big_a % p * inv27 % p + p - big_a * inv3 % p) % p;
    CHECK(from_big(wa) == ec::detail::fe_to_bytes(ec::math::weierstrass_a));
    CHECK(from_big(wb) == ec::detail::fe_to_bytes(ec::math::weierstrass_b));
    const auto i2 = ec::detail::fe_sqr(ec::detail::fe_sqrt_m1);
    CHECK(ec::detail::fe_equal(i2, ec::detail::fe_neg(ec::detail::fe_one())));

    // r·G = O, (r − 1)·G = −G, (r + 1)·G = G: the full-width ladder and its y-recovery edges.
    const Botan::BigInt r = to_big(ec::math::order_bytes);
    CHECK(ec::math::mul(ec::math::order_bytes, g).is_identity());
    CHECK(ec::math::mul(from_big(r - 1), g) == ec::math::negate(g));
    CHECK(ec::math::mul(from_big(r + 1), g) == g);
    CHECK(!ec::math::mul_u(ec::math::order_bytes, g));
}

TEST_CASE("ec_srp5: field arithmetic agrees with Botan's BigInt") {
    namespace d = ec::detail;
    const auto& p = big_p();
    seeded_entropy rng{0xf1e1d};
    std::vector<bytes32> values{
        with_u("0000000000000000000000000000000000000000000000000000000000000000"),
        with_u("0000000000000000000000000000000000000000000000000000000000000001"),
        ec::math::p_bytes,
        with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec"),  // p − 1
        with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffee"),  // p + 1
        with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),  // 2^255 − 1
        with_u("8000000000000000000000000000000000000000000000000000000000000000"),  // 2^255
        with_u("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffda"),  // 2p
        with_u("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),  // 2^256 − 1
    };
    for (int n = 0; n < 200; ++n) values.push_back(rng.bytes<32>());
    for (std::size_t n = 0; n < values.size(); ++n) {
        const auto& xb = values[n];
        const auto& yb = values[(n * 7 + 3) % values.size()];
        INFO("x = " << test::hex(xb) << ", y = " << test::hex(yb));
        const Botan::BigInt x = to_big(xb) % p, y = to_big(yb) % p;
        const d::fe fx = d::fe_from_bytes(xb), fy = d::fe_from_bytes(yb);
        CHECK(from_big(x) == d::fe_to_bytes(fx));
        CHECK(from_big((x + y) % p) == d::fe_to_bytes(d::fe_add(fx, fy)));
        CHECK(from_big((x + p - y) % p) == d::fe_to_bytes(d::fe_sub(fx, fy)));
        CHECK(from_big((x * y) % p) == d::fe_to_bytes(d::fe_mul(fx, fy)));
        CHECK(from_big((x * x) % p) == d::fe_to_bytes(d::fe_sqr(fx)));
        CHECK(from_big((x * 121665) % p) == d::fe_to_bytes(d::fe_mul_small(fx, 121665)));
        CHECK(from_big((p - x) % p) == d::fe_to_bytes(d::fe_neg(fx)));
        CHECK(d::fe_parity(fx) == (x.is_odd() ? 1 : 0));
        if (x != 0) CHECK(from_big(Botan::inverse_mod(x, p)) == d::fe_to_bytes(d::fe_invert(fx)));
        // Square roots: a root exactly when Botan's Jacobi symbol says x is a square.
        const auto root = d::fe_sqrt(fx);
        CHECK(root.has_value() == (x == 0 || Botan::jacobi(x, p) == 1));
        if (root) CHECK(d::fe_equal(d::fe_sqr(*root), fx));
        // Chains of operations stay within the limb bounds (results keep agreeing).
        d::fe acc = fx;
        Botan::BigInt big_acc = x;
        for (int k = 0; k < 20; ++k) {
            acc = d::fe_sub(d::fe_add(d::fe_mul(acc, fy), acc), fy);
            big_acc = ((big_acc * y + big_acc) % p + p - y) % p;
        }
        CHECK(from_big(big_acc) == d::fe_to_bytes(acc));
    }
}

TEST_CASE("ec_srp5: field arithmetic is exact on weakly reduced limbs up to 2^52") {
    // Intermediate elements may carry limbs up to 2^52 (not reduced below p): build such inputs
    // directly, including the extreme all-ones pattern, and compare with Botan's BigInt.
    namespace d = ec::detail;
    const auto& p = big_p();
    auto value = [](const d::fe& a) {
        Botan::BigInt v;
        for (std::size_t i = 5; i-- > 0;) v = (v << 51) + Botan::BigInt(a.v[i]);
        return v;
    };
    seeded_entropy rng{0x11b5};
    constexpr std::uint64_t max_limb = (std::uint64_t{1} << 52) - 1;
    std::vector<d::fe> inputs{
        d::fe{{max_limb, max_limb, max_limb, max_limb, max_limb}},
        d::fe{{d::fe_limb_mask - 18, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask}},  // p
        d::fe{{d::fe_limb_mask - 17, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask}},  // p + 1
        d::fe{{d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask, d::fe_limb_mask}},  // 2^255 − 1
        d::fe{{0, 0, 0, 0, std::uint64_t{1} << 51}},  // 2^255
    };
    while (inputs.size() < 300) {
        d::fe a;
        for (auto& limb : a.v) {
            std::uint64_t w = 0;
            rng.fill(std::as_writable_bytes(std::span<std::uint64_t>(&w, 1)));
            limb = (rng.u32() % 4 == 0) ? max_limb - (w & 0xff) : (w & max_limb);
        }
        inputs.push_back(a);
    }
    for (std::size_t n = 0; n < inputs.size(); ++n) {
        const d::fe& a = inputs[n];
        const d::fe& b = inputs[(n * 13 + 1) % inputs.size()];
        const Botan::BigInt x = value(a) % p, y = value(b) % p;
        INFO("x = " << x.to_hex_string() << ", y = " << y.to_hex_string());
        CHECK(from_big(x) == d::fe_to_bytes(a));
        CHECK(from_big((x * y) % p) == d::fe_to_bytes(d::fe_mul(a, b)));
        CHECK(from_big((x * x) % p) == d::fe_to_bytes(d::fe_sqr(a)));
        CHECK(from_big((x + y) % p) == d::fe_to_bytes(d::fe_add(a, b)));
        CHECK(from_big((x + p - y) % p) == d::fe_to_bytes(d::fe_sub(a, b)));
        CHECK(from_big((x * 486662 * 2) % p) == d::fe_to_bytes(d::fe_mul_small(a, 2 * 486662)));
        CHECK(d::fe_equal(a, d::fe_from_bytes(from_big(x))));
    }
}

TEST_CASE("ec_srp5: point arithmetic agrees with Botan's EC_Group and PointGFp") {
    seeded_entropy rng{0x9e0};
    const auto g = ec::math::generator();
    REQUIRE(same(g, botan_group().get_base_point()));
    std::vector<ec::math::point> points{g};
    // Points outside the prime-order subgroup too: lift arbitrary u values.
    while (points.size() < 12) {
        if (auto q = ec::math::lift_x(rng.bytes<32>(), static_cast<std::uint8_t>(rng.u32() & 1))) {
            CHECK(q->on_curve());
            points.push_back(*q);
        }
    }
    for (std::size_t n = 0; n < points.size(); ++n) {
        const auto& pt = points[n];
        const auto ref = to_botan(pt);
        REQUIRE(ref.on_the_curve());
        const auto& other = points[(n + 5) % points.size()];
        CHECK(same(ec::math::add(pt, other), ref + to_botan(other)));
        CHECK(same(ec::math::add(pt, pt), ref + ref));
        CHECK(ec::math::add(pt, ec::math::negate(pt)).is_identity());
        for (int k = 0; k < 4; ++k) {
            const bytes32 scalar = rng.bytes<32>();  // full 256-bit scalars, top bit included
            INFO("k = " << test::hex(scalar));
            const auto ours = ec::math::mul(scalar, pt);
            const auto expected = to_big(scalar) * ref;  // Botan's unreduced, unblinded ladder
            CHECK(same(ours, expected));
            CHECK(ours.on_curve());
            const auto u = ec::math::mul_u(scalar, pt);
            REQUIRE(u.has_value() == !expected.is_zero());
            if (u) CHECK(*u == ours.u());
        }
    }
    // Scalars 0 and 1, the point of order 2 and the identity.
    const bytes32 zero{}, one = with_u("0000000000000000000000000000000000000000000000000000000000000001");
    CHECK(ec::math::mul(zero, g).is_identity());
    CHECK(ec::math::mul(one, g) == g);
    CHECK(!ec::math::mul_u(zero, g));
    const auto t2 = ec::math::lift_x(zero, 0);
    REQUIRE(t2);
    CHECK(t2->u() == zero);
    CHECK(ec::math::mul(one, *t2) == *t2);
    CHECK(ec::math::mul(with_u("0000000000000000000000000000000000000000000000000000000000000002"), *t2).is_identity());
    CHECK(ec::math::add(*t2, *t2).is_identity());
    CHECK(ec::math::mul(one, ec::math::point{}).is_identity());
}

TEST_CASE("ec_srp5: prepare() lifts V with its true parity and caches gamma") {
    for (const auto& r : runs()) {
        INFO(r.name);
        const auto rec = ec::derive_record(r.user, r.password, r.salt);
        auto prepared = ec::prepare(rec);
        REQUIRE(prepared);
        CHECK(prepared->record == rec);
        CHECK(hex32(prepared->v.weierstrass_x()) == r.kd()["validator_public_weierstrass_x_hex"].str());
        CHECK(hex32(prepared->v.weierstrass_y()) == r.kd()["validator_public_weierstrass_y_hex"].str());
        CHECK(hex32(prepared->gamma.weierstrass_x()) == r.spk()["gamma_redp1_parity0_weierstrass_x_hex"].str());
        CHECK(hex32(prepared->gamma.weierstrass_y()) == r.spk()["gamma_redp1_parity0_weierstrass_y_hex"].str());
    }
    // A corrupt record (its validator does not lift) cannot be prepared, and a server given it
    // fails the login.
    const auto r = runs().front();
    ec::validator_record corrupt{r.salt, {with_u("0000000000000000000000000000000000000000000000000000000000000002"), 0}};
    CHECK(ec::prepare(corrupt).error() == errc::bad_point);
    fixed_entropy s_b{r.s_b};
    ec::server_exchange server{s_b};
    std::vector<std::byte> storage;
    CHECK(server.on_msg1(r.msg1(storage), corrupt).error() == errc::auth_failed);
}

// --- the three vectors, value by value ------------------------------------------------------------

TEST_CASE("ec_srp5: key derivation of every vector") {
    for (const auto& r : runs()) {
        INFO(r.name);
        const auto inner = ec::inner_hash(r.user, r.password);
        CHECK(hex32(inner) == r.kd()["inner_sha256_username_colon_password_hex"].str());
        const auto i = ec::validator_scalar(r.salt, inner);
        CHECK(hex32(i) == r.kd()["validator_private_i_hex"].str());
        const auto v = ec::math::mul(i, ec::math::generator());
        CHECK(hex32(v.u()) == r.kd()["validator_public_x_gamma_montgomery_x_hex"].str());
        CHECK(v.parity() == r.kd()["validator_public_y_parity"].number());
        CHECK(hex32(v.weierstrass_x()) == r.kd()["validator_public_weierstrass_x_hex"].str());
        CHECK(hex32(v.weierstrass_y()) == r.kd()["validator_public_weierstrass_y_hex"].str());

        const auto rec = ec::derive_record(r.user, r.password, r.salt);
        CHECK(rec.salt == r.salt);
        CHECK(rec.validator == v.encode());
        // The server's way back to V: lifting x_γ with the stored (true) parity.
        auto lifted = ec::math::decode_point(rec.validator);
        REQUIRE(lifted);
        CHECK(*lifted == v);
    }
}

TEST_CASE("ec_srp5: public keys and redp1 of every vector") {
    for (const auto& r : runs()) {
        INFO(r.name);
        const auto& spk = r.spk();
        const auto w_a = ec::math::mul(r.s_a, ec::math::generator());
        CHECK(hex32(w_a.u()) == r.cpk()["x_w_a_montgomery_x_hex"].str());
        CHECK(w_a.parity() == r.cpk()["y_parity"].number());

        const auto b = ec::math::mul(r.s_b, ec::math::generator());
        CHECK(hex32(b.u()) == spk["plain_s_b_times_G_montgomery_x_hex"].str());
        CHECK(b.parity() == spk["plain_s_b_times_G_y_parity"].number());

        const bytes32 x_gamma = b32(r.kd()["validator_public_x_gamma_montgomery_x_hex"]);
        CHECK(hex32(x_gamma) == spk["redp1_input_hex"].str());
        const auto tr = ec::math::redp1_traced(x_gamma, 0);
        CHECK(hex32(tr.first_hash) == spk["redp1_first_hash_sha256_input_hex"].str());
        CHECK(tr.increments == spk["redp1_increments_needed"].number());
        CHECK(hex32(tr.winning_hash) == spk["redp1_winning_candidate_hash_hex"].str());
        CHECK(hex32(tr.q.u()) == spk["gamma_redp1_parity0_montgomery_x_hex"].str());
        CHECK(tr.q.parity() == spk["gamma_redp1_parity0_y_parity"].number());
        CHECK(hex32(tr.q.weierstrass_x()) == spk["gamma_redp1_parity0_weierstrass_x_hex"].str());
        CHECK(hex32(tr.q.weierstrass_y()) == spk["gamma_redp1_parity0_weierstrass_y_hex"].str());
        CHECK(tr.q.on_curve());
        // redp1(x, 1) = −redp1(x, 0), same trace.
        const auto tr1 = ec::math::redp1_traced(x_gamma, 1);
        CHECK(tr1.increments == tr.increments);
        CHECK(tr1.q == ec::math::negate(tr.q));
        CHECK(ec::math::redp1(x_gamma, 0) == tr.q);

        const auto w_b = ec::blind_server_key(b, x_gamma);
        CHECK(hex32(w_b.u()) == spk["x_w_b_montgomery_x_hex"].str());
        CHECK(w_b.parity() == spk["y_parity"].number());
        // The client's unblinding recovers the plain s_b·G.
        CHECK(ec::unblind_server_key(w_b, x_gamma) == b);
    }
}

TEST_CASE("ec_srp5: shared values and both proofs of every vector") {
    for (const auto& r : runs()) {
        INFO(r.name);
        const auto& sh = r.shared();
        const bytes32 x_a = b32(r.cpk()["x_w_a_montgomery_x_hex"]);
        const bytes32 x_b = b32(r.spk()["x_w_b_montgomery_x_hex"]);
        const bytes32 x_gamma = b32(r.kd()["validator_public_x_gamma_montgomery_x_hex"]);
        const bytes32 i = b32(r.kd()["validator_private_i_hex"]);

        const auto j = ec::shared_j(x_a, x_b);
        CHECK(hex32(j) == sh["j_sha256_xwa_xwb_hex"].str());
        const auto k = ec::client_scalar(i, j, r.s_a);
        CHECK(hex32(k) == sh["client_scalar_i_times_j_plus_s_a_mod_r_hex"].str());

        auto w_b = ec::math::decode_point({x_b, static_cast<std::uint8_t>(r.spk()["y_parity"].number())});
        REQUIRE(w_b);
        const auto z_client = ec::client_z(k, ec::unblind_server_key(*w_b, x_gamma));
        REQUIRE(z_client);
        CHECK(hex32(*z_client) == sh["z_client_side_montgomery_x_hex"].str());

        auto w_a = ec::math::decode_point({x_a, static_cast<std::uint8_t>(r.cpk()["y_parity"].number())});
        REQUIRE(w_a);
        auto v = ec::math::decode_point(ec::derive_record(r.user, r.password, r.salt).validator);
        REQUIRE(v);
        const auto z_server = ec::server_z(r.s_b, *w_a, j, *v);
        REQUIRE(z_server);
        CHECK(hex32(*z_server) == sh["z_server_side_montgomery_x_hex"].str());

        const auto cp = ec::client_proof(j, *z_client);
        CHECK(test::hex(cp) == sh["client_confirmation_code_hex"].str());
        CHECK(test::hex(ec::server_proof(j, cp, *z_server)) == sh["server_confirmation_code_hex"].str());
    }
}

TEST_CASE("ec_srp5: a server lifting x_gamma with parity 1 computes the listed wrong z") {
    int wrong = 0;
    for (const auto& r : runs()) {
        INFO(r.name);
        const auto& diag = r.v["diagnostics"];
        const bytes32 x_gamma = b32(r.kd()["validator_public_x_gamma_montgomery_x_hex"]);
        const int true_parity = static_cast<int>(r.kd()["validator_public_y_parity"].number());
        auto w_a = ec::math::decode_point({b32(r.cpk()["x_w_a_montgomery_x_hex"]),
                                           static_cast<std::uint8_t>(r.cpk()["y_parity"].number())});
        REQUIRE(w_a);
        const auto j = b32(r.shared()["j_sha256_xwa_xwb_hex"]);
        auto v_parity1 = ec::math::decode_point({x_gamma, 1});
        REQUIRE(v_parity1);
        const auto z_wrong = ec::server_z(r.s_b, *w_a, j, *v_parity1);
        REQUIRE(z_wrong);
        CHECK(hex32(*z_wrong) == diag["z_if_server_lifts_x_gamma_with_parity_1_instead_of_true_parity_hex"].str());
        const bool equal = hex32(*z_wrong) == r.shared()["z_server_side_montgomery_x_hex"].str();
        CHECK(equal == diag["that_wrong_z_equals_correct_z"].boolean());
        CHECK(equal == (true_parity == 1));
        if (true_parity == 0) {
            ++wrong;
            // Our server uses the record's true parity: its MSG4 is the recorded one (a parity-1
            // server's would differ, and the client would refuse it).
            fixed_entropy s_b{r.s_b};
            ec::server_exchange server{s_b};
            std::vector<std::byte> storage;
            REQUIRE(server.on_msg1(r.msg1(storage), ec::derive_record(r.user, r.password, r.salt)));
            auto m4 = server.on_msg3(r.msg3());
            REQUIRE(m4);
            CHECK(*m4 == r.msg4());
            CHECK(ec::client_proof(j, *z_wrong) != r.msg3());
        }
    }
    CHECK(wrong == 2);
}

// --- the exchanges replay the recorded wire messages ---------------------------------------------

TEST_CASE("ec_srp5: client exchange replays every vector against the recorded MSG2 and MSG4") {
    for (const auto& r : runs()) {
        INFO(r.name);
        fixed_entropy s_a{r.s_a};
        ec::client_exchange client{r.user, r.password, s_a};
        CHECK(encode_msg1(r.user, client.client_key()) == r.wire()["msg1_client_to_server_hex"].str());

        const auto m2 = r.msg2();
        CHECK(m2.salt == r.salt);
        auto proof = client.on_msg2(m2);
        REQUIRE(proof);
        CHECK(test::hex(wire::encode_ecsrp5_proof(*proof)) == r.wire()["msg3_client_to_server_hex"].str());
        CHECK_FALSE(client.on_msg4(r.msg4()));
    }
}

TEST_CASE("ec_srp5: server exchange replays every vector against the recorded MSG1 and MSG3") {
    for (const auto& r : runs()) {
        for (bool prepared : {false, true}) {
            INFO(r.name << (prepared ? ", prepared record" : ", plain record"));
            fixed_entropy s_b{r.s_b};
            ec::server_exchange server{s_b};
            std::vector<std::byte> storage;
            const auto m1 = r.msg1(storage);
            CHECK(m1.username == r.user);
            const auto rec = ec::derive_record(r.user, r.password, r.salt);
            auto m2 = prepared ? server.on_msg1(m1, *ec::prepare(rec)) : server.on_msg1(m1, rec);
            REQUIRE(m2);
            CHECK(test::hex(wire::encode_ecsrp5_msg2(*m2)) == r.wire()["msg2_server_to_client_hex"].str());
            auto m4 = server.on_msg3(r.msg3());
            REQUIRE(m4);
            CHECK(test::hex(wire::encode_ecsrp5_proof(*m4)) == r.wire()["msg4_server_to_client_hex"].str());
        }
    }
}

TEST_CASE("ec_srp5: client and server exchanges talk to each other with the vectors' randomness") {
    for (const auto& r : runs()) {
        INFO(r.name);
        fixed_entropy s_a{r.s_a}, s_b{r.s_b};
        ec::client_exchange client{r.user, r.password, s_a};
        ec::server_exchange server{s_b};
        auto m2 = server.on_msg1({r.user, client.client_key()}, ec::derive_record(r.user, r.password, r.salt));
        REQUIRE(m2);
        auto m3 = client.on_msg2(*m2);
        REQUIRE(m3);
        CHECK(*m3 == r.msg3());
        auto m4 = server.on_msg3(*m3);
        REQUIRE(m4);
        CHECK_FALSE(client.on_msg4(*m4));
    }
}

// --- negative cases ----------------------------------------------------------------------------

TEST_CASE("ec_srp5: a wrong password fails on both sides") {
    const auto r = runs().front();
    SECTION("the server refuses the MSG3 of a client with the wrong password") {
        fixed_entropy s_a{r.s_a}, s_b{r.s_b};
        ec::client_exchange client{r.user, r.password + "!", s_a};
        ec::server_exchange server{s_b};
        auto m2 = server.on_msg1({r.user, client.client_key()}, ec::derive_record(r.user, r.password, r.salt));
        REQUIRE(m2);
        auto m3 = client.on_msg2(*m2);
        REQUIRE(m3);  // the client cannot tell yet
        CHECK(server.on_msg3(*m3).error() == errc::auth_failed);
        CHECK(server.on_msg3(r.msg3()).error() == errc::auth_failed);  // failure is final
    }
    SECTION("the client refuses the MSG4 of a server that computed a different z") {
        fixed_entropy s_a{r.s_a};
        ec::client_exchange client{r.user, r.password, s_a};
        const auto m2 = r.msg2();
        auto m3 = client.on_msg2(m2);
        REQUIRE(m3);
        // A server holding the record of another password: its z, hence its MSG4, differ.
        auto w_a = ec::math::decode_point(client.client_key());
        auto v_other = ec::math::decode_point(ec::derive_record(r.user, "not-" + r.password, r.salt).validator);
        REQUIRE(w_a);
        REQUIRE(v_other);
        const auto j = ec::shared_j(client.client_key().u, m2.server_key.u);
        const auto z_other = ec::server_z(r.s_b, *w_a, j, *v_other);
        REQUIRE(z_other);
        CHECK(hex32(*z_other) != r.shared()["z_server_side_montgomery_x_hex"].str());
        CHECK(client.on_msg4(ec::server_proof(j, *m3, *z_other)) == errc::auth_failed);
        CHECK(client.on_msg4(r.msg4()) == errc::auth_failed);  // failure is final
    }
}

TEST_CASE("ec_srp5: an unknown user gets a fake record and fails at the proof step") {
    const auto secret = test::unhex_array<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const auto other_secret = test::unhex_array<32>("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const auto fake = ec::fake_record("mallory", secret);
    CHECK(fake == ec::fake_record("mallory", secret));  // stable across attempts
    CHECK(fake.salt != ec::fake_record("mallory2", secret).salt);
    CHECK(fake.validator != ec::fake_record("mallory2", secret).validator);
    CHECK(fake != ec::fake_record("mallory", other_secret));
    auto v = ec::math::decode_point(fake.validator);
    REQUIRE(v);  // a real point of the prime-order subgroup, like a real validator
    CHECK(ec::math::mul(ec::math::order_bytes, *v).is_identity());

    seeded_entropy rng{77};
    ec::client_exchange client{"mallory", "guess", rng};
    ec::server_exchange server{rng};
    auto m2 = server.on_msg1({"mallory", client.client_key()}, fake);
    REQUIRE(m2);
    // MSG2 is well-formed: it frames, decodes, and its key is a valid point.
    const auto frame = wire::encode_ecsrp5_msg2(*m2);
    auto f = wire::decode_ecsrp5_frame(frame);
    REQUIRE(f);
    auto decoded = wire::decode_ecsrp5_msg2(f->payload);
    REQUIRE(decoded);
    CHECK(*decoded == *m2);
    CHECK(decoded->salt == fake.salt);
    CHECK(ec::math::decode_point(decoded->server_key));
    auto m3 = client.on_msg2(*decoded);
    REQUIRE(m3);  // the client gets as far as with a wrong password...
    CHECK(server.on_msg3(*m3).error() == errc::auth_failed);  // ...and fails at the proof
}

namespace {
bytes32 sha256_of(std::string_view label) { return ec::detail::sha256({bytes::of(label)}); }

/// The coset of ⟨G⟩ that P lies in, as an index 0..7 into the multiples of r·T (T of order 8):
/// r·P is P's torsion part times r, and r is odd, so r·T generates the same 8 points.
int coset(const ec::math::point& p, const ec::math::point& t8) {
    const auto rp = ec::math::mul(ec::math::order_bytes, p);
    const auto rt = ec::math::mul(ec::math::order_bytes, t8);
    ec::math::point m;
    for (int c = 0; c < 8; ++c) {
        if (rp == m) return c;
        m = ec::math::add(m, rt);
    }
    return -1;
}

ec::math::point decoy_torsion() { return ec::math::mul(ec::math::order_bytes, ec::math::redp1(sha256_of("btest ec-srp5 decoy torsion 1"), 0)); }
} // namespace

TEST_CASE("ec_srp5: the decoy points are what their definitions say") {
    using namespace ec::math;
    CHECK(decoy_validator == redp1(sha256_of("btest ec-srp5 decoy validator"), 0));
    CHECK(decoy_validator.on_curve());
    const point t = decoy_torsion();
    const point t2 = add(t, t), t4 = add(t2, t2);
    CHECK_FALSE(t4.is_identity());  // order exactly 8
    CHECK(add(t4, t4).is_identity());
    point ct;  // c·T
    std::vector<int> cosets;
    for (std::size_t c = 0; c < decoy_gammas.size(); ++c) {
        INFO("c = " << c);
        CHECK(decoy_gammas[c] == add(generator(), ct));
        CHECK(decoy_gammas[c].on_curve());
        cosets.push_back(coset(decoy_gammas[c], t));
        ct = add(ct, t);
    }
    // One point in each of the eight cosets of ⟨G⟩.
    std::sort(cosets.begin(), cosets.end());
    CHECK(cosets == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("ec_srp5: a decoy record is stable per name, looks like a real user's on the wire, and never logs in") {
    const auto secret = test::unhex_array<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const auto other_secret = test::unhex_array<32>("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const auto d = ec::decoy_record("mallory", secret);
    const auto again = ec::decoy_record("mallory", secret);
    CHECK(d.record == again.record);  // stable across attempts: the same salt every time
    CHECK(d.gamma == again.gamma);
    CHECK(d.record.salt != ec::decoy_record("mallory2", secret).record.salt);
    CHECK(d.record.salt != ec::decoy_record("mallory", other_secret).record.salt);
    CHECK(d.v == ec::math::decoy_validator);
    CHECK(std::count(ec::math::decoy_gammas.begin(), ec::math::decoy_gammas.end(), d.gamma) == 1);

    // What reaches the wire besides the salt is the coset of γ (MSG2's W_b = s_b·G + γ). Real
    // users' γ = redp1(x_γ, 0) spread evenly over the eight cosets, and so do the decoys'; 800
    // of each, every coset between 60 and 140 times (expected 100).
    const auto t = decoy_torsion();
    std::array<int, 8> real{}, decoy{};
    seeded_entropy rng{2718};
    for (int i = 0; i < 800; ++i) {
        const auto x = rng.bytes<32>();
        const int c = coset(ec::math::redp1(x, 0), t);
        REQUIRE(c >= 0);
        ++real[static_cast<std::size_t>(c)];
        const int k = coset(ec::decoy_record("user" + std::to_string(i), secret).gamma, t);
        REQUIRE(k >= 0);
        ++decoy[static_cast<std::size_t>(k)];
    }
    for (std::size_t c = 0; c < 8; ++c) {
        INFO("coset " << c << ": real " << real[c] << ", decoy " << decoy[c]);
        CHECK(real[c] >= 60);
        CHECK(real[c] <= 140);
        CHECK(decoy[c] >= 60);
        CHECK(decoy[c] <= 140);
    }

    // The login runs to the proof step like a wrong password, and fails there, whatever the
    // client's password (nobody knows the decoy validator's discrete logarithm).
    for (const char* password : {"guess", "", "test"}) {
        ec::client_exchange client{"mallory", password, rng};
        ec::server_exchange server{rng};
        auto m2 = server.on_msg1({"mallory", client.client_key()}, d);
        REQUIRE(m2);
        CHECK(m2->salt == d.record.salt);
        const auto frame = wire::encode_ecsrp5_msg2(*m2);
        auto f = wire::decode_ecsrp5_frame(frame);
        REQUIRE(f);
        auto decoded = wire::decode_ecsrp5_msg2(f->payload);
        REQUIRE(decoded);
        CHECK(ec::math::decode_point(decoded->server_key));
        auto m3 = client.on_msg2(*decoded);
        REQUIRE(m3);
        CHECK(server.on_msg3(*m3).error() == errc::auth_failed);
    }
}

TEST_CASE("ec_srp5: received keys with u >= p, u = 0 or a non-liftable u are rejected") {
    const auto r = runs().front();
    const bytes32 zero{};
    const bytes32 two = with_u("0000000000000000000000000000000000000000000000000000000000000002");
    // u = 2: u³ + A·u² + u is not a square (Botan's Jacobi symbol agrees), so it does not lift.
    {
        const Botan::BigInt c = Botan::BigInt(8) + Botan::BigInt(486662) * 4 + 2;
        REQUIRE(Botan::jacobi(c, big_p()) == -1);
        CHECK(!ec::math::lift_x(two, 0));
    }
    // u = p lifts like u = 0 once reduced (internal lift_x), but is rejected on the wire.
    CHECK(ec::math::lift_x(ec::math::p_bytes, 0));
    const std::vector<std::pair<const char*, bytes32>> bad{
        {"u = p", ec::math::p_bytes},
        {"u = p + 1", with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffee")},
        {"u = 2^255 - 1", with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
        {"u = p + 9 (would reduce to G)", with_u("7ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff6")},
        {"u = 2^256 - 1", with_u("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
        {"u = 0 (order 2)", zero},
        {"u = 2 (not liftable)", two},
    };
    for (const auto& [what, u] : bad) {
        for (int bit : {0, 1}) {
            const auto parity = static_cast<std::uint8_t>(bit);
            INFO(what << ", parity " << bit);
            CHECK(ec::math::decode_point({u, parity}).error() == errc::bad_point);

            fixed_entropy s_b{r.s_b};
            ec::server_exchange server{s_b};
            CHECK(server.on_msg1({r.user, {u, parity}}, ec::derive_record(r.user, r.password, r.salt)).error() ==
                  errc::bad_point);
            CHECK(server.on_msg3(r.msg3()).error() == errc::auth_failed);

            fixed_entropy s_a{r.s_a};
            ec::client_exchange client{r.user, r.password, s_a};
            auto m2 = r.msg2();
            m2.server_key = {u, parity};
            CHECK(client.on_msg2(m2).error() == errc::bad_server_key);
            CHECK(client.on_msg4(r.msg4()) == errc::auth_failed);
        }
    }
    // A parity byte other than 0/1 (wire:: refuses it already) is refused here too.
    CHECK(ec::math::decode_point({ec::math::generator().u(), 2}).error() == errc::bad_parity);
    // p − 1 is below p: whether it is accepted depends only on whether it lifts.
    const auto p_minus_1 = with_u("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec");
    CHECK(ec::math::lift_x(p_minus_1, 0).has_value() == ec::math::decode_point({p_minus_1, 0}).has_value());
}

TEST_CASE("ec_srp5: a flipped bit anywhere in a proof fails the exchange") {
    const auto r = runs()[1];
    const auto record = ec::derive_record(r.user, r.password, r.salt);
    std::vector<std::byte> storage;
    const auto m1 = r.msg1(storage);
    for (std::size_t bit = 0; bit < 256; ++bit) {
        INFO("bit " << bit);
        auto m3 = r.msg3();
        m3[bit / 8] ^= std::byte(1u << (bit % 8));
        fixed_entropy s_b{r.s_b};
        ec::server_exchange server{s_b};
        REQUIRE(server.on_msg1(m1, record));
        CHECK(server.on_msg3(m3).error() == errc::auth_failed);  // client proof mismatch

        auto m4 = r.msg4();
        m4[bit / 8] ^= std::byte(1u << (bit % 8));
        fixed_entropy s_a{r.s_a};
        ec::client_exchange client{r.user, r.password, s_a};
        REQUIRE(client.on_msg2(r.msg2()));
        CHECK(client.on_msg4(m4) == errc::auth_failed);  // server proof mismatch
    }
}

TEST_CASE("ec_srp5: identity points fail instead of producing a proof") {
    const auto r = runs().front();
    const bytes32 x_gamma = b32(r.kd()["validator_public_x_gamma_montgomery_x_hex"]);
    SECTION("a server key W_b = redp1(x_gamma, 0) (s_b = 0) makes T = O: the client fails") {
        fixed_entropy s_a{r.s_a};
        ec::client_exchange client{r.user, r.password, s_a};
        const ec::math::point gamma = ec::math::redp1(x_gamma, 0);
        CHECK(ec::unblind_server_key(gamma, x_gamma).is_identity());
        CHECK(client.on_msg2({gamma.encode(), r.salt}).error() == errc::auth_failed);
    }
    SECTION("a server drawing s_b = 0 never authenticates anyone") {
        fixed_entropy zeros{std::span<const std::byte>{}};
        fixed_entropy s_a{r.s_a};
        ec::server_exchange server{zeros};
        ec::client_exchange client{r.user, r.password, s_a};
        auto m2 = server.on_msg1({r.user, client.client_key()}, ec::derive_record(r.user, r.password, r.salt));
        REQUIRE(m2);  // W_b = γ is still a valid key
        CHECK(client.on_msg2(*m2).error() == errc::auth_failed);
        CHECK(server.on_msg3(r.msg3()).error() == errc::auth_failed);
    }
    SECTION("a client drawing s_a = 0 sends u = 0, which servers reject") {
        fixed_entropy zeros{std::span<const std::byte>{}};
        ec::client_exchange client{r.user, r.password, zeros};
        CHECK(client.client_key().u == bytes32{});
        fixed_entropy s_b{r.s_b};
        ec::server_exchange server{s_b};
        CHECK(server.on_msg1({r.user, client.client_key()}, ec::derive_record(r.user, r.password, r.salt)).error() ==
              errc::bad_point);
        CHECK(client.on_msg2(r.msg2()).error() == errc::auth_failed);
    }
    SECTION("Z = O on either side yields no z") {
        const auto g = ec::math::generator();
        const auto v = ec::math::mul(b32(r.kd()["validator_private_i_hex"]), g);
        const auto j = b32(r.shared()["j_sha256_xwa_xwb_hex"]);
        const auto w_a = ec::math::negate(ec::math::mul(j, v));  // W_a = −j·V
        CHECK(!ec::server_z(r.s_b, w_a, j, v));
        CHECK(!ec::client_z(r.s_a, ec::math::point{}));
        CHECK(!ec::client_z(ec::math::order_bytes, g));
        const auto t2 = ec::math::lift_x(bytes32{}, 0);  // the point of order 2
        REQUIRE(t2);
        CHECK(!ec::client_z(r.s_a, *t2));
    }
}

TEST_CASE("ec_srp5: steps out of order fail with auth_failed") {
    const auto r = runs().front();
    fixed_entropy s_a{r.s_a}, s_b{r.s_b};
    ec::client_exchange client{r.user, r.password, s_a};
    CHECK(client.on_msg4(r.msg4()) == errc::auth_failed);  // before MSG2
    CHECK(client.on_msg2(r.msg2()).error() == errc::auth_failed);

    ec::server_exchange server{s_b};
    CHECK(server.on_msg3(r.msg3()).error() == errc::auth_failed);  // before MSG1
    std::vector<std::byte> storage;
    CHECK(server.on_msg1(r.msg1(storage), ec::derive_record(r.user, r.password, r.salt)).error() ==
          errc::auth_failed);

    // After success, a second MSG2 / MSG3 is refused too.
    fixed_entropy s_a2{r.s_a}, s_b2{r.s_b};
    ec::client_exchange c2{r.user, r.password, s_a2};
    ec::server_exchange s2{s_b2};
    REQUIRE(s2.on_msg1(r.msg1(storage), ec::derive_record(r.user, r.password, r.salt)));
    REQUIRE(c2.on_msg2(r.msg2()));
    REQUIRE(s2.on_msg3(r.msg3()));
    CHECK_FALSE(c2.on_msg4(r.msg4()));
    CHECK(c2.on_msg2(r.msg2()).error() == errc::auth_failed);
    CHECK(s2.on_msg3(r.msg3()).error() == errc::auth_failed);
}

// --- property test -------------------------------------------------------------------------------

namespace {
std::string random_text(seeded_entropy& rng, std::size_t max_len, bool allow_nul) {
    std::string s(rng.u32() % (max_len + 1), '\0');
    for (auto& c : s) {
        auto b = static_cast<char>(rng.u32() & 0xff);
        if (!allow_nul && b == '\0') b = 'x';
        c = b;
    }
    return s;
}

/// One full exchange through the wire codecs; true when both proofs verified.
bool authenticate(const std::string& user, const std::string& client_password, const ec::validator_record& rec,
                  entropy& rng) {
    ec::client_exchange client{user, client_password, rng};
    ec::server_exchange server{rng};
    std::array<std::byte, wire::ecsrp5_max_frame> buf{};
    const auto n1 = wire::encode_ecsrp5_msg1(user, client.client_key(), buf);
    REQUIRE(n1 > 0);
    auto f1 = wire::decode_ecsrp5_frame(std::span<const std::byte>(buf.data(), n1));
    REQUIRE(f1);
    auto m1 = wire::decode_ecsrp5_msg1(f1->payload);
    REQUIRE(m1);
    REQUIRE(m1->username == user);
    auto m2 = server.on_msg1(*m1, rec);
    REQUIRE(m2);
    const auto frame2 = wire::encode_ecsrp5_msg2(*m2);
    auto m2d = wire::decode_ecsrp5_msg2(std::span<const std::byte>(frame2).subspan(1));
    REQUIRE(m2d);
    auto m3 = client.on_msg2(*m2d);
    REQUIRE(m3);
    auto m4 = server.on_msg3(*m3);
    if (!m4) {
        REQUIRE(m4.error() == errc::auth_failed);
        return false;
    }
    return !client.on_msg4(*m4);
}
} // namespace

TEST_CASE("ec_srp5: 2000 random logins all succeed, and never with a wrong password") {
    seeded_entropy rng{20240607};
    int ok = 0, wrong_ok = 0;
    constexpr int runs_count = 2000;
    for (int n = 0; n < runs_count; ++n) {
        const std::string user = random_text(rng, wire::ecsrp5_max_username, false);
        const std::string password = random_text(rng, 64, true);
        const auto salt = rng.bytes<16>();
        const auto rec = ec::derive_record(user, password, salt);
        if (authenticate(user, password, rec, rng)) ++ok;
        std::string wrong = password;
        if (wrong.empty() || (rng.u32() & 1)) wrong += static_cast<char>(rng.u32() & 0xff);
        else wrong[rng.u32() % wrong.size()] ^= static_cast<char>(1 + rng.u32() % 255);
        if (authenticate(user, wrong, rec, rng)) ++wrong_ok;
    }
    CHECK(ok == runs_count);
    CHECK(wrong_ok == 0);
}
