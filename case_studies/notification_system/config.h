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
// ("config: retry.max_attempts must be an integer >= 1").
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
