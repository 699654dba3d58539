// Reads cache traces for keel-cache-sim: plain text, gzip or Zstandard (detected from the first
// bytes), in the ARC format ("first_block block_count ignored request_number": block_count keys
// first_block, first_block + 1, ...) or the LIRS format (one key per line; lines that are "*" or
// empty are skipped; CRLF accepted). Format detection: a line with more than one field is ARC.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace keel::bench {

enum class TraceFormat { automatic, arc, lirs };

struct TraceSummary {
  std::uint64_t requests = 0;
  std::uint64_t lines = 0;
};

// Calls `on_key` for every request of the trace at `path`, in order. Throws std::runtime_error
// naming the file and line on unreadable or malformed input.
TraceSummary read_trace(const std::string& path, TraceFormat format,
                        const std::function<void(std::uint64_t key)>& on_key);

}  // namespace keel::bench
