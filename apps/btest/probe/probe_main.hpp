// `btest probe`: entry point (dispatched from the btest binary's main) and the HTTP routes.
#pragma once

#include "common/http_server.hpp"

namespace btest_probe {

class service;

/// argv[0] is "probe". Returns the process exit status.
int probe_main(int argc, char** argv);

/// GET /probe, /metrics and / on `http`, answered by `svc` (both must outlive the server).
void install_routes(btest_app::http::server& http, service& svc);

} // namespace btest_probe
