// MD5 challenge-response (PROTOCOL §6.2): both vectors of spec/vectors/md5.json, the username
// rules and the server-side verification.
#include <catch2/catch.hpp>

#include <btest/auth/md5.hpp>
#include <btest/wire/auth_word.hpp>
#include <btest/wire/md5.hpp>

#include "test/hex.hpp"
#include "test/vectors.hpp"

using namespace btest;

TEST_CASE("md5: every vector of spec/vectors/md5.json") {
    const auto& vs = test::md5_vectors()["vectors"].arr();
    REQUIRE(vs.size() == 2);
    for (const auto& v : vs) {
        INFO(v["name"].str());
        const auto challenge = test::unhex_array<16>(v["challenge_hex"].str());
        const auto& password = v["password_utf8"].str();
        CHECK(test::hex(auth::md5_inner(bytes::of(password), challenge)) ==
              v["inner_md5_password_challenge_hex"].str());
        const auto response = auth::md5_response(password, challenge);
        CHECK(test::hex(response) == v["response_hex"].str());
        const auto reply = wire::encode_md5_reply(response, v["username_utf8"].str());
        CHECK(test::hex(reply) == v["reply_48_bytes_hex"].str());
        auto word = wire::encode_auth_word({wire::auth_word_kind::md5, 0});
        CHECK(test::hex(word) + v["challenge_hex"].str() == v["server_challenge_message_hex"].str());

        auto decoded = wire::decode_md5_reply(reply);
        REQUIRE(decoded);
        CHECK(auth::md5_verify(*decoded, v["username_utf8"].str(), password, challenge));
        CHECK_FALSE(auth::md5_verify(*decoded, v["username_utf8"].str(), password + "x", challenge));
        CHECK_FALSE(auth::md5_verify(*decoded, "someone", password, challenge));
    }
}

TEST_CASE("md5: usernames longer than 32 bytes compare truncated") {
    const auto challenge = test::unhex_array<16>("000102030405060708090a0b0c0d0e0f");
    const std::string long_user(40, 'u');
    const auto reply = wire::decode_md5_reply(
        wire::encode_md5_reply(auth::md5_response("pw", challenge), long_user));
    REQUIRE(reply);
    CHECK(auth::md5_verify(*reply, long_user, "pw", challenge));
    CHECK(auth::md5_verify(*reply, std::string(32, 'u'), "pw", challenge));
    CHECK_FALSE(auth::md5_verify(*reply, std::string(31, 'u'), "pw", challenge));
}

TEST_CASE("md5: a single flipped bit anywhere in the response fails") {
    const auto challenge = test::unhex_array<16>("ad32d6f94d28161625f2f390bb895637");
    const auto good = auth::md5_response("test", challenge);
    for (std::size_t i = 0; i < 16; ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto r = good;
            r[i] ^= std::byte(1 << bit);
            CHECK_FALSE(auth::md5_equal(r, good));
        }
    }
    CHECK(auth::md5_equal(good, good));
}
