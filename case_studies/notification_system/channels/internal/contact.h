// Private to the notifier's channels: the user's address for a message's channel.
#pragma once

#include <string>

#include "case_studies/notification_system/provider.h"

namespace keel::notifier::internal {

// Contacts::email, phone, push_token or webhook_url, as the message's channel says.
inline const std::string& contact_of(const Message& message) noexcept {
  switch (message.channel) {
    case Channel::email:
      return message.to.email;
    case Channel::sms:
      return message.to.phone;
    case Channel::push:
      return message.to.push_token;
    case Channel::webhook:
      return message.to.webhook_url;
  }
  return message.to.email;
}

}  // namespace keel::notifier::internal
