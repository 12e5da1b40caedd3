// A client session and a server session wired back to back, with no transport and no world:
// bytes written by one are fed to the other at once, the server's first message routed by the
// kit's front end, requests answered on the spot. For allocation counting and benchmarks,
// where the memory world's own bookkeeping would get in the way.
#pragma once

#include <memory>
#include <vector>

#include <btest/server/front.hpp>
#include <btest/server/policy.hpp>
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
    btest::server_services ssvc{srng, &creds, &joins, {}};
    btest::client_services csvc{crng};
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
        btest::server_policy policy;
        btest::server_front front({scfg.limits.handshake, scfg.max_conn_count, {}}, policy);
        const auto id = front.accept(now, client_ep);
        client = std::make_unique<btest::client_session>(ccfg, csvc, server_ep, now);
        if (auto n = front.write_to(id, now, buf)) client->feed(0, now, std::span(buf).first(n));
        const auto n = client->write_to(0, now, buf);
        const auto took = front.feed(id, now, std::span(buf).first(n));
        auto r = front.poll_route();
        if (!r || !std::holds_alternative<btest::route_test>(*r)) return false;
        server = std::make_unique<btest::server_session>(scfg, ssvc, client_ep, std::get<btest::route_test>(*r).command, now);
        if (took < n) server->feed(0, now, std::span(buf).subspan(took, n - took));
        for (int i = 0; i < 20 && !(client->running() && server->running()); ++i) exchange_control();
        return client->running() && server->running();
    }

    /// Moves control bytes both ways once (connection 0), answers requests, drops events.
    void exchange_control() {
        serve();
        if (auto n = server->write_to(0, now, buf)) client->feed(0, now, std::span(buf).first(n));
        serve();
        if (auto n = client->write_to(0, now, buf)) server->feed(0, now, std::span(buf).first(n));
        serve();
        while (server->poll_event()) {}
        while (client->poll_event()) {}
    }

    void serve() {
        while (auto rq = server->poll_request())
            if (auto* p = std::get_if<btest::udp_port_request>(&*rq)) server->udp_port_ready(now, pool.acquire(p->count));
        while (auto rq = client->poll_request())
            if (auto* b = std::get_if<btest::udp_bind_request>(&*rq)) client->udp_bound(now, binder.bind(*b));
    }
};

} // namespace test
