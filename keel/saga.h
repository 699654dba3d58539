// keel/saga: distributed transactions as sagas: steps with compensations, a durable log, and
// recovery after a crash. Durable logs: keel/sqlite (SqliteSagaLog), keel/postgres
// (PostgresSagaLog).
#pragma once

#include "keel/saga/coordinator.h"
#include "keel/saga/saga.h"
#include "keel/saga/saga_log.h"
