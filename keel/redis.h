// keel/redis: adapters that keep keel's pattern state in Redis (hiredis stays out of these
// headers).
#pragma once

#include "keel/redis/codec.h"
#include "keel/redis/connection_options.h"
#include "keel/redis/rate_limit_store.h"
#include "keel/redis/redis_cache.h"
#include "keel/redis/redis_cache_options.h"
#include "keel/redis/two_tier_cache.h"
