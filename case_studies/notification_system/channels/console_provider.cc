#include "case_studies/notification_system/channels/console_provider.h"

#include <fmt/format.h>

namespace keel::notifier {
namespace {

const std::string kNoContact;

// Printable ASCII and UTF-8 stay; control bytes become \n, \t or \xNN.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02x}", u);
    } else if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

ConsoleProvider::ConsoleProvider(std::ostream& out) : out_(out) {}

std::string ConsoleProvider::format_line(const Message& m) {
  // A webhook URL may carry a token: not printed.
  const std::string& contact =
      m.channel == Channel::webhook ? kNoContact : contact_for(m.to, m.channel);
  return fmt::format(
      "[notifier] {} to user {}{}: \"{}\" notification={} delivery={} priority={} category={} "
      "attempt={} key={}",
      to_string(m.channel), one_line(m.user_id),
      contact.empty() ? std::string() : fmt::format(" ({})", one_line(contact)),
      one_line(m.subject.empty() ? m.body : m.subject), one_line(m.notification_id),
      one_line(m.delivery_id), one_line(m.priority), one_line(m.category), m.attempt,
      one_line(m.idempotency_key));
}

SendResult ConsoleProvider::send(const Message& message) {
  const std::string line = format_line(message).append("\n");
  {
    std::lock_guard lock(mutex_);
    out_ << line << std::flush;
  }
  return {.outcome = SendOutcome::sent,
          .provider_message_id = fmt::format("console-{}", message.delivery_id)};
}

}  // namespace keel::notifier
