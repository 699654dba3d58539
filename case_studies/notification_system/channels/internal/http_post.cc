#include "case_studies/notification_system/channels/internal/http_post.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "keel/core/encoding.h"

namespace keel::notifier::internal {
namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  void operator()(char* text) const noexcept { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

CurlString url_part(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* out = nullptr;
  if (curl_url_get(url, part, &out, flags) != CURLUE_OK) return nullptr;
  return CurlString(out);
}

// Everything a transfer's callbacks need.
struct Transfer {
  const AddressGuard* guard = nullptr;
  std::string host;
  std::size_t max_body = 0;
  HttpReply reply = {};
  std::string refused_address = {};  // set when the connect-time check refused an address
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const std::size_t room = t->max_body - std::min(t->max_body, t->reply.body.size());
  t->reply.body.append(data, std::min(n, room));  // the rest is read and dropped
  return n;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->reply.retry_after.reset();  // a new response (after a 100 Continue)
    return n;
  }
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string head(line.substr(0, kName.size()));
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head == kName) t->reply.retry_after = trim(line.substr(kName.size()));
  }
  return n;
}

std::string numeric_address(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address->sa_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, address, sizeof v4);
    inet_ntop(AF_INET, &v4.sin_addr, text.data(), static_cast<socklen_t>(text.size()));
  } else if (address->sa_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, address, sizeof v6);
    inet_ntop(AF_INET6, &v6.sin6_addr, text.data(), static_cast<socklen_t>(text.size()));
  }
  return std::string(text.data());
}

// The last line of defence: whatever libcurl resolved or was pinned to, it may only open a
// socket to an address the guard allows.
curl_socket_t open_socket(void* user, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  const std::string numeric = numeric_address(&address->addr);
  if (numeric.empty() || !t->guard->allows(t->host, numeric)) {
    t->refused_address = numeric.empty() ? std::string("an unknown address family") : numeric;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype, address->protocol);
}

std::string pin_entry(const GuardedTarget& target) {
  std::string entry = fmt::format("{}:{}:", target.host, target.port);
  for (std::size_t i = 0; i < target.addresses.size(); ++i) {
    const std::string& a = target.addresses[i];
    if (i > 0) entry.push_back(',');
    entry.append(a.find(':') != std::string::npos ? fmt::format("[{}]", a) : a);
  }
  return entry;
}

SendResult permanent(std::string error) {
  return {.outcome = SendOutcome::permanent, .error = std::move(error)};
}
SendResult transient(std::string error) {
  return {.outcome = SendOutcome::transient, .error = std::move(error)};
}

std::string message_id_of(const std::string& body) {
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) return {};
  for (const char* key : {"id", "message_id"}) {
    const boost::json::value* v = doc.as_object().if_contains(key);
    if (v == nullptr) continue;
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64()) return std::to_string(v->get_int64());
    if (v->is_uint64()) return std::to_string(v->get_uint64());
  }
  return {};
}

SendResult classify_status(const HttpReply& reply, const std::string& host, WallTime now) {
  const long status = reply.status;
  if (status >= 200 && status < 300) {
    return {.outcome = SendOutcome::sent, .provider_message_id = message_id_of(reply.body)};
  }
  if (status == 408 || status == 429 || status >= 500) {
    SendResult r = transient(fmt::format("{} answered {}", host, status));
    if (reply.retry_after) r.retry_after = parse_retry_after(*reply.retry_after, now);
    return r;
  }
  if (status >= 300 && status < 400) {
    return permanent(
        fmt::format("{} answered {} (a redirect): redirects are refused", host, status));
  }
  return permanent(fmt::format("{} rejected the request with {}: {}", host, status,
                               quote_for_message(reply.body)));
}

}  // namespace

