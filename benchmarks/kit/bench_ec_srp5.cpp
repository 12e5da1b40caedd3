// EC-SRP5 (PROTOCOL §6.3) costs: a whole server-side handshake (MSG1 in → MSG2, MSG3 in →
// MSG4) for a known and for an unknown user (which must cost the same: no user enumeration by
// timing; the _unknown_vs_known benchmark interleaves the two and prints their ratio), a whole
// client-side handshake, redp1 and one scalar multiplication. Items are
// handshakes (or operations) per second. The peer's messages are computed once beforehand with
// fixed random values, so each iteration does exactly one side's work and ends authenticated.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <time.h>

#include <btest/auth/credentials.hpp>
#include <btest/auth/ec_srp5.hpp>
#include <btest/core/entropy.hpp>

namespace {

namespace ec = btest::auth::ec_srp5;

constexpr std::string_view user = "admin";
constexpr std::string_view password = "test";

/// A server's account store with the transcript's user, and its EC-SRP5 secret.
struct server_side {
    btest::seeded_entropy rng{11};
    btest::auth::memory_credentials store{rng};
    std::array<std::byte, 32> secret{};
    server_side() {
        store.add(user, password);
        rng.fill(secret);
    }
};
server_side& server_fixture() {
    static server_side s;
    return s;
}

struct transcript {
    std::array<std::byte, 32> s_a{}, s_b{};
    ec::validator_record record;
    ec::prepared_record prepared;
    btest::wire::ec_point_bytes client_key;
    btest::wire::ecsrp5_msg2 msg2;
    btest::wire::ecsrp5_proof msg3{}, msg4{};

