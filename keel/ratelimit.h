// keel/ratelimit: six rate-limiting algorithms behind one interface, keyed limiters, a Store
// port for shared state (Redis in keel/redis), and HTTP header rendering.
#pragma once

#include "keel/ratelimit/fixed_window.h"
#include "keel/ratelimit/gcra.h"
#include "keel/ratelimit/http_headers.h"
#include "keel/ratelimit/keyed_rate_limiter.h"
#include "keel/ratelimit/leaky_bucket.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/rate_limiter.h"
#include "keel/ratelimit/reservation.h"
#include "keel/ratelimit/sliding_window_counter.h"
#include "keel/ratelimit/sliding_window_log.h"
#include "keel/ratelimit/store.h"
#include "keel/ratelimit/token_bucket.h"
