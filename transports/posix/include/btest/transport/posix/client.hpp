// A btest client over plain POSIX sockets: the shared client (btest/transport/client.hpp) on an
// epoll event_loop. Resolves and connects, runs one client_session, opens the extra
// connections of a multi-connection TCP test and binds the UDP sockets when the session asks.
//
// Thread safety: everything runs on the loop's thread; call start()/stop() from it (or before
// the loop runs).
#pragma once

#include "btest/transport/client.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/posix/event_loop.hpp"
#include "btest/transport/posix/reactor.hpp"
#include "btest/transport/socket.hpp"

namespace btest::posix {

class client : private detail::with_reactor, public transport::basic_client<reactor> {
public:
    /// `rng`: a CSPRNG (EC-SRP5). All references must outlive the client.
    client(event_loop& loop, client_options opt, entropy& rng, client_observer& observer)
        : with_reactor(loop), basic_client(reactor_, std::move(opt), rng, observer) {}
};

} // namespace btest::posix