    transcript() {
        btest::seeded_entropy rng{2024};
        s_a = rng.bytes<32>();
        s_b = rng.bytes<32>();
        record = *server_fixture().store.ecsrp5_record(user);  // the salt the server's store drew
        prepared = *ec::prepare(record);
        btest::fixed_entropy fa{s_a}, fb{s_b};
        ec::client_exchange client{user, password, fa};
        ec::server_exchange server{fb};
        client_key = client.client_key();
        auto m2 = server.on_msg1({user, client_key}, record);
        auto m3 = m2 ? client.on_msg2(*m2) : btest::errc::auth_failed;
        auto m4 = m3 ? server.on_msg3(*m3) : btest::errc::auth_failed;
        if (!m4 || client.on_msg4(*m4)) throw std::runtime_error("bench_ec_srp5: setup handshake failed");
        msg2 = *m2;
        msg3 = *m3;
        msg4 = *m4;
    }
};

const transcript& fixture() {
    static const transcript t;
    return t;
}

/// One server login as a server session runs it: the record from the store (a decoy for an
/// unknown name, auth::ecsrp5_login_record), MSG1 → MSG2, MSG3 → MSG4 or refusal.
bool server_login(std::string_view name, const transcript& t, server_side& srv) {
    const auto rec = btest::auth::ecsrp5_login_record(srv.store, name, srv.secret);
    btest::fixed_entropy rng{t.s_b};
    ec::server_exchange server{rng};
    auto m2 = server.on_msg1({name, t.client_key}, rec);
    auto m4 = server.on_msg3(t.msg3);  // an unknown name fails here, like a wrong password
    benchmark::DoNotOptimize(m2);
    benchmark::DoNotOptimize(m4);
    return m2 && m4;
}

/// A known user, as a server session logs in: the stored prepared record.
void bm_ec_srp5_server_handshake(benchmark::State& state) {
    const auto& t = fixture();
    auto& srv = server_fixture();
    std::int64_t ok = 0;
    for (auto _ : state) ok += server_login(user, t, srv) ? 1 : 0;
    if (ok != state.iterations()) state.SkipWithError("server handshake failed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_server_handshake);

/// An unknown user, as a server session refuses it: the decoy record (ec_srp5::decoy_record),
/// then the failing proof. Should cost what bm_ec_srp5_server_handshake costs (§6.3.9 step 2).
void bm_ec_srp5_server_handshake_unknown_user(benchmark::State& state) {
    const auto& t = fixture();
    auto& srv = server_fixture();
    std::int64_t ok = 0;
    for (auto _ : state) ok += server_login("nobody", t, srv) ? 1 : 0;
    if (ok != 0) state.SkipWithError("an unknown user logged in");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_server_handshake_unknown_user);

/// This thread's CPU time: unlike a wall clock it does not count the time the thread waited
/// for a core, which on a shared machine is most of the noise.
double thread_cpu_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

/// The pair above interleaved, one known and one unknown login per iteration, each timed on its
/// own (thread CPU time), so that load on the machine hits both alike: reports the mean of each
/// (µs) and their ratio unknown/known (1.00 = an unknown name cannot be told apart by timing).
void bm_ec_srp5_server_handshake_unknown_vs_known(benchmark::State& state) {
    const auto& t = fixture();
    auto& srv = server_fixture();
    double known = 0, unknown = 0;
    bool flip = false;
    for (auto _ : state) {
        // Alternate which goes first, so neither always runs on a warmer cache.
        for (int k = 0; k < 2; ++k) {
            const bool is_known = (k == 0) != flip;
            const double t0 = thread_cpu_us();
            server_login(is_known ? user : std::string_view("nobody"), t, srv);
            (is_known ? known : unknown) += thread_cpu_us() - t0;
        }
        flip = !flip;
    }
    const double n = double(state.iterations());
    state.counters["known_us"] = known / n;
    state.counters["unknown_us"] = unknown / n;
    state.counters["ratio"] = unknown / known;
}
BENCHMARK(bm_ec_srp5_server_handshake_unknown_vs_known)->MinTime(2.0);

/// From a plain validator_record, prepared on every login (lift V, redp1).
void bm_ec_srp5_server_handshake_unprepared(benchmark::State& state) {
    const auto& t = fixture();
    std::int64_t ok = 0;
    for (auto _ : state) {
        btest::fixed_entropy rng{t.s_b};
        ec::server_exchange server{rng};
        auto m2 = server.on_msg1({user, t.client_key}, t.record);
        auto m4 = server.on_msg3(t.msg3);
        ok += (m2 && m4) ? 1 : 0;
        benchmark::DoNotOptimize(m4);
    }
    if (ok != state.iterations()) state.SkipWithError("server handshake failed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_server_handshake_unprepared);

/// What an unknown user cost before the decoy: fake_record and prepare on every login (one
/// scalar multiplication and a redp1 loop more than a known user), then the failing proof.
void bm_ec_srp5_server_handshake_fake_record(benchmark::State& state) {
    const auto& t = fixture();
    const std::array<std::byte, 32> secret{};
    for (auto _ : state) {
        btest::fixed_entropy rng{t.s_b};
        ec::server_exchange server{rng};
        auto rec = ec::prepare(ec::fake_record("nobody", secret));
        auto m2 = server.on_msg1({"nobody", t.client_key}, *rec);
        auto m4 = server.on_msg3(t.msg3);
        benchmark::DoNotOptimize(m2);
        benchmark::DoNotOptimize(m4);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_server_handshake_fake_record);

void bm_ec_srp5_client_handshake(benchmark::State& state) {
    const auto& t = fixture();
    std::int64_t ok = 0;
    for (auto _ : state) {
        btest::fixed_entropy rng{t.s_a};
        ec::client_exchange client{user, password, rng};
        auto m3 = client.on_msg2(t.msg2);
        ok += (m3 && !client.on_msg4(t.msg4)) ? 1 : 0;
        benchmark::DoNotOptimize(m3);
    }
    if (ok != state.iterations()) state.SkipWithError("client handshake failed");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_client_handshake);

void bm_ec_srp5_redp1(benchmark::State& state) {
    // Many inputs, so the average covers the data-dependent number of rounds.
    btest::seeded_entropy rng{7};
    std::vector<ec::bytes32> inputs(256);
    for (auto& x : inputs) x = rng.bytes<32>();
    std::size_t n = 0;
    for (auto _ : state) {
        auto q = ec::math::redp1(inputs[n++ % inputs.size()], 0);
        benchmark::DoNotOptimize(q);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_redp1);

void bm_ec_srp5_scalar_mul(benchmark::State& state) {
    btest::seeded_entropy rng{8};
    auto k = rng.bytes<32>();
    const auto g = ec::math::generator();
    for (auto _ : state) {
        auto q = ec::math::mul(k, g);
        k[31] = static_cast<std::byte>(static_cast<unsigned>(k[31]) + 1);
        benchmark::DoNotOptimize(q);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_ec_srp5_scalar_mul);

} // namespace
