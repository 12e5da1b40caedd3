// A client session and a server session wired back to back, with no transport and no world:
// bytes written by one are fed to the other at once. For allocation counting and benchmarks,
// where the memory world's own bookkeeping would get in the way.
#pragma once

#include <vector>

#include <btest/session/client_session.hpp>
#include <btest/session/server_session.hpp>

#include "test/rigs.hpp"

namespace test {

struct session_pair {
    btest::client_config ccfg;
    btest::server_config scfg;
    btest::seeded_entropy crng{1}, srng{2}, cred{3};
    btest::auth::memory_credentials creds{cred};
    recording_pool pool;
    recording_binder binder;
    btest::join_registry joins;
    btest::server_services ssvc{srng, &creds, &pool, &joins, {}};
    btest::client_services csvc{crng, &binder};
    btest::endpoint client_ep{btest::ip_address::v4(10, 0, 0, 2), 50000};
    btest::endpoint server_ep{btest::ip_address::v4(10, 0, 0, 1), 2000};
    std::unique_ptr<btest::server_session> server;
    std::unique_ptr<btest::client_session> client;
    std::vector<std::byte> buf = std::vector<std::byte>(256 * 1024);
    btest::time_point now{};

    explicit session_pair(const btest::client_config& c, const btest::server_config& s = {}) : ccfg(c), scfg(s) {
        creds.add("user", "pass");
    }

    /// Runs the handshake to the start of the test on both sides.
    bool start() {
        server = std::make_unique<btest::server_session>(scfg, ssvc, client_ep, now);
        client = std::make_unique<btest::client_session>(ccfg, csvc, server_ep, now);
        for (int i = 0; i < 20 && !(client->running() && server->running()); ++i) exchange_control();
        return client->running() && server->running();
    }

    /// Moves control bytes both ways once (connection 0), dropping events.
    void exchange_control() {
        if (auto n = server->write_to(0, now, buf)) client->feed(0, now, std::span(buf).first(n));
        if (auto n = client->write_to(0, now, buf)) server->feed(0, now, std::span(buf).first(n));
        while (server->poll_event()) {}
        while (client->poll_event()) {}
    }
};

} // namespace test
