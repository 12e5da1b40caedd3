// A test's byte budget (PROTOCOL §12.5 [Design]): how many bytes a session may still send and
// receive, enforced where the session counts bytes, so a quota holds without the transport
// asking anyone per packet. Bytes count as the session's summary counts them (TCP: data
// bytes; UDP: whole datagrams with their IP and UDP headers).
//
//   sender:   a chunk or datagram is produced only if it fits what is left; the test ends
//             (quota_exhausted) when the next one does not fit and no refill is pending —
//             a sender never goes past its budget;
//   receiver: the test ends on the bytes that went past what is left — a UDP datagram at most
//             one datagram past; a TCP transport reads no more than session::read_limit()
//             allows: what is left while a refill may still come (so the refill is asked for
//             before anything is overrun), one byte past once none can.
//
// A budget arrives with server_session::admit(); below its refill mark the session asks for
// more (budget_request) and add_budget() tops it up. A dimension without a limit stays so.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

namespace btest {

struct byte_budget {
    std::optional<std::uint64_t> tx;     ///< bytes this side may still send; nullopt: no limit
    std::optional<std::uint64_t> rx;     ///< bytes it may still receive
    std::optional<std::uint64_t> total;  ///< both directions together
    bool limited() const noexcept { return tx || rx || total; }
};

/// How a test whose budget ran out ends: the quota is spent, or no more could be had because
/// the quota store is unreachable.
enum class budget_end : std::uint8_t { quota_exhausted, quota_unavailable };

namespace detail {

class budget_meter {
public:
    static constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

    /// The budget of the test; below `refill_below` bytes left in a limited dimension, a refill
    /// is due (0: never).
    void grant(const byte_budget& b, std::uint64_t refill_below, budget_end end) noexcept {
        left_ = b;
        refill_below_ = refill_below;
        end_ = end;
        pending_ = false;
        asked_ = false;
        tx_final_ = rx_final_ = refill_below == 0;
    }
    /// Adds `more` to each dimension that is limited (a refill); how the test ends if this is
    /// not enough. Clears the pending refill. A side whose room this did not grow gets no
    /// further refills: it spends what it has, then the test ends as `end` says.
    void add(const byte_budget& more, budget_end end) noexcept {
        auto top = [](std::optional<std::uint64_t>& have, const std::optional<std::uint64_t>& m) {
            if (have && m) have = *have > unlimited - *m ? unlimited : *have + *m;
        };
        const std::uint64_t tx_before = tx_room(), rx_before = rx_room();
        top(left_.tx, more.tx);
        top(left_.rx, more.rx);
        top(left_.total, more.total);
        tx_final_ = tx_final_ || tx_room() == tx_before;
        rx_final_ = rx_final_ || rx_room() == rx_before;
        end_ = end;
        pending_ = false;
        asked_ = false;
    }

    bool limited() const noexcept { return left_.limited(); }
    /// Bytes that may still be sent / received.
    std::uint64_t tx_room() const noexcept { return std::min(left_.tx.value_or(unlimited), left_.total.value_or(unlimited)); }
    std::uint64_t rx_room() const noexcept { return std::min(left_.rx.value_or(unlimited), left_.total.value_or(unlimited)); }

    void spend_tx(std::uint64_t n) noexcept {
        take(left_.tx, n);
        take(left_.total, n);
    }
    /// Counts `n` received bytes; true when they went past the budget.
    bool spend_rx(std::uint64_t n) noexcept {
        const bool over = n > rx_room();
        take(left_.rx, n);
        take(left_.total, n);
        return over;
    }

    /// True once per refill when a side that may still be refilled fell below the refill mark.
    bool refill_due() noexcept {
        if (asked_ || !limited()) return false;
        const bool tx_short = !tx_final_ && tx_room() < refill_below_;
        const bool rx_short = !rx_final_ && rx_room() < refill_below_;
        if (!tx_short && !rx_short) return false;
        asked_ = pending_ = true;
        return true;
    }
    /// A refill was asked for and has not come yet: a sender waits for it instead of ending.
    bool refill_pending() const noexcept { return pending_; }
    /// No more receive budget can come (no refill mark, or the last refill did not grow it):
    /// the receiver may read past what is left, and the test ends there.
    bool rx_final() const noexcept { return rx_final_; }
    budget_end end() const noexcept { return end_; }
    const byte_budget& left() const noexcept { return left_; }

private:
    static void take(std::optional<std::uint64_t>& have, std::uint64_t n) noexcept {
        if (have) *have -= std::min(*have, n);
    }

    byte_budget left_{};
    std::uint64_t refill_below_ = 0;
    budget_end end_ = budget_end::quota_exhausted;
    bool pending_ = false;
    bool asked_ = false;
    bool tx_final_ = true;  ///< no refill can grow the send side
    bool rx_final_ = true;  ///< ... the receive side
};

} // namespace detail
} // namespace btest
