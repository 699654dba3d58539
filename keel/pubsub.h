// keel/pubsub: an event bus with wildcard topics, isolation and dead letters.
#pragma once

#include "keel/pubsub/event_bus.h"
#include "keel/pubsub/topic.h"
#include "keel/pubsub/transport.h"
