// Rigs for scripted session tests: a session plus everything it borrows, deterministic, with
// the transport's part played by the rig: it answers the session's requests (a recording UDP
// port pool, a recording binder) and, for the server, routes the connection through the kit's
// front end first, as a real server does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <btest/auth/credentials.hpp>
#include <btest/server/front.hpp>
#include <btest/server/join_registry.hpp>
#include <btest/server/policy.hpp>
#include <btest/session/client_session.hpp>
#include <btest/session/server_session.hpp>

namespace test {

/// A UDP port pool that hands out `next` (or nothing) and records what happens.
struct recording_pool {
    std::optional<std::uint16_t> next = 2001;
    std::vector<std::uint16_t> acquired;
    std::vector<std::uint16_t> released;
    std::uint16_t last_count = 0;
    std::optional<std::uint16_t> acquire(std::uint16_t count) {
        last_count = count;
        if (next) acquired.push_back(*next);
        return next;
    }
    void release(std::uint16_t first) { released.push_back(first); }
};

struct recording_binder {
    bool succeed = true;
    std::vector<std::uint16_t> bound;  // first port of each bind
    std::uint16_t count = 0, server_port = 0;
    int unbinds = 0;
    bool bind(const btest::udp_bind_request& r) {
        if (!succeed) return false;
        bound.push_back(r.first);
        count = r.count;
        server_port = r.server_port;
        return true;
    }
    void unbind() { ++unbinds; }
};

/// One accepted connection as a server sees it: the front end until the first message, then
/// the session it created — with the surface of a session, so scripts drive it like one. A
/// connection the front end closes reads as a session that ended with the front end's error.
class routed_server {
public:
    routed_server(const btest::server_config& cfg, btest::server_services& svc, btest::front_policy& policy,
                  recording_pool& pool, const btest::endpoint& peer, btest::time_point now)
        : cfg_(cfg), svc_(svc), pool_(pool),
          front_(btest::front_config{cfg.limits.handshake, cfg.max_conn_count, {}}, policy), peer_(peer) {
        svc_.joins = &front_.joins();
        id_ = front_.accept(now, peer);
        route(now, {});
    }

    std::error_code feed(std::uint32_t conn, btest::time_point now, std::span<const std::byte> in) {
        if (!s_ && !closed_) {
            const auto n = front_.feed(id_, now, in);
            in = in.subspan(n);
            route(now, in);
            return error();
        }
        if (s_) s_->feed(conn, now, in);
        return serve(now);
    }
    std::size_t write_to(std::uint32_t conn, btest::time_point now, std::span<std::byte> out) {
        if (!s_) return closed_ ? 0 : front_.write_to(id_, now, out);
        const auto n = s_->write_to(conn, now, out);
        serve(now);
        return n;
    }
    std::optional<btest::event> poll_event() {
        if (s_) return s_->poll_event();
        if (closed_ && !closed_reported_) {
            closed_reported_ = true;
            return btest::session_closed{btest::end_reason::failure, error_};
        }
        return std::nullopt;
    }
    std::optional<btest::time_point> next_deadline() const {
        if (s_) return s_->next_deadline();
        return closed_ ? std::nullopt : front_.next_deadline();
    }
    std::error_code on_timer(btest::time_point now) {
        if (s_) {
            s_->on_timer(now);
            return serve(now);
        }
        if (!closed_) {
            front_.on_timer(now);
            route(now, {});
        }
        return error();
    }
    std::error_code on_connection_closed(std::uint32_t conn, btest::time_point now, std::error_code ec = {}) {
        if (s_) {
            s_->on_connection_closed(conn, now, ec);
            return serve(now);
        }
        if (!closed_) {
            front_.closed(id_, now);
            closed_ = true;
            error_ = make_error_code(btest::errc::peer_closed);
        }
        return error();
    }
    std::error_code stop(btest::time_point now) {
        if (s_) {
            s_->stop(now);
            return serve(now);
        }
        return on_connection_closed(0, now);
    }
    std::error_code refuse(btest::time_point now) {
        if (s_) {
            s_->refuse(now);
            return serve(now);
        }
        return error();
    }

