// keel/http: a small HTTP toolkit on Boost.Beast for keel's services: server (limits, timeouts,
// graceful shutdown, /healthz, /metrics), router, JSON responses, and a blocking client.
#pragma once

#include "keel/http/client.h"
#include "keel/http/message.h"
#include "keel/http/router.h"
#include "keel/http/server.h"
