// keel/postgres: the PostgreSQL engine under keel's stores (libpqxx stays out of these headers).
#pragma once

#include "keel/postgres/connection.h"
#include "keel/postgres/saga_log.h"
#include "keel/postgres/event_store.h"
