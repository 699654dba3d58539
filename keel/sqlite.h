// keel/sqlite: the embedded SQLite engine under keel's stores (sqlite3 stays out of these
// headers).
#pragma once

#include "keel/sqlite/database.h"
#include "keel/sqlite/saga_log.h"
#include "keel/sqlite/event_store.h"
