# Runs BINARY --listen LISTEN --db <a path that is never created> and passes only when it exits
# with status 2 (a usage error) and says what --listen must be.
execute_process(
  COMMAND ${BINARY} --listen ${LISTEN} --db /nonexistent/keel-notifier-test.db
  RESULT_VARIABLE status
  ERROR_VARIABLE err
  TIMEOUT 5)
if(NOT status EQUAL 2)
  message(FATAL_ERROR "--listen ${LISTEN}: expected exit status 2, got '${status}' (${err})")
endif()
if(NOT err MATCHES "--listen must be HOST:PORT")
  message(FATAL_ERROR "--listen ${LISTEN}: the error does not name --listen: ${err}")
endif()
