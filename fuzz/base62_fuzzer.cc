// Base62 (keel/core/encoding.h) and the shortener's code bijection (case_studies/url_shortener/
// codes.h).
//
// Input: 8 bytes of a value, 1 byte of a width, 1 byte of a key length, the key, then text.
// Checked: decode(encode(x)) == x with and without a width (and the width's padding and its
// refusal); decoding any text either throws std::invalid_argument or returns the value a
// reference decoder written here computes, and re-encodes to the same digits; the codes of a
// keyed CodeGenerator round-trip through counter(), permute/unpermute are inverse on
// [0, 62^7), and out-of-range input is refused with the documented exception.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "case_studies/url_shortener/codes.h"
#include "fuzz/check.h"
#include "keel/core/encoding.h"

namespace {

using keel::kBase62Alphabet;

// Digit value, or nullopt outside [0-9A-Za-z].
std::optional<std::uint64_t> digit(char c) {
  const std::size_t at = kBase62Alphabet.find(c);
  if (at == std::string_view::npos) return std::nullopt;
  return at;
}

// The value of `text` in Base62, or nullopt when empty, not Base62, or over 64 bits.
std::optional<std::uint64_t> reference_decode(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    const std::optional<std::uint64_t> d = digit(c);
    if (!d) return std::nullopt;
    if (__builtin_mul_overflow(value, std::uint64_t{62}, &value)) return std::nullopt;
    if (__builtin_add_overflow(value, *d, &value)) return std::nullopt;
  }
  return value;
}

bool all_base62(std::string_view text) {
  return text.find_first_not_of(kBase62Alphabet) == std::string_view::npos;
}

void check_encode(std::uint64_t value, std::size_t width) {
  const std::string plain = keel::base62_encode(value);
  KEEL_FUZZ_CHECK(!plain.empty() && plain.size() <= keel::kBase62MaxDigits && all_base62(plain),
                  "base62_encode({}) = '{}'", value, plain);
  KEEL_FUZZ_CHECK(plain == "0" || plain.front() != '0', "leading zero in '{}'", plain);
  KEEL_FUZZ_CHECK(keel::base62_decode(plain) == value, "decode(encode({})) != itself", value);
  try {
    const std::string padded = keel::base62_encode(value, width);
    KEEL_FUZZ_CHECK(width == 0 || plain.size() <= width, "'{}' fit in width {}", plain, width);
    KEEL_FUZZ_CHECK(padded.size() == std::max(width, plain.size()) && padded.ends_with(plain) &&
                        padded.find_first_not_of('0') >= padded.size() - plain.size(),
                    "base62_encode({}, {}) = '{}'", value, width, padded);
    KEEL_FUZZ_CHECK(keel::base62_decode(padded) == value, "padded '{}' decodes wrong", padded);
  } catch (const std::invalid_argument&) {
    KEEL_FUZZ_CHECK(width != 0 && plain.size() > width, "'{}' refused for width {}", plain, width);
  }
}

void check_decode(std::string_view text) {
  const std::optional<std::uint64_t> want = reference_decode(text);
  std::optional<std::uint64_t> got;
  try {
    got = keel::base62_decode(text);
  } catch (const std::invalid_argument&) {
  }
  KEEL_FUZZ_CHECK(got == want, "base62_decode of a {}-byte text: {} vs reference {}", text.size(),
                  got ? fmt::to_string(*got) : "error", want ? fmt::to_string(*want) : "error");
  if (!got) return;
  const std::size_t first = text.find_first_not_of('0');
  const std::string_view digits = first == std::string_view::npos ? "0" : text.substr(first);
  KEEL_FUZZ_CHECK(keel::base62_encode(*got) == digits, "'{}' re-encodes differently", text);
}

void check_codes(std::string_view key, std::uint64_t value, std::string_view text) {
  if (key.empty()) {
    bool refused = false;
    try {
      keel::shortener::CodeGenerator generator(key);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    KEEL_FUZZ_CHECK(refused, "an empty key was accepted");
    return;
  }
  const keel::shortener::CodeGenerator codes(key);
  const std::uint64_t n = value % keel::shortener::kCodeSpace;
  const std::uint64_t p = codes.permute(n);
  KEEL_FUZZ_CHECK(p < keel::shortener::kCodeSpace, "permute({}) = {} left the domain", n, p);
  KEEL_FUZZ_CHECK(codes.unpermute(p) == n, "unpermute(permute({})) != itself", n);
  KEEL_FUZZ_CHECK(codes.permute(codes.unpermute(n)) == n, "permute(unpermute({})) != itself", n);
  const std::string code = codes.code(n);
  KEEL_FUZZ_CHECK(keel::shortener::is_code(code), "code({}) = '{}' is not a code", n, code);
  KEEL_FUZZ_CHECK(codes.counter(code) == n, "counter(code({})) != itself", n);

  if (value >= keel::shortener::kCodeSpace) {
    bool refused = false;
    try {
      (void)codes.code(value);
    } catch (const std::out_of_range&) {
      refused = true;
    }
    KEEL_FUZZ_CHECK(refused, "code({}) past 62^7 was accepted", value);
  }

  const bool is_code = text.size() == keel::shortener::kCodeLength && all_base62(text);
  KEEL_FUZZ_CHECK(keel::shortener::is_code(text) == is_code, "is_code of a {}-byte text",
                  text.size());
  try {
    const std::uint64_t counter = codes.counter(text);
    KEEL_FUZZ_CHECK(is_code, "counter() accepted a non-code");
    KEEL_FUZZ_CHECK(codes.code(counter) == text, "code(counter('{}')) != itself", text);
  } catch (const std::invalid_argument&) {
    KEEL_FUZZ_CHECK(!is_code, "counter() refused the code '{}'", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  keel::fuzz::Input input(data, size);
  const auto value = input.integer<std::uint64_t>();
  const std::size_t width = input.byte() % 16;
  const std::size_t key_length = input.byte() % 8;
  std::string key;
  for (std::size_t i = 0; i < key_length; ++i) key += static_cast<char>(input.byte());
  const std::string_view text = input.rest();

  check_encode(value, width);
  check_decode(text);
  if (const std::optional<std::uint64_t> v = reference_decode(text)) check_encode(*v, width);
  check_codes(key, value, text);
  return 0;
}
