#include "bench/trace_reader.h"

#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

namespace keel::bench {
namespace {

// A source of decompressed bytes.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Fills `buffer`; returns the bytes read (0 at the end).
  virtual std::size_t read(char* buffer, std::size_t size) = 0;
};

// gzip and plain text: zlib reads both transparently.
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {
    if (file_ == nullptr) throw std::runtime_error(fmt::format("cannot open trace {}", path));
    gzbuffer(file_, 1 << 20);
  }
  ~GzipSource() override { gzclose(file_); }
  std::size_t read(char* buffer, std::size_t size) override {
    const int n = gzread(file_, buffer, static_cast<unsigned>(size));
    if (n < 0) throw std::runtime_error("gzip: corrupt trace");
    return static_cast<std::size_t>(n);
  }

 private:
  gzFile file_;
};

class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : file_(std::fopen(path.c_str(), "rb")),
        stream_(ZSTD_createDStream()),
        input_buffer_(ZSTD_DStreamInSize()) {
    if (file_ == nullptr) throw std::runtime_error(fmt::format("cannot open trace {}", path));
    ZSTD_initDStream(stream_);
  }
  ~ZstdSource() override {
    ZSTD_freeDStream(stream_);
    std::fclose(file_);
  }
  std::size_t read(char* buffer, std::size_t size) override {
    ZSTD_outBuffer out{buffer, size, 0};
    while (out.pos == 0) {
      if (in_.pos == in_.size) {
        const std::size_t n = std::fread(input_buffer_.data(), 1, input_buffer_.size(), file_);
        if (n == 0) return 0;
        in_ = ZSTD_inBuffer{input_buffer_.data(), n, 0};
      }
      const std::size_t rc = ZSTD_decompressStream(stream_, &out, &in_);
      if (ZSTD_isError(rc) != 0) {
        throw std::runtime_error(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
      }
    }
    return out.pos;
  }

 private:
  std::FILE* file_;
  ZSTD_DStream* stream_;
  std::vector<char> input_buffer_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
};

std::unique_ptr<ByteSource> open_source(const std::string& path) {
  std::array<unsigned char, 4> magic{};
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    const std::size_t n = std::fread(magic.data(), 1, magic.size(), f);
    std::fclose(f);
    if (n == 4 && magic[0] == 0x28 && magic[1] == 0xB5 && magic[2] == 0x2F && magic[3] == 0xFD) {
      return std::make_unique<ZstdSource>(path);
    }
  }
  return std::make_unique<GzipSource>(path);  // gzip or plain
}

std::uint64_t parse_number(std::string_view field, const std::string& path, std::uint64_t line) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size()) {
    throw std::runtime_error(
        fmt::format("{}:{}: '{}' is not a non-negative integer", path, line, field));
  }
  return value;
}

}  // namespace

TraceSummary read_trace(const std::string& path, TraceFormat format,
                        const std::function<void(std::uint64_t key)>& on_key) {
  auto source = open_source(path);
  TraceSummary summary;
  std::vector<char> buffer(1 << 20);
  std::string pending;  // a line split across reads
  const auto handle_line = [&](std::string_view line) {
    ++summary.lines;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line == "*") return;
    std::array<std::string_view, 2> fields;
    std::size_t count = 0;
    std::size_t pos = 0;
    while (pos < line.size() && count < fields.size()) {
      const std::size_t start = line.find_first_not_of(" \t", pos);
      if (start == std::string_view::npos) break;
      const std::size_t end = std::min(line.find_first_of(" \t", start), line.size());
      fields[count++] = line.substr(start, end - start);
      pos = end;
    }
    if (format == TraceFormat::automatic) format = count > 1 ? TraceFormat::arc : TraceFormat::lirs;
    const std::uint64_t first = parse_number(fields[0], path, summary.lines);
    std::uint64_t blocks = 1;
    if (format == TraceFormat::arc) {
      if (count < 2) {
        throw std::runtime_error(
            fmt::format("{}:{}: an ARC line needs two fields", path, summary.lines));
      }
      blocks = parse_number(fields[1], path, summary.lines);
    }
    for (std::uint64_t i = 0; i < blocks; ++i) on_key(first + i);
    summary.requests += blocks;
  };
  while (const std::size_t n = source->read(buffer.data(), buffer.size())) {
    std::string_view chunk(buffer.data(), n);
    std::size_t newline;
    while ((newline = chunk.find('\n')) != std::string_view::npos) {
      if (pending.empty()) {
        handle_line(chunk.substr(0, newline));
      } else {
        pending.append(chunk.substr(0, newline));
        handle_line(pending);
        pending.clear();
      }
      chunk.remove_prefix(newline + 1);
    }
    pending.append(chunk);
  }
  if (!pending.empty()) handle_line(pending);
  return summary;
}

}  // namespace keel::bench
