// ConsoleProvider: "delivers" a message by printing one line about it, for the demo and for a
// service started without configuration (every channel goes to the console then).
//
//   [notifier] email to user u1 (alice@example.com): "Password reset" notification=n1
//   delivery=d1 priority=critical category=security attempt=1 key=k1     (one line)
//
// Always `sent`. Control characters in the subject are escaped so that one delivery is one line.
//
// Thread safety: send() may be called from any number of threads; lines are never interleaved.
// The stream must outlive the provider and not be written by others without the same care.
#pragma once

#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "case_studies/notification_system/provider.h"

namespace keel::notifier {

class ConsoleProvider final : public Provider {
 public:
  explicit ConsoleProvider(std::ostream& out);

  std::string_view name() const noexcept override { return "console"; }
  SendResult send(const Message& message) override;

  // The line printed for `message`, without the newline.
  static std::string format_line(const Message& message);

 private:
  std::mutex mutex_;
  std::ostream& out_;  // GUARDED_BY(mutex_)
};

}  // namespace keel::notifier
