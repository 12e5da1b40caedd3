// credential_store / memory_credentials (PROTOCOL §6.1–§6.3): per-user random salts, records
// derived at add() time, MD5 passwords, and logins served from the store.
#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <string>

#include <btest/auth/credentials.hpp>
#include <btest/auth/ec_srp5.hpp>
#include <btest/core/entropy.hpp>

#include "test/hex.hpp"

using namespace btest;
namespace ec = btest::auth::ec_srp5;

namespace {
const auto login_secret = test::unhex_array<32>("5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e");

/// One EC-SRP5 login against `store`; unknown users get a decoy record, as a server's do.
bool login(const auth::credential_store& store, const std::string& user, const std::string& password, entropy& rng) {
    const auto rec = auth::ecsrp5_login_record(store, user, login_secret);
    ec::client_exchange client{user, password, rng};
    ec::server_exchange server{rng};
    auto m2 = server.on_msg1({user, client.client_key()}, rec);
    REQUIRE(m2);
    auto m3 = client.on_msg2(*m2);
    REQUIRE(m3);
    auto m4 = server.on_msg3(*m3);
    return m4 && !client.on_msg4(*m4);
}
} // namespace

TEST_CASE("credentials: memory_credentials draws each user's salt from the entropy at add()") {
    const auto pattern = test::unhex("00112233445566778899aabbccddeeff" "0f0e0d0c0b0a09080706050403020100");
    fixed_entropy rng{pattern};
    auth::memory_credentials store{rng};
    store.add("admin", "test");
    store.add("пользователь", "pässwörd 🔑");
    CHECK(store.size() == 2);
    CHECK(store.contains("admin"));
    CHECK_FALSE(store.contains("root"));

    const auto salt1 = test::unhex_array<16>("00112233445566778899aabbccddeeff");
    const auto salt2 = test::unhex_array<16>("0f0e0d0c0b0a09080706050403020100");
    auto rec1 = store.ecsrp5_record("admin");
    REQUIRE(rec1);
    CHECK(*rec1 == ec::derive_record("admin", "test", salt1));
    auto rec2 = store.ecsrp5_record("пользователь");
    REQUIRE(rec2);
    CHECK(*rec2 == ec::derive_record("пользователь", "pässwörd 🔑", salt2));

    CHECK(store.md5_password("admin") == std::optional<std::string>("test"));
    CHECK_FALSE(store.md5_password("root"));
    CHECK_FALSE(store.ecsrp5_record("root"));
    CHECK_FALSE(store.ecsrp5_record("Admin"));  // exact bytes
}

TEST_CASE("credentials: add() replaces a user's password and salt") {
    seeded_entropy rng{5};
    auth::memory_credentials store{rng};
    store.add("admin", "old");
    const auto before = store.ecsrp5_record("admin");
    store.add("admin", "new");
    CHECK(store.size() == 1);
    CHECK(store.md5_password("admin") == std::optional<std::string>("new"));
    const auto after = store.ecsrp5_record("admin");
    REQUIRE(before);
    REQUIRE(after);
    CHECK(before->salt != after->salt);
    CHECK(*after == ec::derive_record("admin", "new", after->salt));
}

TEST_CASE("credentials: EC-SRP5 logins served from a store, through the base class") {
    seeded_entropy rng{99};
    auto store = std::make_unique<auth::memory_credentials>(rng);
    store->add("admin", "test");
    store->add("guest", "");
    const auth::credential_store& base = *store;
    CHECK(login(base, "admin", "test", rng));
    CHECK(login(base, "guest", "", rng));
    CHECK_FALSE(login(base, "admin", "wrong", rng));
    CHECK_FALSE(login(base, "guest", "x", rng));
    CHECK_FALSE(login(base, "nobody", "test", rng));  // decoy record: fails at the proof
    CHECK_FALSE(login(base, "nobody", "", rng));
}

namespace {
/// A store implementing only the required lookups (as an account database might).
class records_only final : public auth::credential_store {
public:
    std::optional<std::string> md5_password(std::string_view) const override { return std::nullopt; }
    std::optional<ec::validator_record> ecsrp5_record(std::string_view user) const override {
        if (user == "admin") return ec::derive_record("admin", "test", salt);
        if (user == "corrupt") return ec::validator_record{salt, {bytes32_two(), 0}};  // u = 2 does not lift
        return std::nullopt;
    }
    static ec::bytes32 bytes32_two() {
        ec::bytes32 u{};
        u[31] = std::byte{2};
        return u;
    }
    ec::salt_bytes salt = test::unhex_array<16>("4550b2fd704fd794255ee5f1c3e9575f");
};
} // namespace

TEST_CASE("credentials: the default ecsrp5_prepared prepares the stored record") {
    records_only store;
    auto prepared = store.ecsrp5_prepared("admin");
    REQUIRE(prepared);
    CHECK(prepared->record == ec::derive_record("admin", "test", store.salt));
    CHECK(prepared->v == *ec::math::decode_point(prepared->record.validator));
    CHECK(prepared->gamma == ec::math::redp1(prepared->record.validator.u, 0));
    CHECK_FALSE(store.ecsrp5_prepared("nobody"));
    CHECK_FALSE(store.ecsrp5_prepared("corrupt"));  // could never authenticate: like an unknown user
    CHECK_FALSE(store.md5_password("admin"));        // no MD5 for this store

    seeded_entropy rng{3};
    CHECK(login(store, "admin", "test", rng));
    CHECK_FALSE(login(store, "admin", "tset", rng));
    CHECK_FALSE(login(store, "corrupt", "test", rng));
}

TEST_CASE("credentials: memory_credentials keeps prepared records") {
    seeded_entropy rng{4};
    auth::memory_credentials store{rng};
    store.add("admin", "test");
    auto rec = store.ecsrp5_record("admin");
    auto prepared = store.ecsrp5_prepared("admin");
    REQUIRE(rec);
    REQUIRE(prepared);
    CHECK(prepared->record == *rec);
    auto again = ec::prepare(*rec);
    REQUIRE(again);
    CHECK(prepared->v == again->v);
    CHECK(prepared->gamma == again->gamma);
}

TEST_CASE("credentials: ecsrp5_login_record serves known names from the store and unknown ones a decoy") {
    seeded_entropy rng{5};
    auth::memory_credentials store{rng};
    store.add("admin", "test");
    const auto known = auth::ecsrp5_login_record(store, "admin", login_secret);
    const auto stored = store.ecsrp5_prepared("admin");
    REQUIRE(stored);
    CHECK(known.record == stored->record);
    CHECK(known.v == stored->v);
    CHECK(known.gamma == stored->gamma);
    for (const char* name : {"nobody", "Admin", "admin ", ""}) {
        INFO(name);
        const auto decoy = ec::decoy_record(name, login_secret);
        const auto rec = auth::ecsrp5_login_record(store, name, login_secret);
        CHECK(rec.record == decoy.record);
        CHECK(rec.v == decoy.v);
        CHECK(rec.gamma == decoy.gamma);
    }
    // A record that does not decode is answered like an unknown name.
    records_only ro;
    const auto corrupt = auth::ecsrp5_login_record(ro, "corrupt", login_secret);
    CHECK(corrupt.record == ec::decoy_record("corrupt", login_secret).record);
    CHECK(auth::ecsrp5_login_record(ro, "admin", login_secret).record == ec::derive_record("admin", "test", ro.salt));
}