    bool finished() const { return s_ ? s_->finished() : closed_; }
    bool running() const { return s_ && s_->running(); }
    std::error_code error() const { return s_ ? s_->error() : error_; }
    std::size_t connection_count() const { return s_ ? s_->connection_count() : 1; }
    const btest::connection_stats& conn_stats(std::uint32_t conn) const { return s_->conn_stats(conn); }
    btest::test_summary summary(std::optional<btest::time_point> now = std::nullopt) const {
        return s_ ? s_->summary(now) : btest::test_summary{};
    }
    /// The session, once the front end created it.
    btest::server_session* session() { return s_.get(); }
    btest::join_registry& joins() { return front_.joins(); }

private:
    void route(btest::time_point now, std::span<const std::byte> rest) {
        while (auto r = front_.poll_route()) {
            if (auto* t = std::get_if<btest::route_test>(&*r)) {
                s_ = std::make_unique<btest::server_session>(cfg_, svc_, t->peer, t->command, now);
                serve(now);
                if (!rest.empty()) s_->feed(0, now, rest);
                serve(now);
            } else if (auto* c = std::get_if<btest::route_close>(&*r)) {
                closed_ = true;
                error_ = c->error;
            }
        }
    }
    /// Answers the session's requests as a transport would, and gives its port back when it
    /// is over.
    std::error_code serve(btest::time_point now) {
        if (!s_) return error();
        while (auto rq = s_->poll_request()) {
            if (auto* p = std::get_if<btest::udp_port_request>(&*rq)) {
                port_ = pool_.acquire(p->count);
                s_->udp_port_ready(now, port_);
            } else if (std::holds_alternative<btest::admission_request>(*rq)) {
                s_->admit(now);
            }
        }
        if (s_->finished() && port_) {
            pool_.release(*port_);
            port_.reset();
        }
        return s_->error();
    }

    const btest::server_config& cfg_;
    btest::server_services& svc_;
    recording_pool& pool_;
    btest::server_front front_;
    btest::endpoint peer_;
    btest::conn_id id_ = 0;
    std::unique_ptr<btest::server_session> s_;
    std::optional<std::uint16_t> port_;
    bool closed_ = false;
    bool closed_reported_ = false;
    std::error_code error_;
};

struct server_rig {
    btest::server_config cfg;
    std::vector<std::byte> pattern;        // what the session's entropy yields
    btest::fixed_entropy rng{pattern};
    btest::seeded_entropy cred_rng{7};
    btest::auth::memory_credentials creds{cred_rng};
    const btest::auth::credential_store* store = &creds;
    recording_pool pool;
    btest::server_policy policy;
    std::optional<btest::server_services> svc;
    std::unique_ptr<routed_server> s;
    btest::endpoint peer{btest::ip_address::v4(192, 0, 2, 10), 50000};

    routed_server& session() { return *s; }
    btest::join_registry& joins() { return s->joins(); }
    void start(btest::time_point now = {}) {
        rng = btest::fixed_entropy(pattern);
        svc.emplace(btest::server_services{rng, store, nullptr, {}});
        s = std::make_unique<routed_server>(cfg, *svc, policy, pool, peer, now);
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
    bool bound = false;

    btest::client_session& session() { return *s; }
    void start(btest::time_point now = {}) {
        rng = btest::fixed_entropy(pattern);
        svc.emplace(btest::client_services{rng});
        s = std::make_unique<btest::client_session>(cfg, *svc, server, now);
    }
    /// Answers the session's requests as a transport would (the binder records the bind), and
    /// unbinds when the session is over.
    void serve_requests(btest::time_point now) {
        while (auto rq = s->poll_request()) {
            if (auto* b = std::get_if<btest::udp_bind_request>(&*rq)) {
                bound = binder.bind(*b);
                s->udp_bound(now, bound);
            }
        }
        if (s->finished() && bound) {
            binder.unbind();
            bound = false;
        }
    }
};

} // namespace test
