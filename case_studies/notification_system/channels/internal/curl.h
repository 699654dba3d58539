// Private to the notifier's channels: libcurl set-up and RAII handles shared by the SMTP and
// HTTP providers, and the validation every network provider's options share.
// Thread safety: everything here is safe from any thread.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string_view>

#include "keel/core/clock.h"

namespace keel::notifier::internal {

// curl_global_init, once per process (the first provider built calls it).
void ensure_curl_initialized();

struct EasyDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// A Duration as the long milliseconds curl's *_MS options take.
long to_millis(Duration d);

// Throws std::invalid_argument ("<options_type>: ...") for a non-positive timeout or an empty
// provider name.
void require_transport_options(std::string_view options_type, Duration connect_timeout,
                               Duration timeout, std::string_view name);

}  // namespace keel::notifier::internal
