#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "examples/demo.h"

namespace keel::demo {

void run_core_demo();
void run_rate_limiter_demo();
void run_circuit_breaker_demo();
void run_cache_aside_demo();
void run_pub_sub_demo();
void run_saga_demo();
void run_cqrs_demo();
#ifdef KEEL_DEMO_URL_SHORTENER
void run_url_shortener_demo();
#endif
#ifdef KEEL_DEMO_NOTIFICATION_SYSTEM
void run_notification_system_demo();
#endif

const std::vector<Demo>& all_demos() {
  static const std::vector<Demo> demos = {
      {"core", "clock, scheduler on a manual clock, backoff delays, Prometheus metrics",
       run_core_demo},
      {"rate_limiter",
       "token bucket under a burst; six algorithms on the same traffic (table + SVG chart)",
       run_rate_limiter_demo},
      {"circuit_breaker",
       "a flaky dependency behind a circuit breaker: transitions, fallback, SVG timeline",
       run_circuit_breaker_demo},
      {"cache_aside",
       "a SQLite user repository behind cache-aside: hits, invalidation, ttl, single flight",
       run_cache_aside_demo},
      {"pub_sub", "an order bus: wildcards, a failing subscriber and its dead letter, async delivery",
       run_pub_sub_demo},
      {"saga",
       "the order saga: success, a declined payment compensated, a crash recovered from SQLite",
       run_saga_demo},
      {"cqrs",
       "bank accounts with event sourcing: rules, two read models, a conflict retried, a rebuild",
       run_cqrs_demo},
#ifdef KEEL_DEMO_URL_SHORTENER
      {"url_shortener",
       "the URL shortener case study over real HTTP: shorten, dedup, errors, redirects, stats",
       run_url_shortener_demo},
#endif
#ifdef KEEL_DEMO_NOTIFICATION_SYSTEM
      {"notification_system",
       "the notification case study on a manual clock: priorities, opt-outs, retries, scheduling",
       run_notification_system_demo},
#endif
  };
  return demos;
}

void heading(const std::string& title) {
  fmt::print("\n{}\n{}\n", title, std::string(title.size(), '-'));
}

std::filesystem::path write_demo_file(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("KEEL_DEMO_DIR");  // NOLINT(concurrency-mt-unsafe): main thread
  const std::filesystem::path path =
      (dir != nullptr ? std::filesystem::path(dir) : std::filesystem::temp_directory_path()) / name;
  std::ofstream out(path);
  out << contents;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
  return path;
}

}  // namespace keel::demo
