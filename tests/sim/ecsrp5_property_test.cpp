// EC-SRP5 end to end in the memory world: random users, passwords, salts and both sides'
// secrets (all drawn from seeded entropy), client session against server session.
#include "sim_support.hpp"

using namespace sim;

namespace {
std::string random_bytes(seeded_entropy& rng, std::size_t min, std::size_t max, bool allow_nul) {
    const std::size_t n = min + rng.next() % (max - min + 1);
    std::string s;
    while (s.size() < n) {
        const auto c = static_cast<char>(rng.next() & 0xff);
        if (c == '\0' && !allow_nul) continue;
        s += c;
    }
    return s;
}

// Runs one handshake; returns the client's outcome.
std::optional<std::error_code> login(std::uint64_t seed, const std::string& user, const std::string& stored,
                                     const std::string& typed) {
    memory::world_config wc;
    wc.seed = seed;                    // salt, s_b and s_a all follow from it
    wc.server.auth = auth_method::ec_srp5;
    wc.users = {{user, stored}};
    client_config c;
    c.proto = protocol::tcp;
    c.dir = direction::transmit;
    c.local_tx_speed = 1'000'000;
    c.user = user;
    c.password = typed;
    memory::world w{c, wc, memory::link_model{}};
    auto& client = w.client();
    w.run_until([&] { return has_started(client.events()) || client.finished(); }, 5s);
    if (has_started(client.events())) return std::error_code{};
    return client.session().error();
}
} // namespace

TEST_CASE("sim: EC-SRP5, 2000 random logins all succeed and never with a wrong password") {
    seeded_entropy rng(20261122);
    int ok = 0, refused = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto user = random_bytes(rng, 1, 64, false);
        const auto password = random_bytes(rng, 0, 64, true);
        auto wrong = password;
        if (wrong.empty() || rng.next() % 2) wrong += static_cast<char>(rng.next() | 1);
        else wrong[rng.next() % wrong.size()] ^= static_cast<char>(1 + rng.next() % 255);
        const auto seed = rng.next();
        const auto good = login(seed, user, password, password);
        REQUIRE(good);
        if (!*good) ++ok;
        else FAIL_CHECK("login " << i << " failed: " << good->message());
        const auto bad = login(seed, user, password, wrong);
        REQUIRE(bad);
        if (*bad == errc::auth_failed) ++refused;
        else FAIL_CHECK("wrong password " << i << " gave: " << bad->message());
    }
    CHECK(ok == 2000);
    CHECK(refused == 2000);
}
