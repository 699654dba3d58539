// keel/cache: concurrent LRU and W-TinyLFU caches with TTL, and the cache-aside pattern.
#pragma once

#include "keel/cache/cache.h"
#include "keel/cache/cache_aside.h"
#include "keel/cache/lru_cache.h"
#include "keel/cache/tiny_lfu_cache.h"
