// The keel-notifier configuration file (--config FILE), JSON:
//
//   {"providers": {...},                         // make_dispatcher's section (dispatcher.h)
//    "allowed_private_hosts": ["127.0.0.1"],     // outbound HTTP may reach these
//    "retry": {"max_attempts": 5, "initial_seconds": 2, "max_delay_seconds": 600,
//              "jitter": "equal"},               // none | full | equal | decorrelated
//    "mandatory_categories": ["security"],
//    "workers": {"critical": 2, "standard": 4},
//    "rate_limit": {"per_second": 1, "burst": 10},   // deliveries per user
//    "templates": {"password_reset": {"subject": "...", "body": "... {{code}} ..."}},
//    "aging_seconds": 300, "lease_seconds": 60, "poll_milliseconds": 1000}
//
// Every key is optional; an unknown key or a bad value throws std::invalid_argument naming it
// and its range ("config: retry.max_attempts must be an integer from 1 to 100, got 0").
// Integers refuse fractions (2.5 and 2.0 alike); every number is bounded, so no value overflows
// the conversion to a Duration or narrows into another one:
//
//   retry.max_attempts            integer 1..100
//   retry.initial_seconds         0.001..86400 (one day), <= max_delay_seconds
//   retry.max_delay_seconds       0.001..86400
//   retry.max_retry_after_seconds 0..86400 (0: a provider's Retry-After is not waited for
//                                 beyond our own backoff)
//   workers.critical / .standard  integer 1..256 threads
//   rate_limit.per_second         0.001..1000000 deliveries per second per user
//   rate_limit.burst              integer 1..1000000
//   aging_seconds                 0.001..86400
//   lease_seconds                 0.1..3600 (longer than the slowest provider call)
//   poll_milliseconds             integer 0..3600000 (0: no polling)
#pragma once

#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/store.h"

namespace keel::notifier {

struct NotifierConfig {
  boost::json::value providers = nullptr;  // null = every channel on the console provider
  std::vector<std::string> allowed_private_hosts = {};
  NotifierOptions notifier = {};  // clock, schedulers, events and metrics left unset
  QueueRules queue = {};
};

// Parses the text of a configuration file.
NotifierConfig parse_config(std::string_view json_text);
// Reads and parses a file; throws std::invalid_argument naming the file when unreadable.
NotifierConfig load_config(const std::string& path);

}  // namespace keel::notifier
