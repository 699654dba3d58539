#include "keel/core/encoding.h"

#include <array>
#include <limits>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace keel {
namespace {

// Digit value of each byte, -1 for bytes outside the alphabet.
constexpr std::array<std::int8_t, 256> kDigitValue = [] {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (std::size_t i = 0; i < kBase62Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase62Alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}();

std::string hex_digest(const EVP_MD* md, std::string_view data, const char* name) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, md, nullptr) != 1) {
    throw std::runtime_error(fmt::format("{}: OpenSSL EVP_Digest failed", name));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(std::size_t{length} * 2, '0');
  for (std::size_t i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string base62_encode(std::uint64_t value, std::size_t width) {
  std::array<char, kBase62MaxDigits> digits{};
  std::size_t n = 0;
  do {
    digits[n++] = kBase62Alphabet[value % 62];
    value /= 62;
  } while (value != 0);
  if (width != 0 && n > width) {
    throw std::invalid_argument(
        fmt::format("base62_encode: value needs {} digits, more than the width {}", n, width));
  }
  std::string out(width > n ? width - n : 0, '0');
  for (std::size_t i = n; i > 0; --i) out += digits[i - 1];
  return out;
}

std::uint64_t base62_decode(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("base62_decode: empty string");
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::int8_t digit = kDigitValue[static_cast<unsigned char>(text[i])];
    if (digit < 0) {
      throw std::invalid_argument(fmt::format(
          "base62_decode: invalid character at position {} in {}", i, quote_for_message(text)));
    }
    const auto d = static_cast<std::uint64_t>(static_cast<unsigned char>(digit));
    if (value > (kMax - d) / 62) {
      throw std::invalid_argument(fmt::format(
          "base62_decode: {} overflows a 64-bit unsigned integer", quote_for_message(text)));
    }
    value = value * 62 + d;
  }
  return value;
}

std::string md5_hex(std::string_view data) { return hex_digest(EVP_md5(), data, "md5_hex"); }

std::string sha256_hex(std::string_view data) {
  return hex_digest(EVP_sha256(), data, "sha256_hex");
}

std::string quote_for_message(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  out += '\'';
  if (text.size() > kMax) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

}  // namespace keel
