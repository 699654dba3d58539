#include "case_studies/notification_system/channels/smtp_provider.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <vector>

#include "case_studies/notification_system/channels/internal/curl.h"
#include "case_studies/notification_system/channels/internal/http_post.h"
#include "keel/core/encoding.h"

namespace keel::notifier {
namespace {

constexpr std::size_t kEncodedChunkBytes = 45;  // 60 base64 chars: "=?UTF-8?B?" + 60 + "?=" = 72
constexpr std::size_t kMaxPlainHeaderBytes = 900;
constexpr std::size_t kMaxLineBytes = 998;  // RFC 5322 2.1.1

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool is_plain_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F;
  });
}

// Length of the UTF-8 sequence starting with `lead`; 1 for a stray byte.
std::size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  if (lead >= 0xE0) return lead < 0xF0 ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

std::string rfc5322_date(WallTime at) {
  const std::time_t t = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&t, &utc);
  std::array<char, 64> out{};
  const std::size_t n = std::strftime(out.data(), out.size(), "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return std::string(out.data(), n);
}

std::string quoted_display_name(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string from_header(const SmtpProviderOptions& options) {
  if (options.from_name.empty()) return options.from;
  const std::string cleaned = encode_header_text(options.from_name);
  const std::string phrase =
      is_plain_ascii(options.from_name) ? quoted_display_name(cleaned) : cleaned;
  return fmt::format("{} <{}>", phrase, options.from);
}

// The body with CRLF line ends, and the transfer encoding it needs.
std::pair<std::string, std::string_view> encode_body(std::string_view body) {
  std::vector<std::string_view> lines;
  bool seven_bit = true;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= body.size(); ++i) {
    if (i < body.size() && body[i] != '\n' && body[i] != '\r') continue;
    lines.push_back(body.substr(start, i - start));
    if (i + 1 < body.size() && body[i] == '\r' && body[i + 1] == '\n') ++i;
    start = i + 1;
  }
  // A final line break ends the last line; it does not start an empty one.
  if (lines.size() > 1 && lines.back().empty()) lines.pop_back();
  std::string text;
  for (const std::string_view line : lines) {
    seven_bit = seven_bit && line.size() <= kMaxLineBytes &&
                std::all_of(line.begin(), line.end(), [](char c) {
                  const auto u = static_cast<unsigned char>(c);
                  return u < 0x80 && u != 0;
                });
    text.append(line).append("\r\n");
  }
  if (seven_bit) return {std::move(text), "7bit"};
  const std::string encoded = base64(text);
  std::string wrapped;
  for (std::size_t i = 0; i < encoded.size(); i += 76) {
    wrapped.append(encoded.substr(i, 76)).append("\r\n");
  }
  return {std::move(wrapped), "base64"};
}

struct Upload {
  std::string_view data;
  std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const std::size_t n = std::min(size * count, upload->data.size() - upload->offset);
  std::memcpy(buffer, upload->data.data() + upload->offset, n);
  upload->offset += n;
  return n;
}

std::string_view domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view("localhost") : address.substr(at + 1);
}

SendResult classify(CURLcode rc, long reply, const std::string& detail) {
  const std::string error = reply > 0 ? fmt::format("SMTP server answered {}: {}", reply, detail)
                                      : fmt::format("SMTP error: {}", detail);
  if (rc == CURLE_LOGIN_DENIED) {
    return {.outcome = SendOutcome::transient,
            .error = fmt::format("SMTP authentication failed ({}); check the credentials",
                                 reply > 0 ? std::to_string(reply) : std::string("no reply"))};
  }
  if (reply >= 500 && reply < 600) return {.outcome = SendOutcome::permanent, .error = error};
  if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    return {.outcome = SendOutcome::permanent, .error = error};
  }
  return {.outcome = SendOutcome::transient, .error = error};  // 4xx, network, timeout
}

}  // namespace

bool is_valid_email_address(std::string_view address) noexcept {
  if (address.empty() || address.size() > 254) return false;
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  constexpr std::string_view kForbidden = "<>,;:\"()[]\\";
  return std::all_of(address.begin(), address.end(), [&](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F && kForbidden.find(c) == std::string_view::npos;
  });
}

