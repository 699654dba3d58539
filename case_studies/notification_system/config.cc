#include "case_studies/notification_system/config.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>

namespace keel::notifier {

namespace {

// The ranges (config.h says why each is where it is).
constexpr std::int64_t kMaxAttempts = 100;
constexpr double kMaxDelaySeconds = 86'400;
constexpr std::int64_t kMaxWorkers = 256;
constexpr double kMaxRate = 1'000'000;
constexpr std::int64_t kMaxBurst = 1'000'000;
constexpr double kMaxAgingSeconds = 86'400;
constexpr double kMaxLeaseSeconds = 3'600;
constexpr std::int64_t kMaxPollMillis = 3'600'000;

[[noreturn]] void bad(std::string_view field, std::string_view what) {
  throw std::invalid_argument(fmt::format("config: {} {}", field, what));
}

const boost::json::object& object_of(const boost::json::value& value, std::string_view field) {
  if (!value.is_object()) bad(field, "must be an object");
  return value.as_object();
}

// A finite number in [min, max]; the error names the key and the range.
double number_of(const boost::json::value& value, std::string_view field, double min, double max) {
  double number = 0;
  if (value.is_int64()) {
    number = static_cast<double>(value.as_int64());
  } else if (value.is_uint64()) {
    number = static_cast<double>(value.as_uint64());
  } else if (value.is_double()) {
    number = value.as_double();
  } else {
    bad(field, fmt::format("must be a number from {} to {}", min, max));
  }
  // !(a <= b) also catches NaN (Boost.JSON does not produce it, but a caller might).
  if (!(number >= min && number <= max)) {
    bad(field, fmt::format("must be a number from {} to {}, got {}", min, max, number));
  }
  return number;
}

// An integer in [min, max]: a fraction (2.5, or 2.0 written as a number with a point), a
// negative number or one out of range is refused before any narrowing.
std::int64_t integer_of(const boost::json::value& value, std::string_view field, std::int64_t min,
                        std::int64_t max) {
  const std::string range = fmt::format("must be an integer from {} to {}", min, max);
  if (value.is_uint64()) {
    // Only above INT64_MAX: always out of range.
    bad(field, fmt::format("{}, got {}", range, value.as_uint64()));
  }
  if (!value.is_int64()) bad(field, range);
  const std::int64_t number = value.as_int64();
  if (number < min || number > max) bad(field, fmt::format("{}, got {}", range, number));
  return number;
}

std::string string_of(const boost::json::value& value, std::string_view field) {
  if (!value.is_string()) bad(field, "must be a string");
  return std::string(value.as_string());
}

// Seconds in [min, max], as a Duration; the range keeps the conversion from overflowing.
Duration seconds_of(const boost::json::value& value, std::string_view field, double min,
                    double max) {
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(number_of(value, field, min, max)));
}

Jitter parse_jitter(const std::string& name) {
  for (const Jitter j : {Jitter::none, Jitter::full, Jitter::equal, Jitter::decorrelated}) {
    if (to_string(j) == name) return j;
  }
  bad("retry.jitter", "must be one of none, full, equal, decorrelated");
}

void parse_retry(const boost::json::value& value, RetryRules& retry) {
  for (const auto& [key, item] : object_of(value, "retry")) {
    const std::string field = fmt::format("retry.{}", std::string_view(key));
    if (key == "max_attempts") {
      retry.max_attempts = static_cast<int>(integer_of(item, field, 1, kMaxAttempts));
    } else if (key == "initial_seconds") {
      retry.initial = seconds_of(item, field, 0.001, kMaxDelaySeconds);
    } else if (key == "max_delay_seconds") {
      retry.max_delay = seconds_of(item, field, 0.001, kMaxDelaySeconds);
    } else if (key == "max_retry_after_seconds") {
      retry.max_retry_after = seconds_of(item, field, 0, kMaxDelaySeconds);
    } else if (key == "jitter") {
      retry.jitter = parse_jitter(string_of(item, field));
    } else {
      bad(field, "is not a known key");
    }
  }
  if (retry.max_delay < retry.initial) bad("retry.max_delay_seconds", "must be >= initial_seconds");
}

}  // namespace

