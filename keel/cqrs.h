// keel/cqrs: CQRS with event sourcing — the EventStore port and its in-memory implementation,
// aggregates and the CommandBus (write side), projections (read side), the outbox to
// keel::pubsub, upcasters for old event shapes, and the poller that brings other processes'
// events. The SQLite and PostgreSQL stores are in keel/sqlite and keel/postgres.
#pragma once

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/command_bus.h"
#include "keel/cqrs/event_poller.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/outbox.h"
#include "keel/cqrs/projection.h"
#include "keel/cqrs/upcasting.h"
