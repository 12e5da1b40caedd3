// btestkit umbrella header: the whole sans-IO kit. Never pulls in Asio or any transport.
#pragma once

#include "btest/version.hpp"

#include "btest/core/address.hpp"
#include "btest/core/bytes.hpp"
#include "btest/core/entropy.hpp"
#include "btest/core/error.hpp"
#include "btest/core/result.hpp"
#include "btest/core/time.hpp"

#include "btest/wire/auth_word.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/frame_buffer.hpp"
#include "btest/wire/hello.hpp"
#include "btest/wire/join.hpp"
#include "btest/wire/md5.hpp"
#include "btest/wire/payload.hpp"
#include "btest/wire/status.hpp"
#include "btest/wire/udp_port.hpp"

#include "btest/auth/botan_entropy.hpp"
#include "btest/auth/credentials.hpp"
#include "btest/auth/ec_srp5.hpp"
#include "btest/auth/md5.hpp"

#include "btest/pacing/adaptation.hpp"
#include "btest/pacing/pacer.hpp"

#include "btest/stats/jitter.hpp"
#include "btest/stats/rate_meter.hpp"
#include "btest/stats/udp_receiver.hpp"

#include "btest/session/budget.hpp"
#include "btest/session/client_session.hpp"
#include "btest/session/config.hpp"
#include "btest/session/event.hpp"
#include "btest/session/params.hpp"
#include "btest/session/request.hpp"
#include "btest/session/server_session.hpp"
#include "btest/session/session.hpp"
#include "btest/session/stats.hpp"
#include "btest/session/tcp_scanner.hpp"

#include "btest/server/address_filter.hpp"
#include "btest/server/admission.hpp"
#include "btest/server/front.hpp"
#include "btest/server/join_registry.hpp"
#include "btest/server/limits.hpp"
#include "btest/server/policy.hpp"
#include "btest/server/port_blocks.hpp"