std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& error) {
  const std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
  const std::string z(text);
  if (url == nullptr) throw std::bad_alloc();
  if (const CURLUcode rc = curl_url_set(url.get(), CURLUPART_URL, z.c_str(), 0); rc != CURLUE_OK) {
    error = fmt::format("not a valid URL ({})", curl_url_strerror(rc));
    return std::nullopt;
  }
  HttpUrl out;
  const CurlString scheme = url_part(url.get(), CURLUPART_SCHEME);
  out.scheme = scheme ? scheme.get() : "";
  if (out.scheme != "http" && out.scheme != "https") {
    error = fmt::format("only http and https URLs are allowed, got scheme {}",
                        quote_for_message(out.scheme));
    return std::nullopt;
  }
  if (url_part(url.get(), CURLUPART_USER) || url_part(url.get(), CURLUPART_PASSWORD)) {
    error = "credentials in the URL are not allowed";
    return std::nullopt;
  }
  const CurlString host = url_part(url.get(), CURLUPART_HOST);
  std::string_view h = host ? std::string_view(host.get()) : std::string_view();
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  out.host = std::string(h);
  const CurlString port = url_part(url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  unsigned value = 0;
  const std::string_view p = port ? std::string_view(port.get()) : std::string_view();
  if (std::from_chars(p.data(), p.data() + p.size(), value).ec != std::errc{} || value == 0 ||
      value > 65535) {
    error = "the URL has no valid port";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

SendResult post_json(const JsonPost& post, const AddressGuard& guard, const Clock& clock,
                     HttpReply* reply_out) {
  ensure_curl_initialized();
  std::string url_error;
  const auto url = parse_http_url(post.url, url_error);
  if (!url) return permanent(fmt::format("bad URL: {}", url_error));
  const std::string host = url->host;

  const GuardedTarget target = guard.resolve(host, url->port);
  if (!target.error.empty()) {
    return target.refused ? permanent(target.error) : transient(target.error);
  }

  const EasyHandle easy(curl_easy_init());
  if (!easy) return transient("curl_easy_init failed");
  CURL* h = easy.get();
  Transfer transfer{.guard = &guard, .host = host, .max_body = post.max_response_bytes};

  curl_slist* raw_headers = nullptr;
  for (const std::string& header : post.headers)
    raw_headers = curl_slist_append(raw_headers, header.c_str());
  raw_headers = curl_slist_append(raw_headers, "Content-Type: application/json");
  raw_headers = curl_slist_append(raw_headers, "Expect:");  // no 100-continue round trip
  const Slist headers(raw_headers);
  // An IP literal is never resolved; a name is pinned to the addresses the guard checked.
  const bool literal = canonical_ip(host).has_value();
  const Slist pins(literal ? nullptr : curl_slist_append(nullptr, pin_entry(target).c_str()));
  std::array<char, CURL_ERROR_SIZE> error_buffer{};

  curl_easy_setopt(h, CURLOPT_URL, post.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (pins) curl_easy_setopt(h, CURLOPT_RESOLVE, pins.get());
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, &open_socket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, post.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post.body.size()));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "keel-notifier/1");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, to_millis(post.connect_timeout));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to_millis(post.timeout));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer.data());

  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &transfer.reply.status);
  if (reply_out != nullptr) *reply_out = transfer.reply;

  if (rc == CURLE_OK) return classify_status(transfer.reply, host, clock.wall_now());
  if (!transfer.refused_address.empty()) {
    return permanent(
        fmt::format("refused: connecting to {} for host {} is not allowed (a non-public address)",
                    transfer.refused_address, quote_for_message(host)));
  }
  const std::string detail = error_buffer[0] != '\0' ? std::string(error_buffer.data())
                                                     : std::string(curl_easy_strerror(rc));
  if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    return permanent(fmt::format("bad URL: {}", detail));
  }
  return transient(fmt::format("network error with {}: {}", quote_for_message(host), detail));
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, WallTime now) {
  const std::string text = trim(value);
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 9) return std::chrono::seconds(999'999'999);  // absurd, but a delay
    return std::chrono::seconds(std::stol(text));
  }
  // An HTTP date always names a weekday and a GMT time; curl_getdate parses the three forms.
  if (!std::isalpha(static_cast<unsigned char>(text.front())) ||
      text.find(':') == std::string::npos) {
    return std::nullopt;
  }
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  const time_t current = std::chrono::system_clock::to_time_t(now);
  return std::chrono::seconds(when > current ? when - current : 0);
}

std::string header_safe_key(std::string_view key) {
  const bool printable =
      !key.empty() && key.size() <= 255 &&
      std::all_of(key.begin(), key.end(), [](unsigned char c) { return c > 0x20 && c < 0x7F; });
  return printable ? std::string(key) : sha256_hex(key);
}

boost::json::object message_fields(const Message& m) {
  boost::json::object fields;
  fields["delivery_id"] = m.delivery_id;
  fields["notification_id"] = m.notification_id;
  fields["user_id"] = m.user_id;
  fields["category"] = m.category;
  fields["priority"] = m.priority;
  fields["subject"] = m.subject;
  fields["body"] = m.body;
  fields["attempt"] = m.attempt;
  return fields;
}

std::optional<std::string> idempotency_header(const Message& message) {
  const std::string& key =
      message.idempotency_key.empty() ? message.delivery_id : message.idempotency_key;
  if (key.empty()) return std::nullopt;
  return fmt::format("Idempotency-Key: {}", header_safe_key(key));
}

}  // namespace keel::notifier::internal
