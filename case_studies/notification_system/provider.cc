#include "case_studies/notification_system/provider.h"

namespace keel::notifier {

std::string_view to_string(Channel channel) noexcept {
  switch (channel) {
    case Channel::email:
      return "email";
    case Channel::sms:
      return "sms";
    case Channel::push:
      return "push";
    case Channel::webhook:
      return "webhook";
  }
  return "unknown";
}

std::optional<Channel> parse_channel(std::string_view text) noexcept {
  for (const Channel c : {Channel::email, Channel::sms, Channel::push, Channel::webhook}) {
    if (text == to_string(c)) return c;
  }
  return std::nullopt;
}

}  // namespace keel::notifier
