// A client session driven by the fuzzer as a hostile or broken server would drive it: bytes
// on the primary and the extra connections in any chunking, well-formed server messages
// (HELLO, auth words, MD5 challenges, EC-SRP5 answers computed by a real server exchange,
// ports, STATUS, data), datagrams from the server's IP and others, clock steps, timer firings,
// closes, stop(), extra connections as the session asks for them, and randomness. Every call is
// followed by the invariant checks of fuzz/session.hpp; the harness answers the session's
// UDP bind request as a transport would (binding or failing, as the input decides).
#include <algorithm>
#include <cstdio>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include <btest/auth/ec_srp5.hpp>
#include <btest/session/client_session.hpp>

#include "fuzz/client_ops.hpp"
#include "fuzz/session.hpp"

namespace {

using namespace btest;
using namespace fuzz::client_ops;
using fuzz::call;

class harness {
public:
    harness(FuzzedDataProvider& in, FuzzedDataProvider& rng_in)
        : in_(in), rng_(rng_in), cfg_(fuzz::read_client_config(in)), binder_(in), svc_{rng_} {
        if (in.ConsumeBool())
            server_ = endpoint{ip_address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}), 2000};
        s_ = std::make_unique<client_session>(cfg_, svc_, server_, now_);
        check_ = std::make_unique<fuzz::checker<client_session>>(*s_);
        seen_.resize(1);
        after(call::input);
    }

    ~harness() {
        check_->final_check();
        check_.reset();
        s_.reset();
    }

    void run() {
        while (in_.remaining_bytes() > 0) step();
    }

