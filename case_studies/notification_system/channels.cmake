# The notifier's outbound side (docs/notification_channels.md): the Provider port's
# implementations (console, SMTP, HTTP gateways, signed webhooks with the SSRF guard) and the
# Dispatcher with a circuit breaker per provider. Included by this folder's CMakeLists.txt; the
# service library (keel_notifier) links keel_notifier_channels.
find_package(CURL REQUIRED)

set(keel_notifier_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(keel_notifier_channels STATIC
  ${keel_notifier_dir}/provider.cc
  ${keel_notifier_dir}/dispatcher.cc
  ${keel_notifier_dir}/channels/address_guard.cc
  ${keel_notifier_dir}/channels/console_provider.cc
  ${keel_notifier_dir}/channels/http_provider.cc
  ${keel_notifier_dir}/channels/internal/curl.cc
  ${keel_notifier_dir}/channels/internal/http_post.cc
  ${keel_notifier_dir}/channels/smtp_provider.cc
  ${keel_notifier_dir}/channels/webhook_provider.cc)
target_include_directories(keel_notifier_channels PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(keel_notifier_channels
  PUBLIC keel::core keel::resilience Boost::json
  PRIVATE CURL::libcurl OpenSSL::Crypto spdlog::spdlog fmt::fmt)
target_compile_options(keel_notifier_channels PRIVATE ${KEEL_WARNINGS})

if(KEEL_BUILD_TESTS)
  # Unit tests: no network beyond name resolution of literals, ManualClock throughout.
  keel_add_test(keel_notifier_channels_test
    SOURCES
      ${keel_notifier_dir}/dispatcher_test.cc
      ${keel_notifier_dir}/channels/address_guard_test.cc
      ${keel_notifier_dir}/channels/formats_test.cc
    LIBS keel_notifier_channels keel::core keel::resilience Boost::json spdlog::spdlog fmt::fmt)
  # Against real servers on 127.0.0.1: an SMTP sink (python3-aiosmtpd) and keel::http sinks.
  keel_add_test(keel_notifier_channels_integration_test
    SOURCES
      ${keel_notifier_dir}/channels/smtp_provider_test.cc
      ${keel_notifier_dir}/channels/http_provider_test.cc
      ${keel_notifier_dir}/channels/webhook_provider_test.cc
    LIBS keel_notifier_channels keel::http keel_test_support Boost::json spdlog::spdlog fmt::fmt
    LABELS integration)
  target_compile_definitions(keel_notifier_channels_integration_test PRIVATE
    KEEL_NOTIFIER_PYTHON3="${KEEL_PYTHON3}"
    KEEL_NOTIFIER_SMTP_SINK="${keel_notifier_dir}/testdata/smtp_sink.py")
  keel_add_test(keel_notifier_channels_concurrency_test
    SOURCES ${keel_notifier_dir}/dispatcher_concurrency_test.cc
    LIBS keel_notifier_channels keel::core fmt::fmt
    LABELS concurrency)
endif()
