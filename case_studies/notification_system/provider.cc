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

const std::string& contact_for(const Contacts& contacts, Channel channel) noexcept {
  switch (channel) {
    case Channel::email:
      return contacts.email;
    case Channel::sms:
      return contacts.phone;
    case Channel::push:
      return contacts.push_token;
    case Channel::webhook:
      return contacts.webhook_url;
  }
  return contacts.email;
}

std::string_view contact_name(Channel channel) noexcept {
  switch (channel) {
    case Channel::email:
      return "email address";
    case Channel::sms:
      return "phone number";
    case Channel::push:
      return "push token";
    case Channel::webhook:
      return "webhook URL";
  }
  return "address";
}

std::optional<Channel> parse_channel(std::string_view text) noexcept {
  for (const Channel c : {Channel::email, Channel::sms, Channel::push, Channel::webhook}) {
    if (text == to_string(c)) return c;
  }
  return std::nullopt;
}

}  // namespace keel::notifier
