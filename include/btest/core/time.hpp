// Time in the kit: only the types. The kit never reads a clock; every function that needs the
// time takes it as an argument (DESIGN.md). Transports pass steady_clock::now(); the memory
// transport passes virtual time.
#pragma once

#include <chrono>

namespace btest {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = std::chrono::nanoseconds;

using namespace std::chrono_literals;

} // namespace btest
