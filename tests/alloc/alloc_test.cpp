// Nothing on the per-packet path allocates (DESIGN.md): after a test has started, sending and
// receiving UDP datagrams, writing and reading TCP chunks, and the per-second STATUS and report
// ticks run without a single heap allocation. This binary replaces the global operator new to
// count allocations, so it is its own executable.
//
// To find an allocation it reports, run it under gdb with ALLOC_ABORT=1.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test/pair.hpp"

// g++ sees malloc/free behind our own new/delete and warns about a mismatch that is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<std::uint64_t> allocations{0};
std::atomic<bool> counting{false};
} // namespace

void* operator new(std::size_t n) {
    if (counting.load(std::memory_order_relaxed)) {
        allocations.fetch_add(1, std::memory_order_relaxed);
        // To find an allocation: ALLOC_ABORT=1 gdb -ex run --args btest_alloc_tests
        if (std::getenv("ALLOC_ABORT")) std::abort();
    }
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {
struct count_scope {
    count_scope() {
        allocations = 0;
        counting = true;
    }
    ~count_scope() { counting = false; }
    /// Stops counting (before any CHECK: Catch allocates) and returns the count.
    std::uint64_t stop() {
        counting = false;
        return allocations.load();
    }
};

using namespace btest;
using namespace std::chrono_literals;
} // namespace

TEST_CASE("alloc: the counter sees allocations") {
    count_scope scope;
    auto* volatile p = new std::vector<int>(100);
    delete p;
    CHECK(scope.stop() >= 1);
}

TEST_CASE("alloc: UDP both directions, 20 streams, random data: zero allocations per datagram") {
    client_config c;
    c.proto = protocol::udp;
    c.dir = direction::both;
    c.connection_count = 20;
    c.random_data = true;
    c.remote_tx_speed = c.local_tx_speed = 1'000'000'000;
    test::session_pair p(c);
    REQUIRE(p.start());
    std::vector<std::byte> dg(max_datagram_payload);
    std::uint64_t moved = 0;
    count_scope scope;
    for (int step = 0; step < 30'000; ++step) {
        p.now += 100us;
        while (auto d = p.server->next_datagram(p.now, dg)) {
            p.client->feed_datagram(p.now, p.server_ep, std::span(dg).first(d->size), d->port - 2001u - 256u);
            ++moved;
        }
        while (auto d = p.client->next_datagram(p.now, dg)) {
            p.server->feed_datagram(p.now, {p.client_ep.address, static_cast<std::uint16_t>(2257 + d->stream)},
                                    std::span(dg).first(d->size));
            ++moved;
        }
        if (auto t = p.server->next_deadline(); t && *t <= p.now) p.server->on_timer(p.now);
        if (auto t = p.client->next_deadline(); t && *t <= p.now) p.client->on_timer(p.now);
        p.exchange_control();  // STATUS both ways, reports drained
    }
    const auto allocated = scope.stop();
    CHECK(moved > 200'000);
    CHECK(p.client->summary(p.now).rx.packets > 100'000);
    CHECK(p.server->summary(p.now).status_received >= 2);
    CHECK(allocated == 0);
}

TEST_CASE("alloc: TCP both directions: zero allocations per chunk") {
    client_config c;
    c.proto = protocol::tcp;
    c.dir = direction::both;
    test::session_pair p(c);
    REQUIRE(p.start());
    std::uint64_t moved = 0;
    count_scope scope;
    for (int step = 0; step < 20'000; ++step) {
        p.now += 100us;
        if (auto n = p.server->write_to(0, p.now, p.buf)) {
            p.client->feed(0, p.now, std::span(p.buf).first(n));
            moved += n;
        }
        if (auto n = p.client->write_to(0, p.now, p.buf)) {
            p.server->feed(0, p.now, std::span(p.buf).first(n));
            moved += n;
        }
        if (auto t = p.server->next_deadline(); t && *t <= p.now) p.server->on_timer(p.now);
        if (auto t = p.client->next_deadline(); t && *t <= p.now) p.client->on_timer(p.now);
        while (p.server->poll_event()) {}
        while (p.client->poll_event()) {}
    }
    const auto allocated = scope.stop();
    CHECK(moved > 1'000'000'000);
    CHECK(p.server->summary(p.now).status_received >= 1);
    CHECK(p.client->summary(p.now).status_received >= 1);
    CHECK(allocated == 0);
}
