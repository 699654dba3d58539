// keel::redis::Codec: how RedisCache turns keys and values into Redis strings and back.
//
// A codec for T is a type C with
//   static std::string encode(const T& value);
//   static T decode(std::string_view bytes);   // throws (any std::exception) for bad input
// where decode(encode(v)) == v. For keys, equal keys must encode to equal strings. DefaultCodec
// covers std::string, integers, bool and floating point; give RedisCache your own codec for other
// types (a struct as JSON, protobuf, ...):
//
//   struct UserCodec {
//     static std::string encode(const User& user);
//     static User decode(std::string_view bytes);
//   };
//   redis::RedisCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec> users;
//
// A value that does not decode (written by another version of the program, say) is a miss
// counted as an error, never a crash.
#pragma once

#include <charconv>
#include <concepts>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace keel::redis {

template <class C, class T>
concept Codec = requires(const T& value, std::string_view bytes) {
  { C::encode(value) } -> std::convertible_to<std::string>;
  { C::decode(bytes) } -> std::same_as<T>;
};

// Specialised below for std::string, integers, bool and floating point.
template <class T>
struct DefaultCodec;

// The bytes as they are.
template <>
struct DefaultCodec<std::string> {
  static std::string encode(const std::string& value) { return value; }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

// Decimal text (so that redis-cli shows it, and INCR could work on it).
template <class T>
requires std::integral<T> || std::floating_point<T>
struct DefaultCodec<T> {
  static std::string encode(T value) {
    char buffer[64];  // enough for any integer and the shortest round-trip form of any double
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
  }
  static T decode(std::string_view bytes) {
    T value{};
    const char* end = bytes.data() + bytes.size();
    const auto [ptr, error] = std::from_chars(bytes.data(), end, value);
    if (error != std::errc() || ptr != end) {
      throw std::invalid_argument("redis codec: '" + std::string(bytes) + "' is not a number");
    }
    return value;
  }
};

// "1" or "0".
template <>
struct DefaultCodec<bool> {
  static std::string encode(bool value) { return value ? "1" : "0"; }
  static bool decode(std::string_view bytes) {
    if (bytes == "1") return true;
    if (bytes == "0") return false;
    throw std::invalid_argument("redis codec: '" + std::string(bytes) + "' is not a bool");
  }
};

}  // namespace keel::redis
