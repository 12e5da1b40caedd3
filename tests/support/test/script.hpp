// Scripted exchanges with one session, after Boost.MySQL's algo tests: feed bytes, expect the
// exact bytes written back, move virtual time, expect events and the end. run() replays the
// script three ways:
//   1. as written;
//   2. with every feed split into single bytes (the session must behave identically);
//   3. once per step k, with the transport reporting the connection closed before step k: the
//      session must end exactly once, write nothing more and need no timer.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <btest/core/time.hpp>
#include <btest/session/session.hpp>
#include <btest/session/event.hpp>

#include "test/hex.hpp"

namespace test {

/// Anything a script can drive: a rig owning the session and everything it borrows.
/// Rig must provide: `auto& session()` returning a client_session or server_session.
template <class Rig>
class script {
public:
    using factory = std::function<std::unique_ptr<Rig>()>;

    explicit script(factory make) : make_(std::move(make)) {}

    script& feed(std::vector<std::byte> b, std::uint32_t conn = 0) { return add({kind::feed, std::move(b), conn}); }
    script& feed(std::string_view hexstr, std::uint32_t conn = 0) { return feed(unhex(hexstr), conn); }
    /// The session has written exactly these bytes (since the last expectation) on `conn`.
    script& expect_write(std::vector<std::byte> b, std::uint32_t conn = 0) { return add({kind::expect_write, std::move(b), conn}); }
    script& expect_write(std::string_view hexstr, std::uint32_t conn = 0) { return expect_write(unhex(hexstr), conn); }
    /// What was written starts with these bytes; the rest (test data) is discarded.
    script& expect_prefix(std::vector<std::byte> b, std::uint32_t conn = 0) { return add({kind::expect_prefix, std::move(b), conn}); }
    script& expect_prefix(std::string_view hexstr, std::uint32_t conn = 0) { return expect_prefix(unhex(hexstr), conn); }
    script& expect_nothing_written(std::uint32_t conn = 0) { return add({kind::expect_write, {}, conn}); }
    /// Moves virtual time, firing the session's timer as a driver would.
    script& after(btest::duration d) {
        step s{kind::after};
        s.d = d;
        return add(std::move(s));
    }
    /// Some event since the last check satisfies `pred`.
    script& expect_event(std::string what, std::function<bool(const btest::event&)> pred) {
        step s{kind::expect_event};
        s.what = std::move(what);
        s.pred = std::move(pred);
        return add(std::move(s));
    }
    template <class E>
    script& expect_event() {
        return expect_event(typeid(E).name(), [](const btest::event& e) { return std::holds_alternative<E>(e); });
    }
    /// The session is over with this error (or, for a clean end, this reason).
    script& expect_closed(std::error_code ec) {
        step s{kind::expect_closed};
        s.ec = ec;
        s.reason = btest::end_reason::failure;
        return add(std::move(s));
    }
    script& expect_closed(btest::errc e) { return expect_closed(make_error_code(e)); }
    script& expect_ended(btest::end_reason r) {
        step s{kind::expect_closed};
        s.reason = r;
        return add(std::move(s));
    }
    /// The peer closes `conn`.
    script& peer_closes(std::uint32_t conn = 0) { return add({kind::close, {}, conn}); }
    /// Arbitrary check on the rig at this point.
    script& check(std::function<void(Rig&)> f) {
        step s{kind::check};
        s.f = std::move(f);
        return add(std::move(s));
    }

    void run() {
        {
            INFO("script as written");
            replay(false, std::nullopt);
        }
        {
            INFO("script with every feed split into single bytes");
            replay(true, std::nullopt);
        }
        for (std::size_t k = 0; k <= steps_.size(); ++k) {
            INFO("transport closes the connection before step " << k);
            replay(false, k);
        }
    }

private:
    // A plain struct rather than a variant: g++ 12 warns (falsely) about variant moves.
    enum class kind { feed, expect_write, expect_prefix, after, expect_event, expect_closed, close, check };
    struct step {
        kind k{};
        std::vector<std::byte> bytes{};
        std::uint32_t conn = 0;
        btest::duration d{};
        std::string what{};
        std::function<bool(const btest::event&)> pred{};
        std::error_code ec{};
        btest::end_reason reason{};
        std::function<void(Rig&)> f{};
    };

    script& add(step s) {
        steps_.push_back(std::move(s));
        return *this;
    }

    struct state {
        std::unique_ptr<Rig> rig;
        btest::time_point now{};
        std::vector<std::vector<std::byte>> out;
        std::vector<btest::event> events;
        int closed_events = 0;
    };

