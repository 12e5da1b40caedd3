// Each transport over loopback beyond the matrix (client and server of the same transport):
// rate accuracy and CPU samples, many tests at once with port reuse, multi-connection TCP and
// multi-stream UDP, a server that stops mid-test, nobody listening, max sessions, a wrong
// password, the per-IP limits.
#include "behaviour.hpp"

using btest::protocol;

#define BTEST_BEHAVIOUR(T, SLOT)                                                                                     \
    TEST_CASE("transport: " #T " rate -b 100M over TCP holds within 2 % over 5 s", "[rate][" #T "]") {              \
        behaviour::rate_holds<loopback::T##_transport>(protocol::tcp, SLOT);                                         \
    }                                                                                                                \
    TEST_CASE("transport: " #T " rate -b 100M over UDP holds within 2 % over 5 s", "[rate][" #T "]") {              \
        behaviour::rate_holds<loopback::T##_transport>(protocol::udp, SLOT + 1);                                     \
    }                                                                                                                \
    TEST_CASE("transport: " #T " 20 concurrent tests (TCP and UDP mixed) then a second wave reusing the UDP ports",  \
              "[concurrency][" #T "]") {                                                                             \
        behaviour::concurrency<loopback::T##_transport>(SLOT + 2);                                                   \
    }                                                                                                                \
    TEST_CASE("transport: " #T " TCP with 8 connections and UDP with 4 streams in both directions", "[multi][" #T "]") { \
        behaviour::multi<loopback::T##_transport>(SLOT + 3, true, true);                                             \
    }                                                                                                                \
    TEST_CASE("transport: " #T " a server stopping mid-test ends the client test as peer_closed and frees everything", \
              "[stop][" #T "]") {                                                                                    \
        behaviour::server_stops<loopback::T##_transport>(SLOT + 4);                                                  \
    }                                                                                                                \
    TEST_CASE("transport: " #T " nobody listening is a connect error reported once", "[connect][" #T "]") {         \
        behaviour::nobody_listening<loopback::T##_transport>(SLOT + 5);                                              \
    }                                                                                                                \
    TEST_CASE("transport: " #T " max sessions refuses a second test but lets a pending test's joins in",            \
              "[limits][" #T "]") {                                                                                  \
        behaviour::max_sessions<loopback::T##_transport>(SLOT + 6);                                                  \
    }                                                                                                                \
    TEST_CASE("transport: " #T " a wrong password (MD5, EC-SRP5) ends the client with auth_failed", "[auth][" #T "]") { \
        behaviour::wrong_password<loopback::T##_transport>(SLOT + 7);                                                \
    }                                                                                                                \
    TEST_CASE("transport: " #T " per-IP connection limit and failed-login throttle refuse before HELLO",             \
              "[limits][" #T "]") {                                                                                  \
        behaviour::per_ip_limits<loopback::T##_transport>(SLOT + 8);                                                 \
    }

BTEST_BEHAVIOUR(asio, 40)    // slots 40–48
BTEST_BEHAVIOUR(posix, 100)  // slots 100–108
