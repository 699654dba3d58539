#include "keel/nats/internal/subjects.h"

#include <fmt/format.h>

#include <algorithm>

namespace keel::nats::internal {
namespace {

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> tokens;
  for (std::size_t start = 0;;) {
    const std::size_t dot = text.find('.', start);
    tokens.push_back(text.substr(start, dot - start));
    if (dot == std::string_view::npos) return tokens;
    start = dot + 1;
  }
}

std::string join(const std::vector<std::string_view>& tokens, std::size_t count) {
  return fmt::format("{}",
                     fmt::join(tokens.begin(), tokens.begin() + static_cast<long>(count), "."));
}

}  // namespace

SubjectPlan subjects_for(std::string_view pattern) {
  const std::vector<std::string_view> tokens = split(pattern);
  const auto hash = std::find(tokens.begin(), tokens.end(), "#");
  if (hash == tokens.end()) return {{std::string(pattern)}, false};

  const auto k = static_cast<std::size_t>(hash - tokens.begin());
  const bool only_hashes_follow = std::all_of(hash, tokens.end(), [](auto t) { return t == "#"; });
  SubjectPlan plan;
  plan.filter_locally = !only_hashes_follow;
  if (k == 0) {
    plan.subjects.emplace_back(">");  // every topic has at least one token
    return plan;
  }
  const std::string prefix = join(tokens, k);
  if (only_hashes_follow) plan.subjects.push_back(prefix);
  plan.subjects.push_back(fmt::format("{}.>", prefix));
  return plan;
}

std::string escape_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (keep) {
      out += c;
    } else {
      out += fmt::format("_{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out.empty() ? std::string("_") : out;
}

std::string_view first_token(std::string_view topic) { return topic.substr(0, topic.find('.')); }

}  // namespace keel::nats::internal
