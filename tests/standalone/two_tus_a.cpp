#include <btest/btest.hpp>
int btest_two_tus_b();
int main() { return btest_two_tus_b() == 42 ? 0 : 1; }