private:
    void step() {
        const auto o = static_cast<op>(in_.ConsumeIntegralInRange<int>(0, static_cast<int>(op::op_last)));
        if (fuzz::tracing())
            std::fprintf(stderr, "t=%lldus op %d\n", static_cast<long long>(now_.time_since_epoch().count() / 1000), static_cast<int>(o));
        call kind = call::input;
        switch (o) {
        case op::advance: now_ += fuzz::read_step(in_); return;
        case op::fire_timer:
        case op::timer_now: {
            if (o == op::fire_timer)
                if (auto d = s_->next_deadline()) now_ = std::max(now_, *d);
            check_->before();
            const auto ec = s_->on_timer(now_);
            FUZZ_CHECK(ec == s_->error());  // (two statements: == does not sequence its operands)
            kind = call::timer;
            break;
        }
        case op::feed_raw:
        case op::feed_canned: {
            const auto k = pick_conn();
            const auto bytes = o == op::feed_raw ? in_.ConsumeBytes<std::uint8_t>(in_.ConsumeIntegralInRange<std::size_t>(0, 300))
                                             : canned_message();
            check_->before();
            fuzz::trace_bytes("feed", bytes);
            const fuzz::exact_copy b(bytes.data(), bytes.size());
            const auto ec = s_->feed(k, now_, b.span());
            FUZZ_CHECK(ec == s_->error());
            break;
        }
        case op::write: {
            const auto k = pick_conn();
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 8);
            check_->before();
            for (int i = 0; i < times; ++i) {
                const bool was_finished = s_->finished();
                const auto n = s_->write_to(k, now_, out);
                check_->wrote(n, out.size(), was_finished);
                for (std::size_t b = 0; b < n && seen_[k].size() < 400; ++b)
                    seen_[k].push_back(std::to_integer<std::uint8_t>(out[b]));
                if (n == 0) break;
            }
            break;
        }
        case op::datagrams: {
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 64);
            check_->before();
            for (int i = 0; i < times; ++i) {
                const bool was_finished = s_->finished();
                const auto d = s_->next_datagram(now_, out);
                check_->datagram(d, out.size(), was_finished);
                if (!d) break;
                FUZZ_CHECK(d->port == s_->udp_port());  // a client always sends to P
                FUZZ_CHECK(binder_.bound() && d->stream < binder_.count());
            }
            break;
        }
        case op::feed_datagram: {
            endpoint src{in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? ip_address::v4(198, 51, 100, 7) : server_.address,
                         in_.ConsumeBool() ? s_->udp_port() : in_.ConsumeIntegral<std::uint16_t>()};
            std::vector<std::uint8_t> payload;
            if (in_.ConsumeBool()) {
                payload.assign(in_.ConsumeIntegralInRange<std::size_t>(0, 1600), 0);
                const std::uint32_t seq = in_.ConsumeBool() ? ++udp_seq_ : in_.ConsumeIntegral<std::uint32_t>();
                for (std::size_t i = 0; i < 4 && i < payload.size(); ++i)
                    payload[i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
            } else {
                payload = in_.ConsumeBytes<std::uint8_t>(in_.ConsumeIntegralInRange<std::size_t>(0, 64));
            }
            check_->before();
            const fuzz::exact_copy p(payload.data(), payload.size());
            s_->feed_datagram(now_, src, p.span());
            break;
        }
        case op::close: {
            const auto k = pick_conn();
            std::error_code ec;
            switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
            case 0: break;
            case 1: ec = std::make_error_code(std::errc::connection_reset); break;
            default: ec = make_error_code(errc::transport_error); break;
            }
            check_->before();
            s_->on_connection_closed(k, now_, ec);
            break;
        }
        case op::stop:
            check_->before();
            s_->stop(now_);
            break;
        case op::add_connection:
        case op::connection_failed:
            // Only what a transport does: one call per connection the session asked for.
            if (extra_used_ >= extra_asked_) return;
            ++extra_used_;
            check_->before();
            if (o == op::add_connection) {
                const auto k = s_->add_connection(now_);
                FUZZ_CHECK(k == seen_.size());
                seen_.emplace_back();
            } else {
                s_->connection_failed(now_);
            }
            break;
        case op::cpu:
            s_->set_local_cpu(in_.ConsumeIntegral<std::uint8_t>());
            kind = call::none;
            break;
        }
        after(kind);
    }

    void after(call kind) {
        check_->after(now_, kind, [&](const event& ev) {
            if (fuzz::tracing()) std::fprintf(stderr, "  event %zu\n", ev.index());
            if (const auto* oc = std::get_if<open_connections>(&ev)) {
                FUZZ_CHECK(oc->count >= 1 && oc->count <= 254);
                FUZZ_CHECK(oc->token == s_->token() && oc->token != 0);
                FUZZ_CHECK(extra_asked_ == 0);  // asked once per test
                extra_asked_ += oc->count;
            }
        }, [&](const request& rq) {
            const auto* b = std::get_if<udp_bind_request>(&rq);
            FUZZ_CHECK(b != nullptr);  // a client asks for nothing else
            FUZZ_CHECK(cfg_.proto == protocol::udp);
            FUZZ_CHECK(b->server_port == s_->udp_port());
            s_->udp_bound(now_, binder_.bind(*b));
        });
        FUZZ_CHECK(s_->connection_count() == seen_.size());
    }

    std::uint32_t pick_conn() {
        return in_.ConsumeIntegralInRange<std::uint32_t>(0, static_cast<std::uint32_t>(seen_.size() - 1));
    }

    std::vector<std::uint8_t> canned_message() {
        std::vector<std::uint8_t> out;
        auto put = [&](std::span<const std::byte> b) {
            for (auto x : b) out.push_back(std::to_integer<std::uint8_t>(x));
        };
        switch (static_cast<canned>(in_.ConsumeIntegralInRange<int>(0, static_cast<int>(canned::canned_last)))) {
        case canned::hello: put(wire::hello); break;
        case canned::auth_word:
            switch (in_.ConsumeIntegralInRange<int>(0, 4)) {
            case 0: put(wire::ok_word); break;
            case 1: put(wire::encode_auth_word({wire::auth_word_kind::ok, in_.ConsumeIntegral<std::uint16_t>()})); break;
            case 2: {
                put(wire::encode_auth_word({wire::auth_word_kind::md5, 0}));
                auto c = in_.ConsumeBytes<std::uint8_t>(16);
                c.resize(16);
                out.insert(out.end(), c.begin(), c.end());
                break;
            }
            case 3: put(wire::encode_auth_word({wire::auth_word_kind::ec_srp5, 0})); break;
            default: put(wire::failed_word); break;
            }
            break;
        case canned::udp_port: put(wire::encode_udp_port(in_.ConsumeIntegral<std::uint16_t>())); break;
        case canned::status: {
            wire::status s;
            s.cpu_load = in_.ConsumeIntegralInRange<std::uint8_t>(0, 100);
            s.seq = in_.ConsumeIntegral<std::uint32_t>();
            s.bytes = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<std::uint32_t>(0, 2'000'000) : in_.ConsumeIntegral<std::uint32_t>();
            put(wire::encode_status(s));
            break;
        }
        case canned::zeros: out.assign(in_.ConsumeIntegralInRange<std::size_t>(0, 70'000), 0); break;
        case canned::ec_msg2: {
            // The client wrote COMMAND (16 bytes), then MSG1.
            const auto& seen = seen_[0];
            if (seen.size() > 16 && seen.size() >= 17u + seen[16]) {
                std::vector<std::byte> payload(seen[16]);
                for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(seen[17 + i]);
                if (!msg2_.empty()) {
                    // The client sends one MSG1 per session: a second request replays the
                    // answer (as a confused server would) instead of paying for the ladders again.
                    out = msg2_;
                } else if (auto m1 = wire::decode_ecsrp5_msg1(payload)) {
                    const auto& store = fuzz::credentials();
                    auto rec = store.ecsrp5_prepared(m1->username);
                    if (!rec) rec = *auth::ec_srp5::prepare(auth::ec_srp5::fake_record(m1->username, secret_));
                    server_ex_ = std::make_unique<auth::ec_srp5::server_exchange>(rng_);
                    if (auto m2 = server_ex_->on_msg1(*m1, *rec)) put(wire::encode_ecsrp5_msg2(*m2));
                    msg2_ = out;
                }
            }
            if (out.empty()) {
                out.push_back(0x31);
                auto junk = in_.ConsumeBytes<std::uint8_t>(49);
                junk.resize(49);
                out.insert(out.end(), junk.begin(), junk.end());
            }
            break;
        }
        case canned::ec_msg4: {
            const auto& seen = seen_[0];
            if (server_ex_ && seen.size() > 16 && seen.size() >= 17u + seen[16] + 33u) {
                const std::size_t at = 17u + seen[16];
                if (seen[at] == 0x20) {
                    wire::ecsrp5_proof p{};
                    for (std::size_t i = 0; i < 32; ++i) p[i] = std::byte(seen[at + 1 + i]);
                    if (auto m4 = server_ex_->on_msg3(p)) {
                        put(wire::encode_ecsrp5_proof(*m4));
                        put(wire::ok_word);
                    }
                }
                server_ex_.reset();
            }
            if (out.empty()) {
                out.push_back(0x20);
                auto junk = in_.ConsumeBytes<std::uint8_t>(32);
                junk.resize(32);
                out.insert(out.end(), junk.begin(), junk.end());
            }
            break;
        }
        case canned::join_reply: put(wire::encode_auth_word({wire::auth_word_kind::ok, s_->token()})); break;
        case canned::frame: {
            const auto len = in_.ConsumeIntegral<std::uint8_t>();
            out.push_back(len);
            const auto body = in_.ConsumeBytes<std::uint8_t>(len);
            out.insert(out.end(), body.begin(), body.end());
            break;
        }
        }
        return out;
    }

    FuzzedDataProvider& in_;
    fuzz::provider_entropy rng_;
    client_config cfg_;
    fuzz::checking_binder binder_;
    client_services svc_;
    endpoint server_{ip_address::v4(192, 0, 2, 1), 2000};
    std::unique_ptr<client_session> s_;
    std::unique_ptr<fuzz::checker<client_session>> check_;
    std::unique_ptr<auth::ec_srp5::server_exchange> server_ex_;
    std::vector<std::uint8_t> msg2_;  ///< the answer to the client's MSG1, once computed
    std::array<std::byte, 32> secret_{};
    std::vector<std::vector<std::uint8_t>> seen_;  ///< first bytes the client wrote, per connection
    fuzz::out_buffer out_;
    time_point now_{};
    std::uint32_t udp_seq_ = 0;
    std::uint32_t extra_asked_ = 0;
    std::uint32_t extra_used_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto pool = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, entropy_pool_max));
    FuzzedDataProvider rng_in(pool.data(), pool.size());
    harness h(in, rng_in);
    h.run();
    return 0;
}