std::string encode_header_text(std::string_view text) {
  std::string clean(text);
  for (char& c : clean) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = ' ';
  }
  if (is_plain_ascii(clean) && clean.size() <= kMaxPlainHeaderBytes &&
      clean.find("=?") == std::string::npos) {
    return clean;
  }
  std::string out;
  std::size_t i = 0;
  while (i < clean.size()) {
    std::size_t end = i;
    while (end < clean.size()) {
      const std::size_t step =
          std::min(utf8_length(static_cast<unsigned char>(clean[end])), clean.size() - end);
      if (end - i + step > kEncodedChunkBytes) break;
      end += step;
    }
    if (!out.empty()) out.append("\r\n ");
    out.append("=?UTF-8?B?")
        .append(base64(std::string_view(clean).substr(i, end - i)))
        .append("?=");
    i = end;
  }
  return out;
}

std::string SmtpProvider::message_id(const Message& message, std::string_view from) {
  const std::string key = !message.idempotency_key.empty()
                              ? message.idempotency_key
                              : fmt::format("{}/{}", message.notification_id, message.delivery_id);
  return fmt::format("<{}.keel@{}>", sha256_hex(key).substr(0, 32), domain_of(from));
}

std::string SmtpProvider::format_message(const Message& message, const SmtpProviderOptions& options,
                                         WallTime date) {
  auto [body, transfer_encoding] = encode_body(message.body);
  std::string out;
  out += fmt::format("Date: {}\r\n", rfc5322_date(date));
  out += fmt::format("From: {}\r\n", from_header(options));
  out += fmt::format("To: <{}>\r\n", message.to.email);
  out += fmt::format("Subject: {}\r\n", encode_header_text(message.subject));
  out += fmt::format("Message-ID: {}\r\n", message_id(message, options.from));
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += fmt::format("Content-Transfer-Encoding: {}\r\n", transfer_encoding);
  if (!message.notification_id.empty()) {
    out += fmt::format("X-Keel-Notification-Id: {}\r\n",
                       internal::header_safe_key(message.notification_id));
  }
  if (!message.delivery_id.empty()) {
    out +=
        fmt::format("X-Keel-Delivery-Id: {}\r\n", internal::header_safe_key(message.delivery_id));
  }
  out += "\r\n";
  out += body;
  return out;
}

SmtpProvider::SmtpProvider(SmtpProviderOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  internal::ensure_curl_initialized();
  if (!options_.url.starts_with("smtp://") && !options_.url.starts_with("smtps://")) {
    throw std::invalid_argument(
        fmt::format("SmtpProviderOptions.url: must start with smtp:// or smtps://, got {}",
                    quote_for_message(options_.url)));
  }
  if (!is_valid_email_address(options_.from)) {
    throw std::invalid_argument(fmt::format("SmtpProviderOptions.from: not a valid address: {}",
                                            quote_for_message(options_.from)));
  }
  internal::require_transport_options("SmtpProviderOptions", options_.connect_timeout,
                                      options_.timeout, options_.name);
}

SendResult SmtpProvider::send(const Message& message) {
  if (message.to.email.empty()) {
    return {.outcome = SendOutcome::permanent,
            .error = fmt::format("user {} has no email address", message.user_id)};
  }
  if (!is_valid_email_address(message.to.email)) {
    return {.outcome = SendOutcome::permanent,
            .error = fmt::format("invalid email address {}", quote_for_message(message.to.email))};
  }
  const std::string text = format_message(message, options_, clock_.wall_now());
  const std::string from = fmt::format("<{}>", options_.from);
  const internal::Slist recipients(
      curl_slist_append(nullptr, fmt::format("<{}>", message.to.email).c_str()));
  const internal::EasyHandle easy(curl_easy_init());
  if (!easy || !recipients) {
    return {.outcome = SendOutcome::transient, .error = "curl_easy_init failed"};
  }
  CURL* h = easy.get();
  Upload upload{.data = text};
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
  curl_easy_setopt(h, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, recipients.get());
  curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(h, CURLOPT_READDATA, &upload);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, internal::to_millis(options_.connect_timeout));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, internal::to_millis(options_.timeout));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer.data());
  curl_easy_setopt(
      h, CURLOPT_USE_SSL,
      options_.require_tls ? static_cast<long>(CURLUSESSL_ALL) : static_cast<long>(CURLUSESSL_TRY));
  if (!options_.username.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, options_.username.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, options_.password.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) {
    return {.outcome = SendOutcome::sent,
            .provider_message_id = message_id(message, options_.from)};
  }
  long reply = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
  const std::string detail = error_buffer[0] != '\0' ? std::string(error_buffer.data())
                                                     : std::string(curl_easy_strerror(rc));
  return classify(rc, reply, detail);
}

}  // namespace keel::notifier