    static void drain(state& st) {
        // The rig plays the transport's part: it answers requests (UDP ports, binds).
        if constexpr (requires(Rig& r, btest::time_point t) { r.serve_requests(t); }) st.rig->serve_requests(st.now);
        auto& s = st.rig->session();
        while (auto ev = s.poll_event()) {
            if (std::holds_alternative<btest::session_closed>(*ev)) ++st.closed_events;
            st.events.push_back(std::move(*ev));
        }
        std::vector<std::byte> buf(256 * 1024);
        for (std::uint32_t c = 0; c < s.connection_count(); ++c) {
            if (st.out.size() <= c) st.out.resize(c + 1);
            // Bounded: an unpaced sender never runs dry.
            for (int i = 0; i < 4; ++i) {
                const auto n = s.write_to(c, st.now, buf);
                if (n == 0) break;
                st.out[c].insert(st.out[c].end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
        }
        if (auto d = s.next_deadline(); d && !s.finished()) {
            REQUIRE(*d > st.now - std::chrono::seconds(3600));  // sanity: never absurd
        }
    }

    static void advance(state& st, btest::time_point to) {
        auto& s = st.rig->session();
        for (int guard = 0; guard < 100000; ++guard) {
            auto d = s.next_deadline();
            if (!d || *d > to) break;
            st.now = std::max(st.now, *d);
            s.on_timer(st.now);
            drain(st);
        }
        st.now = to;
        s.on_timer(st.now);
        drain(st);
    }

    void replay(bool split, std::optional<std::size_t> fail_at) {
        state st;
        st.rig = make_();
        drain(st);
        for (std::size_t i = 0; i < steps_.size(); ++i) {
            if (fail_at && *fail_at == i) break;
            INFO("step " << i);
            apply(st, steps_[i], split);
            if (st.rig->session().finished() && fail_at) break;
        }
        if (fail_at) {
            auto& s = st.rig->session();
            const bool was_finished = s.finished();
            const int closed_before = st.closed_events;
            s.on_connection_closed(0, st.now, {});
            drain(st);
            // Whatever the state, a closed transport ends the session, exactly once.
            if (!s.finished()) advance(st, st.now + std::chrono::seconds(30));
            CHECK(s.finished());
            CHECK(st.closed_events == 1);
            if (was_finished) CHECK(st.closed_events == closed_before);
            CHECK_FALSE(s.next_deadline());
            std::vector<std::byte> buf(256 * 1024);
            for (std::uint32_t c = 0; c < s.connection_count(); ++c) CHECK(s.write_to(c, st.now, buf) == 0);
            CHECK_FALSE(s.poll_event());
        }
    }

    void apply(state& st, step& e, bool split) {
        auto& s = st.rig->session();
        switch (e.k) {
        case kind::feed:
            if (split) {
                for (auto b : e.bytes) {
                    s.feed(e.conn, st.now, std::span<const std::byte>(&b, 1));
                    drain(st);
                }
            } else {
                s.feed(e.conn, st.now, e.bytes);
                drain(st);
            }
            return;
        case kind::expect_write:
        case kind::expect_prefix: {
            if (st.out.size() <= e.conn) st.out.resize(e.conn + 1);
            auto& got = st.out[e.conn];
            if (e.k == kind::expect_prefix) {
                REQUIRE(got.size() >= e.bytes.size());
                CHECK(hex(std::span(got).first(e.bytes.size())) == hex(e.bytes));
            } else {
                CHECK(hex(got) == hex(e.bytes));
            }
            got.clear();
            return;
        }
        case kind::after: advance(st, st.now + e.d); return;
        case kind::expect_event: {
            INFO("expected event: " << e.what);
            bool found = false;
            for (auto it = st.events.begin(); it != st.events.end(); ++it) {
                if (e.pred(*it)) {
                    st.events.erase(it);
                    found = true;
                    break;
                }
            }
            CHECK(found);
            return;
        }
        case kind::expect_closed: {
            CHECK(s.finished());
            CHECK(st.closed_events == 1);
            const btest::session_closed* closed = nullptr;
            for (auto& ev : st.events)
                if (auto* c = std::get_if<btest::session_closed>(&ev)) closed = c;
            REQUIRE(closed);
            CHECK(closed->reason == e.reason);
            CHECK(closed->error == e.ec);
            CHECK(s.error() == e.ec);
            return;
        }
        case kind::close:
            s.on_connection_closed(e.conn, st.now, {});
            drain(st);
            return;
        case kind::check:
            e.f(*st.rig);
            drain(st);
            return;
        }
    }

    factory make_;
    std::vector<step> steps_;
};

} // namespace test
