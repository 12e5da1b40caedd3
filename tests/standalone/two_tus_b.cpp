#include <btest/btest.hpp>
int btest_two_tus_b() { return btest::make_error_code(btest::errc::truncated) ? 42 : 0; }
