// keel/nats: the NATS adapter. NatsTransport connects EventBus instances in many processes
// through NATS subjects (at most once) or JetStream (durable, at least once). nats.c stays out
// of these headers.
#pragma once

#include "keel/nats/connection_options.h"
#include "keel/nats/nats_transport.h"
