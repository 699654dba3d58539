#include "case_studies/url_shortener/codes.h"

#include <fmt/format.h>

#include <stdexcept>

#include "keel/core/encoding.h"

namespace keel::shortener {

namespace {

constexpr int kHalfBits = 21;
constexpr std::uint64_t kHalfMask = (std::uint64_t{1} << kHalfBits) - 1;

// splitmix64's finaliser: a fast, well-mixed 64-bit permutation.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool is_base62(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

}  // namespace

bool is_code(std::string_view text) noexcept {
  if (text.size() != kCodeLength) return false;
  for (const char c : text) {
    if (!is_base62(c)) return false;
  }
  return true;
}

CodeGenerator::CodeGenerator(std::string_view key) {
  if (key.empty()) throw std::invalid_argument("CodeGenerator: the key is empty");
  const std::string digest = sha256_hex(key);  // 64 hex digits: four 64-bit round keys
  for (std::size_t i = 0; i < round_keys_.size(); ++i) {
    round_keys_[i] = std::stoull(digest.substr(i * 16, 16), nullptr, 16);
  }
}

std::uint64_t CodeGenerator::round_function(int round, std::uint64_t half) const {
  return mix(half ^ round_keys_[static_cast<std::size_t>(round)]) & kHalfMask;
}

std::uint64_t CodeGenerator::feistel(std::uint64_t n) const {
  std::uint64_t left = n >> kHalfBits;
  std::uint64_t right = n & kHalfMask;
  for (int round = 0; round < 4; ++round) {
    const std::uint64_t next = left ^ round_function(round, right);
    left = right;
    right = next;
  }
  return (left << kHalfBits) | right;
}

std::uint64_t CodeGenerator::feistel_inverse(std::uint64_t n) const {
  std::uint64_t left = n >> kHalfBits;
  std::uint64_t right = n & kHalfMask;
  for (int round = 3; round >= 0; --round) {
    const std::uint64_t previous = right ^ round_function(round, left);
    right = left;
    left = previous;
  }
  return (left << kHalfBits) | right;
}

// Cycle walking: the Feistel network permutes [0, 2^42); following its cycle from a value inside
// [0, 62^7) until the next value inside gives a permutation of [0, 62^7) (Black and Rogaway,
// "Ciphers with Arbitrary Finite Domains", 2002). 80% of 2^42 is inside: 1.25 steps on average.
std::uint64_t CodeGenerator::permute(std::uint64_t n) const {
  if (n >= kCodeSpace) throw std::out_of_range(fmt::format("counter {} is past 62^7", n));
  do {
    n = feistel(n);
  } while (n >= kCodeSpace);
  return n;
}

std::uint64_t CodeGenerator::unpermute(std::uint64_t n) const {
  if (n >= kCodeSpace) throw std::out_of_range(fmt::format("value {} is past 62^7", n));
  do {
    n = feistel_inverse(n);
  } while (n >= kCodeSpace);
  return n;
}

std::string CodeGenerator::code(std::uint64_t n) const {
  return base62_encode(permute(n), kCodeLength);
}

std::uint64_t CodeGenerator::counter(std::string_view code) const {
  if (!is_code(code)) {
    throw std::invalid_argument(
        fmt::format("{} is not a 7-character Base62 code", quote_for_message(code)));
  }
  return unpermute(base62_decode(code));
}

}  // namespace keel::shortener
