// Short codes for the URL shortener: exactly 7 Base62 characters ([0-9A-Za-z]), 62^7 ≈ 3.5
// trillion of them, made from a counter so that they never collide.
//
// A bare counter would give away how many links exist and make the next one guessable
// (0000001, 0000002, ...). So the counter first goes through a keyed bijection on [0, 62^7): a
// four-round Feistel network on 42 bits (two 21-bit halves, a keyed 64-bit mixer as round
// function) with cycle walking — values that land in [62^7, 2^42) go through the network again
// until they fall inside the domain. A bijection keeps the codes unique with no lookup; the key
// (configuration) makes the order unpredictable to anyone without it. It is not encryption with
// a security proof: it stops enumeration by counting, not a cryptanalyst with many samples.
//
// Thread safety: CodeGenerator is immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::shortener {

inline constexpr std::size_t kCodeLength = 7;
inline constexpr std::uint64_t kCodeSpace = 3'521'614'606'208;  // 62^7

class CodeGenerator {
 public:
  // Round keys derived from `key` (SHA-256). Throws std::invalid_argument for an empty key.
  explicit CodeGenerator(std::string_view key);

  // The code of counter value `n`. Throws std::out_of_range for n >= kCodeSpace.
  std::string code(std::uint64_t n) const;
  // The counter value a code was made from (the inverse). Throws std::invalid_argument for a
  // string that is not a 7-character Base62 code.
  std::uint64_t counter(std::string_view code) const;

  // The bijection on [0, kCodeSpace) and its inverse.
  std::uint64_t permute(std::uint64_t n) const;
  std::uint64_t unpermute(std::uint64_t n) const;

 private:
  std::uint64_t round_function(int round, std::uint64_t half) const;
  std::uint64_t feistel(std::uint64_t n) const;
  std::uint64_t feistel_inverse(std::uint64_t n) const;

  std::array<std::uint64_t, 4> round_keys_{};
};

// Whether `text` is 7 characters of [0-9A-Za-z].
bool is_code(std::string_view text) noexcept;

}  // namespace keel::shortener
