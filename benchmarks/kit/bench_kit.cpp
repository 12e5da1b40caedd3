// Kit micro-benchmarks: codecs, the TCP stream scanner, the per-datagram helpers, the pacer,
// statistics, the MD5 handshake, the sessions' data paths and a whole memory-world test. No
// sockets; results are items or bytes per second. Compare runs side by side, not to constants.
#include <benchmark/benchmark.h>

#include <vector>

#include <btest/btest.hpp>
#include <btest/transport/memory/world.hpp>

#include "test/pair.hpp"

using namespace btest;
using namespace std::chrono_literals;

namespace {

const std::array<std::byte, 16> command_bytes = wire::encode_command({protocol::udp, direction::both, false, 20, 1500, 0, 0, 0});
const std::array<std::byte, 12> status_bytes = wire::encode_status({42, 7, 123456789});

void bm_decode_command(benchmark::State& st) {
    for (auto _ : st) {
        auto c = wire::decode_command(command_bytes);
        benchmark::DoNotOptimize(c);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_decode_command);

void bm_encode_command(benchmark::State& st) {
    wire::command c{protocol::tcp, direction::both, true, 20, 32768, 0, 100'000'000, 0};
    for (auto _ : st) {
        auto b = wire::encode_command(c);
        benchmark::DoNotOptimize(b);
        c.local_tx_speed++;
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_encode_command);

void bm_decode_status(benchmark::State& st) {
    for (auto _ : st) {
        auto s = wire::decode_status(status_bytes);
        benchmark::DoNotOptimize(s);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_decode_status);

void bm_encode_status(benchmark::State& st) {
    wire::status s{42, 1, 0};
    for (auto _ : st) {
        auto b = wire::encode_status(s);
        benchmark::DoNotOptimize(b);
        s.seq++;
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_encode_status);

void bm_decode_auth_words(benchmark::State& st) {
    const std::array<std::array<std::byte, 4>, 4> words{wire::ok_word, wire::failed_word,
                                                        wire::encode_auth_word({wire::auth_word_kind::md5, 0}),
                                                        wire::encode_auth_word({wire::auth_word_kind::ok, 0x9c4e})};
    std::size_t i = 0;
    for (auto _ : st) {
        auto w = wire::decode_auth_word(words[i++ & 3], wire::word_position::first);
        benchmark::DoNotOptimize(w);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_decode_auth_words);

void bm_ecsrp5_frames(benchmark::State& st) {
    std::array<std::byte, 256> frame{};
    const auto n = wire::encode_ecsrp5_msg1("admin", {}, frame);
    for (auto _ : st) {
        auto f = wire::decode_ecsrp5_frame(std::span(frame).first(n));
        auto m = wire::decode_ecsrp5_msg1(f->payload);
        benchmark::DoNotOptimize(m);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_ecsrp5_frames);

// The scanner over a receive stream of 32 KiB zero chunks with a STATUS between every chunk,
// fed in reads of range(0) bytes.
void bm_tcp_scanner(benchmark::State& st) {
    std::vector<std::byte> stream;
    for (int i = 0; i < 64; ++i) {
        stream.insert(stream.end(), 32768, std::byte{0});
        stream.insert(stream.end(), status_bytes.begin(), status_bytes.end());
    }
    const auto read = static_cast<std::size_t>(st.range(0));
    std::int64_t bytes = 0;
    for (auto _ : st) {
        tcp_scanner s;
        std::span<const std::byte> all(stream);
        while (!all.empty()) {
            auto chunk = all.first(std::min(read, all.size()));
            all = all.subspan(chunk.size());
            while (!chunk.empty()) {
                auto r = s.step(chunk);
                chunk = chunk.subspan(r.consumed);
                benchmark::DoNotOptimize(r);
            }
        }
        bytes += static_cast<std::int64_t>(stream.size());
    }
    st.SetBytesProcessed(bytes);
}
BENCHMARK(bm_tcp_scanner)->Arg(1460)->Arg(65536)->Arg(262144);

void bm_fill_udp_packet(benchmark::State& st) {
    seeded_entropy rng(1);
    std::vector<std::byte> ring(wire::payload_ring_size);
    if (st.range(1)) wire::make_payload_ring(rng, ring);
    const wire::payload_fill fill{st.range(1) ? std::span<const std::byte>(ring) : std::span<const std::byte>{}};
    std::vector<std::byte> dg(static_cast<std::size_t>(st.range(0)));
    std::uint32_t seq = 0;
    for (auto _ : st) {
        wire::fill_udp_packet(++seq, dg, fill);
        benchmark::DoNotOptimize(dg.data());
    }
    st.SetItemsProcessed(st.iterations());
    st.SetBytesProcessed(st.iterations() * st.range(0));
}
BENCHMARK(bm_fill_udp_packet)->Args({1472, 0})->Args({1472, 1})->Args({36, 0})->Args({63972, 1});

void bm_account_udp_packet(benchmark::State& st) {
    stats::udp_receiver r(static_cast<std::size_t>(st.range(0)) + 1);
    std::vector<std::byte> dg(1472);
    std::uint32_t seq = 0;
    time_point t{};
    for (auto _ : st) {
        ++seq;
        bytes::store_be32(dg.data(), seq / static_cast<std::uint32_t>(st.range(0)) + 1);
        t += 12us;
        r.on_datagram(t, static_cast<std::uint16_t>(2257 + seq % st.range(0)), dg, 28);
    }
    benchmark::DoNotOptimize(r.packets());
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_account_udp_packet)->Arg(1)->Arg(20);

void bm_pacer_take(benchmark::State& st) {
    pacing::pacer p;
    time_point t{};
    p.set_rate(1'000'000'000, 1500, t);
    std::uint64_t n = 0;
    for (auto _ : st) {
        t += 12us;
        n += p.take(t);
        benchmark::DoNotOptimize(p.next_due());
    }
    benchmark::DoNotOptimize(n);
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_pacer_take);

void bm_rate_meter(benchmark::State& st) {
    stats::rate_meter m;
    std::uint64_t b = 0;
    for (auto _ : st) {
        m.push_second(b += 125'000'000);
        benchmark::DoNotOptimize(m.average10_bps());
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_rate_meter);

void bm_md5_response(benchmark::State& st) {
    const std::array<std::byte, 16> challenge{};
    for (auto _ : st) {
        auto r = auth::md5_response("password", challenge);
        benchmark::DoNotOptimize(r);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_md5_response);

// A full MD5 handshake through both sessions, no I/O.
void bm_md5_handshake(benchmark::State& st) {
    client_config c;
    c.user = "user";
    c.password = "pass";
    server_config s;
    s.auth = auth_method::md5;
    for (auto _ : st) {
        st.PauseTiming();  // the store derives an EC-SRP5 record per user: not part of MD5
        test::session_pair p(c, s);
        st.ResumeTiming();
        if (!p.start()) st.SkipWithError("handshake failed");
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_md5_handshake);

// The server's TCP data path: write_to into a buffer of range(0) bytes, unpaced.
void bm_tcp_write_to(benchmark::State& st) {
    client_config c;
    c.dir = direction::receive;
    test::session_pair p(c);
    if (!p.start()) st.SkipWithError("no start");
    std::vector<std::byte> out(static_cast<std::size_t>(st.range(0)));
    std::int64_t bytes = 0;
    for (auto _ : st) {
        p.now += 10us;
        bytes += static_cast<std::int64_t>(p.server->write_to(0, p.now, out));
    }
    st.SetBytesProcessed(bytes);
}
BENCHMARK(bm_tcp_write_to)->RangeMultiplier(4)->Range(1 << 16, 1 << 20);

// The UDP data path: next_datagram on one side and feed_datagram on the other, 1500 bytes.
void bm_udp_next_and_feed(benchmark::State& st) {
    client_config c;
    c.proto = protocol::udp;
    c.dir = direction::receive;
    test::session_pair p(c);
    if (!p.start()) st.SkipWithError("no start");
    std::vector<std::byte> dg(max_datagram_payload);
    for (auto _ : st) {
        auto d = p.server->next_datagram(p.now, dg);
        p.client->feed_datagram(p.now, p.server_ep, std::span(dg).first(d->size));
    }
    st.SetItemsProcessed(st.iterations());
    st.SetBytesProcessed(st.iterations() * 1500);
}
BENCHMARK(bm_udp_next_and_feed);

// A whole 10-second test in the memory world (virtual time), per test.
void bm_memory_world_10s(benchmark::State& st) {
    client_config c;
    c.proto = st.range(0) ? protocol::udp : protocol::tcp;
    c.dir = direction::both;
    c.remote_tx_speed = c.local_tx_speed = 100'000'000;
    c.test_duration = 10s;
    memory::link_model link;
    link.delay = 1ms;
    for (auto _ : st) {
        memory::world w{c, {}, link};
        w.run_until_finished(20s);
        benchmark::DoNotOptimize(w.client().summary().rx.bytes);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_memory_world_10s)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

} // namespace
