// keel/resilience: circuit breaker (with a registry), retry and bulkhead, and their composition.
#pragma once

#include "keel/resilience/bulkhead.h"
#include "keel/resilience/circuit_breaker.h"
#include "keel/resilience/circuit_breaker_registry.h"
#include "keel/resilience/decorate.h"
#include "keel/resilience/retry.h"