NotifierConfig parse_config(std::string_view json_text) {
  boost::json::value root;
  try {
    root = boost::json::parse(json_text);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("config: not valid JSON: {}", e.what()));
  }
  NotifierConfig config;
  NotifierOptions& options = config.notifier;
  for (const auto& [key, value] : object_of(root, "the top level")) {
    if (key == "providers") {
      (void)object_of(value, "providers");
      config.providers = value;
    } else if (key == "allowed_private_hosts") {
      if (!value.is_array()) bad("allowed_private_hosts", "must be an array of strings");
      for (const auto& host : value.as_array()) {
        config.allowed_private_hosts.push_back(string_of(host, "allowed_private_hosts[]"));
      }
    } else if (key == "retry") {
      parse_retry(value, options.retry);
    } else if (key == "mandatory_categories") {
      if (!value.is_array()) bad("mandatory_categories", "must be an array of strings");
      options.mandatory_categories.clear();
      for (const auto& name : value.as_array()) {
        options.mandatory_categories.insert(string_of(name, "mandatory_categories[]"));
      }
    } else if (key == "workers") {
      for (const auto& [pool, count] : object_of(value, "workers")) {
        const std::string field = fmt::format("workers.{}", std::string_view(pool));
        const auto threads = static_cast<std::size_t>(integer_of(count, field, 1, kMaxWorkers));
        if (pool == "critical") {
          options.critical_workers.threads = threads;
        } else if (pool == "standard") {
          options.standard_workers.threads = threads;
        } else {
          bad(field, "is not a pool (critical, standard)");
        }
      }
    } else if (key == "rate_limit") {
      const boost::json::object& limit = object_of(value, "rate_limit");
      for (const auto& [name, item] : limit) {
        const std::string field = fmt::format("rate_limit.{}", std::string_view(name));
        if (name == "per_second") {
          options.user_limit.rate_per_second = number_of(item, field, 0.001, kMaxRate);
        } else if (name == "burst") {
          options.user_limit.amount = integer_of(item, field, 1, kMaxBurst);
        } else if (name == "critical") {
          if (!item.is_bool()) bad(field, "must be true or false");
          options.limit_critical = item.as_bool();
        } else {
          bad(field, "is not a known key (per_second, burst, critical)");
        }
      }
    } else if (key == "templates") {
      for (const auto& [name, body] : object_of(value, "templates")) {
        const std::string field = fmt::format("templates.{}", std::string_view(name));
        Template t;
        for (const auto& [part, text] : object_of(body, field)) {
          if (part == "subject") {
            t.subject = string_of(text, field + ".subject");
          } else if (part == "body") {
            t.body = string_of(text, field + ".body");
          } else {
            bad(fmt::format("{}.{}", field, std::string_view(part)), "is not subject or body");
          }
        }
        if (t.body.empty()) bad(field + ".body", "is required");
        options.templates[std::string(name)] = std::move(t);
      }
    } else if (key == "aging_seconds") {
      config.queue.aging_step = seconds_of(value, "aging_seconds", 0.001, kMaxAgingSeconds);
    } else if (key == "lease_seconds") {
      options.lease = seconds_of(value, "lease_seconds", 0.1, kMaxLeaseSeconds);
    } else if (key == "poll_milliseconds") {
      options.poll_interval =
          std::chrono::milliseconds(integer_of(value, "poll_milliseconds", 0, kMaxPollMillis));
    } else {
      bad(std::string_view(key), "is not a known key");
    }
  }
  return config;
}

NotifierConfig load_config(const std::string& path) {
  std::ifstream file(path);
  std::ostringstream text;
  if (!file || !(text << file.rdbuf())) {
    throw std::invalid_argument(fmt::format("config: cannot read {}", path));
  }
  return parse_config(text.str());
}

}  // namespace keel::notifier
