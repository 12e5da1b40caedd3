#include "btest/pro/quota.hpp"

namespace btest::pro {

using namespace std::chrono;

sys_ms period_start(window w, sys_ms t) noexcept {
    const sys_days day = floor<days>(t);
    switch (w) {
    case window::daily: return day;
    case window::weekly: {
        // iso_encoding: Monday = 1 … Sunday = 7.
        const unsigned back = weekday{day}.iso_encoding() - 1;
        return day - days{back};
    }
    case window::monthly: {
        const year_month_day ymd{day};
        return sys_days{ymd.year() / ymd.month() / 1};
    }
    }
    return day;
}

sys_ms period_end(window w, sys_ms t) noexcept {
    const sys_days start = floor<days>(period_start(w, t));
    switch (w) {
    case window::daily: return start + days{1};
    case window::weekly: return start + days{7};
    case window::monthly: {
        const year_month_day ymd{start};
        return sys_days{(ymd.year() / ymd.month() + months{1}) / 1};
    }
    }
    return start + days{1};
}

} // namespace btest::pro
