// Rigs for scripted session tests: a session plus everything it borrows, deterministic.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <btest/auth/credentials.hpp>
#include <btest/session/client_session.hpp>
#include <btest/session/join_registry.hpp>
#include <btest/session/server_session.hpp>

namespace test {

/// A UDP port pool that hands out `next` (or nothing) and records what happens.
struct recording_pool final : btest::udp_port_pool {
    std::optional<std::uint16_t> next = 2001;
    std::vector<std::uint16_t> acquired;
    std::vector<std::uint16_t> released;
    std::uint16_t last_count = 0;
    std::optional<std::uint16_t> acquire(std::uint16_t count) override {
        last_count = count;
        if (next) acquired.push_back(*next);
        return next;
    }
    void release(std::uint16_t first) override { released.push_back(first); }
};

struct recording_binder final : btest::udp_binder {
    bool succeed = true;
    std::vector<std::uint16_t> bound;  // first port of each bind
    std::uint16_t count = 0, server_port = 0;
    int unbinds = 0;
    bool bind(std::uint16_t first, std::uint16_t n, std::uint16_t server) override {
        if (!succeed) return false;
        bound.push_back(first);
        count = n;
        server_port = server;
        return true;
    }
    void unbind() override { ++unbinds; }
};

struct server_rig {
    btest::server_config cfg;
    std::vector<std::byte> pattern;        // what the session's entropy yields
    btest::fixed_entropy rng{pattern};
    btest::seeded_entropy cred_rng{7};
    btest::auth::memory_credentials creds{cred_rng};
    const btest::auth::credential_store* store = &creds;
    recording_pool pool;
    btest::join_registry joins;
    std::optional<btest::server_services> svc;
    std::unique_ptr<btest::server_session> s;
    btest::endpoint peer{btest::ip_address::v4(192, 0, 2, 10), 50000};

    btest::server_session& session() { return *s; }
    void start(btest::time_point now = {}) {
        rng = btest::fixed_entropy(pattern);
        svc.emplace(btest::server_services{rng, store, &pool, &joins, {}});
        s = std::make_unique<btest::server_session>(cfg, *svc, peer, now);
    }
};

struct client_rig {
    btest::client_config cfg;
    std::vector<std::byte> pattern;
    btest::fixed_entropy rng{pattern};
    recording_binder binder;
    std::optional<btest::client_services> svc;
    std::unique_ptr<btest::client_session> s;
    btest::endpoint server{btest::ip_address::v4(192, 0, 2, 1), 2000};

    btest::client_session& session() { return *s; }
    void start(btest::time_point now = {}) {
        rng = btest::fixed_entropy(pattern);
        svc.emplace(btest::client_services{rng, &binder});
        s = std::make_unique<btest::client_session>(cfg, *svc, server, now);
    }
};

} // namespace test
