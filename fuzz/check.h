// What the fuzz targets share: a check that aborts with a message (libFuzzer then saves the
// input as a crash), and a reader that splits one fuzz input into the values a target needs.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts, naming the property that broke and where, when `condition` is false. On in every
// build type (unlike assert): a fuzzer is worth nothing with its checks compiled out.
#define KEEL_FUZZ_CHECK(condition, ...)                                                            \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      std::fprintf(stderr, "%s:%d: property violated: %s\n  %s\n", __FILE__, __LINE__, #condition, \
                   ::fmt::format(__VA_ARGS__).c_str());                                            \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

namespace keel::fuzz {

// Consumes a fuzz input front to back. Running out is not an error: what is missing reads as
// zero or empty, so every input is a valid test case.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  template <typename T>
  T integer() {
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      value = static_cast<T>((static_cast<std::uint64_t>(value) << 8) | byte());
    }
    return value;
  }
  bool boolean() { return (byte() & 1) != 0; }
  // The text up to the next `separator` (which is consumed), or all that is left.
  std::string_view until(char separator) {
    const std::size_t end = rest_.find(separator);
    const std::string_view part = rest_.substr(0, end);
    rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end + 1);
    return part;
  }
  std::string_view rest() {
    const std::string_view all = rest_;
    rest_ = {};
    return all;
  }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace keel::fuzz
