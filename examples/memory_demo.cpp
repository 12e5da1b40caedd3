// A whole btest run inside the in-memory world: a client and a server session joined by a
// 500 Mbit/s link with 2 ms of delay, on a virtual clock. Prints one line per second per
// direction and a summary, the way the CLI does over real sockets.
#include <cstdio>
#include <variant>

#include <btest/transport/memory/world.hpp>

using namespace btest;
using namespace std::chrono_literals;

static void print_report(const char* side, const interval_report& r) {
    auto line = [&](const char* dir, const direction_interval& d) {
        if (!d.active) return;
        std::printf("[%s] %5.1f-%4.1fs %s %8.2f Mbit/s %10llu bytes\n", side,
                    std::chrono::duration<double>(r.start).count(), std::chrono::duration<double>(r.end).count(),
                    dir, double(d.bits_per_second) / 1e6, static_cast<unsigned long long>(d.bytes));
    };
    line("TX", r.tx);
    line("RX", r.rx);
}

int main() {
    for (auto proto : {protocol::tcp, protocol::udp}) {
        client_config cfg;
        cfg.proto = proto;
        cfg.dir = direction::both;
        cfg.test_duration = 5s;
        memory::link_model link;
        link.bits_per_second = 500'000'000;
        link.delay = 2ms;
        memory::world w{cfg, {}, link};
        std::printf("=== in-memory %s test, both directions, 5 s over a 500 Mbit/s link\n",
                    proto == protocol::tcp ? "TCP" : "UDP");
        if (!w.run_until_finished(30s)) {
            std::printf("test did not finish\n");
            return 1;
        }
        for (const auto& ev : w.client().events())
            if (auto* r = std::get_if<interval_report>(&ev)) print_report("client", *r);
        const auto s = w.client().summary();
        std::printf("summary: tx %llu bytes (%.2f Mbit/s), rx %llu bytes (%.2f Mbit/s), lost %llu, ended: %s\n\n",
                    static_cast<unsigned long long>(s.tx.bytes), double(s.tx.average_bps) / 1e6,
                    static_cast<unsigned long long>(s.rx.bytes), double(s.rx.average_bps) / 1e6,
                    static_cast<unsigned long long>(s.rx.lost_packets), s.reason ? to_string(*s.reason) : "-");
    }
    return 0;
}
