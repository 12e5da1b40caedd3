// Helper for the crash test (service_test.cpp): a "server" that opens one test through the
// service and keeps recording usage, printing each cumulative count once its flush has
// committed ("flushed N"), until it is killed with SIGKILL.
//   btest_pro_crash_child DB_URL STEP_BYTES
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "btest/pro/cidr.hpp"
#include "btest/pro/service.hpp"

using namespace btest::pro;

int main(int argc, char** argv) {
    if (argc != 3) return 1;
    const std::uint64_t step = std::strtoull(argv[2], nullptr, 10);
    service_config cfg;
    cfg.flush_interval = std::chrono::milliseconds{20};
    cfg.ledger.holder = "crash-child";
    service svc(open_storage(argv[1]), cfg);

    test_request req;
    req.peer_ip = *parse_ip("192.0.2.200");
    req.peer_port = 5555;
    std::promise<async_result<open_result>> opened;
    svc.open_test(req, [&](async_result<open_result> r) { opened.set_value(std::move(r)); });
    auto r = opened.get_future().get();
    if (!r || !r.value->admitted) return 2;
    std::printf("session %lld\n", static_cast<long long>(r.value->session_id));
    std::fflush(stdout);

    for (std::uint64_t n = step;; n += step) {
        svc.record_usage(r.value->session_id, {n / 2, n});
        std::promise<async_result<std::size_t>> done;
        svc.flush([&](async_result<std::size_t> f) { done.set_value(std::move(f)); });
        if (!done.get_future().get()) return 3;
        std::printf("flushed %llu\n", static_cast<unsigned long long>(n));
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
}
