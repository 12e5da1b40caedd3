#include <catch2/catch.hpp>

#include <btest/transport/memory/world.hpp>

using namespace btest;
using namespace std::chrono_literals;

TEST_CASE("sim smoke: TCP receive, no auth") {
    client_config c;
    c.proto = protocol::tcp;
    c.dir = direction::receive;
    c.test_duration = 10s;
    memory::link_model link;
    link.bits_per_second = 100'000'000;
    link.delay = 1ms;
    memory::world w{c, {}, link};
    REQUIRE(w.run_until_finished(20s));
    auto s = w.client().summary();
    INFO(s.rx.bytes);
    CHECK(s.reason == end_reason::completed);
    CHECK(s.rx.bytes > 0);
}
