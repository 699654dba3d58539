// Test doubles of the notifier's outbound port (provider.h, dispatcher.h) with scripted outcomes,
// for the pipeline's tests and the demo. Not for production.
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "case_studies/notification_system/dispatcher.h"
#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier::testing {

// Returns the scripted results in order, then `sent`; records every message with the time of
// the call on `clock`. An optional hook runs inside send() (to cancel mid-flight, to block).
class ScriptedProvider final : public Provider {
 public:
  struct Call {
    Message message;
    WallTime at;
  };

  ScriptedProvider(std::string name, const Clock& clock) : name_(std::move(name)), clock_(clock) {}

  std::string_view name() const noexcept override { return name_; }

  SendResult send(const Message& message) override {
    std::function<void(const Message&)> hook;
    SendResult result;
    {
      std::lock_guard lock(mu_);
      calls_.push_back({message, clock_.wall_now()});
      hook = hook_;
      if (!script_.empty()) {
        result = std::move(script_.front());
        script_.pop_front();
      }
    }
    if (hook) hook(message);
    return result;
  }

  void script(std::vector<SendResult> results) {
    std::lock_guard lock(mu_);
    script_.insert(script_.end(), results.begin(), results.end());
  }
  void on_send(std::function<void(const Message&)> hook) {
    std::lock_guard lock(mu_);
    hook_ = std::move(hook);
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

  static SendResult transient(std::string error) {
    SendResult r;
    r.outcome = SendOutcome::transient;
    r.error = std::move(error);
    return r;
  }
  static SendResult permanent(std::string error) {
    SendResult r;
    r.outcome = SendOutcome::permanent;
    r.error = std::move(error);
    return r;
  }

 private:
  const std::string name_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::deque<SendResult> script_;
  std::vector<Call> calls_;
  std::function<void(const Message&)> hook_;
};

}  // namespace keel::notifier::testing
