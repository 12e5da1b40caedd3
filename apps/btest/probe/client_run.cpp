#include "probe/client_run.hpp"

#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/transport/asio/client.hpp"

namespace btest_probe {

namespace {

class observer final : public btest::asio::client_observer {
public:
    void on_event(const btest::client_session& s, const btest::event& ev) override {
        if (std::holds_alternative<btest::test_started>(ev)) started = true;
        (void)s;
    }
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string& detail) override {
        finished = true;
        if (s) summary = s->summary();
        connect_error = ec;
        connect_detail = detail;
    }
    bool started = false;
    bool finished = false;
    std::optional<btest::test_summary> summary;
    std::error_code connect_error;
    std::string connect_detail;
};

} // namespace

client_run_result run_client_test(const client_run_options& options, btest::entropy& rng) {
    boost::asio::io_context ioc(1);
    btest::asio::client_options co;
    co.host = options.address.to_string();   // numeric: the client's resolver does no lookup
    co.port = options.port;
    co.family = options.address.is_v4() ? btest::asio::family_preference::v4 : btest::asio::family_preference::v6;
    co.session = options.session;
    co.connect_timeout = options.connect_timeout;

    observer obs;
    btest::asio::client cli(ioc, co, rng, obs);
    client_run_result r;
    boost::asio::steady_timer deadline(ioc, options.deadline);
    deadline.async_wait([&](const boost::system::error_code& ec) {
        if (ec || cli.finished()) return;
        r.deadline_hit = true;
        cli.stop();
    });
    // A stopped test still says goodbye (the session lingers to flush its last frames); past
    // the grace period the run is abandoned with the session's counters as they are.
    bool abandoned = false;
    boost::asio::steady_timer grace(ioc, options.deadline + stop_grace);
    grace.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) abandoned = true;
    });
    boost::asio::steady_timer poll_cancel(ioc);
    std::function<void()> watch = [&] {
        poll_cancel.expires_after(std::chrono::milliseconds(100));
        poll_cancel.async_wait([&](const boost::system::error_code& ec) {
            if (ec || cli.finished()) return;
            if (options.cancel->load()) {
                cli.stop();
                grace.expires_after(stop_grace);
                grace.async_wait([&](const boost::system::error_code& e) {
                    if (!e) abandoned = true;
                });
                return;
            }
            watch();
        });
    };
    if (options.cancel) watch();
    cli.start();
    while (!obs.finished && !abandoned && ioc.run_one() > 0) {
    }
    deadline.cancel();
    grace.cancel();
    poll_cancel.cancel();

    r.summary = obs.summary;
    if (!r.summary && cli.session()) r.summary = cli.session()->summary();
    r.connected = cli.session() != nullptr;
    r.control_bytes_received = cli.control_bytes_received();
    if (!r.connected) {
        r.connect_error = obs.connect_error;
        r.connect_detail = obs.connect_detail;
    }
    if (const auto* s = cli.session()) {
        switch (s->auth_asked()) {
        case btest::wire::auth_word_kind::md5: r.auth = auth_kind::md5; break;
        case btest::wire::auth_word_kind::ec_srp5: r.auth = auth_kind::ecsrp5; break;
        default:
            // auth_asked() starts as "ok"; it says "none" only once the server said so, which
            // the test starting proves.
            if (obs.started) r.auth = auth_kind::none;
            break;
        }
    }
    return r;
}

} // namespace btest_probe
