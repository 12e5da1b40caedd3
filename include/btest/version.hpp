#pragma once

#define BTEST_VERSION_MAJOR 0
#define BTEST_VERSION_MINOR 1
#define BTEST_VERSION_PATCH 0

namespace btest {
inline constexpr const char* version_string = "0.1.0";
}
