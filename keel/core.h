// keel/core: clock, scheduler, subscriptions, metrics, backoff and encodings.
#pragma once

#include "keel/core/backoff.h"
#include "keel/core/call_gate.h"
#include "keel/core/clock.h"
#include "keel/core/encoding.h"
#include "keel/core/errors.h"
#include "keel/core/listener_set.h"
#include "keel/core/metrics.h"
#include "keel/core/scheduler.h"
#include "keel/core/subscription.h"
