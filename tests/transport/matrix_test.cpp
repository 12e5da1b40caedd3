// Every combination {TCP, UDP} × {transmit, receive, both} × {no auth, MD5, EC-SRP5} × {IPv4,
// IPv6} over loopback, for each transport (client and server of the same transport), 2 s each
// at 100 Mbit/s per direction: both sides' byte counts agree within what can be in flight, and
// the STATUS values each side reported match what it counted (and what the peer received).
// The cross-transport tests (cross_test.cpp) run the same checks between an Asio and a POSIX
// peer.
#include <catch2/catch.hpp>

#include "matrix.hpp"

// The names spell the matrix so that `ctest -N` lists it: "transport: matrix posix tcp both md5 ipv4".
#define BTEST_MATRIX_CASE(T, P, D, A, F, SLOT)                                                                      \
    TEST_CASE("transport: matrix " #T " " #P " " #D " " #A " " #F, "[matrix][" #T "]") {                            \
        matrix::run<loopback::T##_transport, loopback::T##_transport>(                                              \
            {btest::protocol::P, btest::direction::D, btest::auth_method::A, std::string_view(#F) == "ipv6", SLOT}); \
    }
#define BTEST_MATRIX_AUTH(T, P, D, A, SLOT) \
    BTEST_MATRIX_CASE(T, P, D, A, ipv4, SLOT) \
    BTEST_MATRIX_CASE(T, P, D, A, ipv6, SLOT + 1)
#define BTEST_MATRIX_DIR(T, P, D, SLOT)         \
    BTEST_MATRIX_AUTH(T, P, D, none, SLOT)      \
    BTEST_MATRIX_AUTH(T, P, D, md5, SLOT + 2)   \
    BTEST_MATRIX_AUTH(T, P, D, ec_srp5, SLOT + 4)
#define BTEST_MATRIX_PROTO(T, P, SLOT)          \
    BTEST_MATRIX_DIR(T, P, transmit, SLOT)      \
    BTEST_MATRIX_DIR(T, P, receive, SLOT + 6)   \
    BTEST_MATRIX_DIR(T, P, both, SLOT + 12)
#define BTEST_MATRIX(T, SLOT)          \
    BTEST_MATRIX_PROTO(T, tcp, SLOT)   \
    BTEST_MATRIX_PROTO(T, udp, SLOT + 18)

BTEST_MATRIX(asio, 0)    // slots 0–35
BTEST_MATRIX(posix, 64)  // slots 64–99
