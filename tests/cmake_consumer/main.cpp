// A program built against an installed btestkit: runs a 3-second UDP test in the memory world
// and checks that the server counted exactly what the link delivered.
#include <cstdio>

#include <btest/btest.hpp>
#include <btest/transport/memory/world.hpp>
#ifdef CONSUMER_HAS_ASIO
#include <btest/transport/asio/client.hpp>
#include <btest/transport/asio/server.hpp>
#endif

int main() {
    using namespace std::chrono_literals;
    btest::client_config cfg;
    cfg.proto = btest::protocol::udp;
    cfg.dir = btest::direction::both;
    cfg.remote_tx_speed = cfg.local_tx_speed = 50'000'000;
    cfg.test_duration = 3s;
    btest::memory::world w{cfg, {}, btest::memory::link_model{}};
    if (!w.run_until_finished(10s)) return 1;
    w.run_for(1s);
    const auto c = w.client().summary();
    const auto s = w.server_tests().at(0)->summary();
    std::printf("btestkit %s: client sent %llu bytes, server received %llu (link delivered %llu)\n",
                btest::version_string, static_cast<unsigned long long>(c.tx.bytes),
                static_cast<unsigned long long>(s.rx.bytes),
                static_cast<unsigned long long>(w.client().up().delivered_bytes));
    return s.rx.bytes == w.client().up().delivered_bytes && c.reason == btest::end_reason::completed ? 0 : 1;
}
