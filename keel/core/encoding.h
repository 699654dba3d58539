// Encodings used across keel: Base62 for short, URL-safe identifiers (the URL shortener's codes)
// and hex digests (MD5, SHA-256) through OpenSSL's EVP API.
//
// All functions are pure and thread-safe. Bad input throws std::invalid_argument naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

// The Base62 alphabet, in digit order: 0-9, then A-Z, then a-z.
inline constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Most digits a uint64_t needs in Base62 (62^11 > 2^64).
inline constexpr std::size_t kBase62MaxDigits = 11;

// Base62 digits of `value`, most significant first ("0" for 0). With width > 0 the result is
// left-padded with '0' to exactly `width` digits; a value that needs more digits than `width`
// throws std::invalid_argument.
std::string base62_encode(std::uint64_t value, std::size_t width = 0);

// The value of a Base62 string (leading '0's allowed). Throws std::invalid_argument for an empty
// string, a character outside the alphabet, or a value above UINT64_MAX.
std::uint64_t base62_decode(std::string_view text);

// Lower-case hex digests.
std::string md5_hex(std::string_view data);
std::string sha256_hex(std::string_view data);

// Untrusted input as shown in an error message: in single quotes, bytes outside printable ASCII
// as \xNN, cut after 64 bytes (with the full length said), so that a message never floods a log
// or carries raw control bytes.
std::string quote_for_message(std::string_view text);

}  // namespace keel
