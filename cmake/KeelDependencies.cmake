# Finds keel's third-party dependencies (all Debian packages; scripts/bootstrap installs them).
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
# Boost.JSON (keel::pubsub's publish_json, and the services' bodies). Debian 12: Boost 1.81.
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS json url)

if(KEEL_WITH_REDIS OR KEEL_WITH_POSTGRES OR KEEL_WITH_NATS)
  find_package(PkgConfig REQUIRED)
endif()
if(KEEL_WITH_REDIS)
  pkg_check_modules(hiredis REQUIRED IMPORTED_TARGET hiredis)
endif()
if(KEEL_WITH_POSTGRES)
  pkg_check_modules(libpqxx REQUIRED IMPORTED_TARGET libpqxx)
endif()
if(KEEL_WITH_SQLITE)
  find_package(SQLite3 REQUIRED)
endif()
if(KEEL_WITH_NATS)
  # Debian's cnats CMake config names libnats_static.a, which the package does not ship:
  # use pkg-config and give the target the name nats.c's own config uses.
  pkg_check_modules(libnats REQUIRED IMPORTED_TARGET GLOBAL libnats)
  if(NOT TARGET cnats::nats)
    add_library(cnats::nats ALIAS PkgConfig::libnats)
  endif()
endif()

if(KEEL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
# keel-demo, and the case studies' servers (keel-shortener, keel-notifier).
if(KEEL_BUILD_EXAMPLES OR KEEL_BUILD_CASE_STUDIES)
  find_package(CLI11 REQUIRED)
endif()
if(KEEL_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
  # keel-cache-sim reads gzip (zlib) and Zstandard traces.
  find_package(ZLIB REQUIRED)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(libzstd REQUIRED IMPORTED_TARGET libzstd)
endif()

# Debian's python3 (not a pyenv or venv one): the tests use python3-prometheus-client from it.
if(KEEL_BUILD_TESTS)
  find_program(KEEL_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT KEEL_PYTHON3)
    find_program(KEEL_PYTHON3 python3 REQUIRED)
  endif()
endif()
