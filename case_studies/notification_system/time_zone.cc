#include "case_studies/notification_system/time_zone.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "keel/core/encoding.h"

namespace keel::notifier {

namespace {

// Reads big-endian integers from a TZif image, failing on truncation.
class Reader {
 public:
  Reader(std::string_view data, const std::string& zone) : data_(data), zone_(zone) {}
  std::uint64_t read(std::size_t bytes) {
    need(bytes);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
      value = (value << 8) | static_cast<unsigned char>(data_[at_ + i]);
    }
    at_ += bytes;
    return value;
  }
  void skip(std::size_t bytes) {
    need(bytes);
    at_ += bytes;
  }
  std::string_view peek(std::size_t bytes) {
    need(bytes);
    return data_.substr(at_, bytes);
  }

 private:
  void need(std::size_t bytes) const {
    if (data_.size() - at_ < bytes) {
      throw std::invalid_argument(fmt::format("time zone {}: truncated TZif file", zone_));
    }
  }
  std::string_view data_;
  const std::string& zone_;
  std::size_t at_ = 0;
};

struct Header {
  char version = 0;
  std::size_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
};

Header read_header(Reader& in, const std::string& zone) {
  if (in.peek(4) != "TZif") {
    throw std::invalid_argument(fmt::format("time zone {}: not a TZif file", zone));
  }
  in.skip(4);
  Header h;
  h.version = static_cast<char>(in.read(1));
  in.skip(15);
  h.isutcnt = in.read(4);
  h.isstdcnt = in.read(4);
  h.leapcnt = in.read(4);
  h.timecnt = in.read(4);
  h.typecnt = in.read(4);
  h.charcnt = in.read(4);
  if (h.typecnt == 0)
    throw std::invalid_argument(fmt::format("time zone {}: no local time types", zone));
  return h;
}

bool valid_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.find("..") != name.npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '-' || c == '+';
  });
}

}  // namespace

TimeZone TimeZone::parse(std::string name, std::string_view tzif) {
  Reader in(tzif, name);
  Header h = read_header(in, name);
  std::size_t time_bytes = 4;
  if (h.version >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    in.skip(h.timecnt * 4 + h.timecnt + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt +
            h.isutcnt);
    h = read_header(in, name);
    time_bytes = 8;
  }
  TimeZone zone;
  zone.name_ = std::move(name);
  std::vector<std::int64_t> times(h.timecnt);
  for (auto& t : times) {
    const std::uint64_t raw = in.read(time_bytes);
    t = time_bytes == 8 ? static_cast<std::int64_t>(raw)
                        : static_cast<std::int64_t>(static_cast<std::int32_t>(raw));
  }
  std::vector<std::size_t> indices(h.timecnt);
  for (auto& i : indices) i = in.read(1);
  std::vector<std::int32_t> type_offsets(h.typecnt);
  std::vector<bool> type_dst(h.typecnt);
  for (std::size_t i = 0; i < h.typecnt; ++i) {
    type_offsets[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(in.read(4)));
    type_dst[i] = in.read(1) != 0;
    in.skip(1);
  }
  for (std::size_t i = 0; i < h.timecnt; ++i) {
    if (indices[i] >= h.typecnt) {
      throw std::invalid_argument(fmt::format("time zone {}: bad type index", zone.name_));
    }
    zone.transitions_.push_back(times[i]);
    zone.offsets_.push_back(type_offsets[indices[i]]);
  }
  // RFC 8536: local time before the first transition is type 0.
  zone.initial_offset_ = type_offsets[0];
  return zone;
}

const TimeZone& TimeZone::find(std::string_view name, const std::filesystem::path& dir) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<TimeZone>, std::less<>> cache;
  if (!valid_zone_name(name)) {
    throw std::invalid_argument(
        fmt::format("time zone {} is not a valid IANA name", quote_for_message(name)));
  }
  const std::string key = fmt::format("{}\n{}", dir.string(), name);
  std::lock_guard lock(mu);
  if (const auto found = cache.find(key); found != cache.end()) return *found->second;
  std::ifstream file(dir / std::string(name), std::ios::binary);
  std::ostringstream data;
  if (!file || !(data << file.rdbuf())) {
    throw std::invalid_argument(fmt::format("unknown time zone {}", quote_for_message(name)));
  }
  auto zone = std::make_unique<TimeZone>(parse(std::string(name), data.str()));
  return *cache.emplace(key, std::move(zone)).first->second;
}

std::chrono::seconds TimeZone::offset_at(WallTime at) const noexcept {
  const std::int64_t t = std::chrono::floor<std::chrono::seconds>(at.time_since_epoch()).count();
  const auto after = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  if (after == transitions_.begin()) return std::chrono::seconds(initial_offset_);
  return std::chrono::seconds(offsets_[static_cast<std::size_t>(after - transitions_.begin() - 1)]);
}

WallTime TimeZone::to_utc(std::chrono::sys_seconds local) const noexcept {
  // Two fixed-point steps settle on the offset in force at the answer (one change away at most).
  WallTime guess{local.time_since_epoch()};
  guess -= offset_at(guess);
  const WallTime second = WallTime{local.time_since_epoch()} - offset_at(guess);
  if (offset_at(second) + second.time_since_epoch() ==
      std::chrono::duration_cast<WallTime::duration>(local.time_since_epoch())) {
    return second;
  }
  // In a gap: no instant shows `local`; take the moment the clocks jump.
  return std::max(guess, second);
}

}  // namespace keel::notifier
