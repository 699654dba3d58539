#include "keel/ratelimit/internal/atomic_bucket.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit::internal {
namespace {

constexpr std::uint64_t kGenerationMask = 0xF;
constexpr int kGenerationBits = 4;
// Largest C*I accepted (about 2.3 years), and largest |stored time|: stored values stay within
// [-kMaxSpan, kMaxDebt + kMaxSpan] of now, far inside the 60-bit range.
constexpr std::int64_t kMaxSpan = std::int64_t{1} << 56;
constexpr std::int64_t kMaxDebt = std::int64_t{1} << 57;

std::uint64_t pack(std::int64_t stored, std::uint64_t generation) {
  return (static_cast<std::uint64_t>(stored) << kGenerationBits) | generation;
}
std::int64_t unpack(std::uint64_t word) {
  return static_cast<std::int64_t>(word) >> kGenerationBits;  // arithmetic shift (C++20)
}

}  // namespace

BucketParams make_bucket_params(double rate_per_second, std::int64_t capacity,
                                const char* rate_name, const char* capacity_name) {
  require_positive_rate(rate_per_second, rate_name);
  require_positive(capacity, capacity_name);
  const double interval = std::round(1e9 / rate_per_second);
  if (rate_per_second > 1e9) {
    throw std::invalid_argument(fmt::format("{} must be at most 1e9 (one per nanosecond), got {}",
                                            rate_name, rate_per_second));
  }
  if (interval * static_cast<double>(capacity) > static_cast<double>(kMaxSpan)) {
    throw std::invalid_argument(fmt::format("{} {} at {} {} takes over two years to refill",
                                            capacity_name, capacity, rate_name, rate_per_second));
  }
  return {static_cast<std::int64_t>(interval), capacity};
}

AtomicBucket::AtomicBucket(BucketParams params, const Clock& clock)
    : clock_(clock), origin_(clock.now()), initial_(params) {}

AtomicBucket::~AtomicBucket() { delete slots_.load(std::memory_order_acquire); }

const AtomicBucket::Slot& AtomicBucket::slot(std::uint64_t generation) const {
  // REQUIRES: the slots exist (load() reads initial_ until they do).
  return (*slots_.load(std::memory_order_acquire))[generation];
}

void AtomicBucket::start_full() {
  const Snapshot s = load();
  word_.store(pack(stored_from_empty_time(now_ns() - s.params.span(), s.params), 0),
              std::memory_order_release);
}

std::int64_t AtomicBucket::now_ns() const { return (clock_.now() - origin_).count(); }

AtomicBucket::Snapshot AtomicBucket::load() const {
  const std::uint64_t word = word_.load(std::memory_order_acquire);
  if (slots_.load(std::memory_order_acquire) == nullptr) return {word, unpack(word), initial_};
  const Slot& s = slot(word & kGenerationMask);
  return {word, unpack(word),
          BucketParams{s.interval_ns.load(std::memory_order_acquire),
                       s.capacity.load(std::memory_order_acquire)}};
}

bool AtomicBucket::try_store(const Snapshot& expected, std::int64_t stored) {
  std::uint64_t word = expected.word;
  return word_.compare_exchange_strong(word, pack(stored, expected.word & kGenerationMask),
                                       std::memory_order_acq_rel, std::memory_order_acquire);
}

Decision AtomicBucket::describe(bool allowed, std::int64_t now, std::int64_t empty,
                                const BucketParams& p, Duration retry_after) {
  const std::int64_t filled = now - empty;  // tokens, in nanoseconds of refill
  return Decision{
      .allowed = allowed,
      .limit = p.capacity,
      .remaining = filled <= 0 ? 0 : std::min(p.capacity, filled / p.interval_ns),
      .retry_after = retry_after,
      .reset_after = Duration(std::max<std::int64_t>(0, empty + p.span() - now)),
  };
}

Reservation AtomicBucket::reserve(std::int64_t permits, Duration max_wait) {
  require_permits(permits);
  for (;;) {
    const Snapshot s = load();
    const std::int64_t now = now_ns();
    const BucketParams& p = s.params;
    if (permits > p.capacity) break;
    const std::int64_t empty = std::max(empty_time(s.stored, p), now - p.span());
    const std::int64_t next = empty + permits * p.interval_ns;
    const Duration delay(std::max<std::int64_t>(0, next - now));
    if (delay > max_wait || next - now > kMaxDebt) break;
    if (try_store(s, stored_from_empty_time(next, p))) {
      record(Decision{.allowed = true});
      return Reservation(this, permits, delay, to_time_point(now) + delay);
    }
  }
  record(Decision{.allowed = false});
  return Reservation();
}

bool AtomicBucket::refund(std::int64_t permits, TimePoint time_to_act) {
  for (;;) {
    const Snapshot s = load();
    const std::int64_t now = now_ns();
    if (to_time_point(now) >= time_to_act) return false;
    const BucketParams& p = s.params;
    const std::int64_t empty =
        std::max(empty_time(s.stored, p) - permits * p.interval_ns, now - p.span());
    if (try_store(s, stored_from_empty_time(empty, p))) return true;
  }
}

double AtomicBucket::available() const {
  const Snapshot s = load();
  const std::int64_t now = now_ns();
  const std::int64_t empty = std::max(empty_time(s.stored, s.params), now - s.params.span());
  return static_cast<double>(now - empty) / static_cast<double>(s.params.interval_ns);
}

bool AtomicBucket::is_full() const {
  const Snapshot s = load();
  return now_ns() - empty_time(s.stored, s.params) >= s.params.span();
}

double AtomicBucket::rate() const { return 1e9 / static_cast<double>(load().params.interval_ns); }

std::int64_t AtomicBucket::capacity() const { return load().params.capacity; }

template <class MakeNext, class Convert>
void AtomicBucket::change_params(MakeNext make_next, Convert convert) {
  static std::mutex change_mutex;  // parameter changes are rare: one lock for all buckets
  std::lock_guard lock(change_mutex);
  if (slots_.load(std::memory_order_acquire) == nullptr) {
    auto slots = std::make_unique<Slots>();
    (*slots)[0].interval_ns.store(initial_.interval_ns, std::memory_order_relaxed);
    (*slots)[0].capacity.store(initial_.capacity, std::memory_order_relaxed);
    slots_.store(slots.release(), std::memory_order_release);
  }
  for (;;) {
    const Snapshot s = load();
    const BucketParams next = make_next(s.params);
    const std::int64_t now = now_ns();
    const std::int64_t empty = std::max(empty_time(s.stored, s.params), now - s.params.span());
    const std::uint64_t generation = ((s.word & kGenerationMask) + 1) & kGenerationMask;
    Slot& next_slot = (*slots_.load(std::memory_order_relaxed))[generation];
    next_slot.interval_ns.store(next.interval_ns, std::memory_order_relaxed);
    next_slot.capacity.store(next.capacity, std::memory_order_relaxed);
    // Debt scaled by a slower rate could outgrow the 60-bit field: keep it within kMaxDebt.
    const std::int64_t converted =
        std::min<std::int64_t>(convert(now, empty, s.params, next), now + kMaxDebt);
    const std::int64_t stored = stored_from_empty_time(converted, next);
    std::uint64_t word = s.word;
    if (word_.compare_exchange_strong(word, pack(stored, generation), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return;
    }
  }
}

void AtomicBucket::set_rate(double rate_per_second) {
  make_bucket_params(rate_per_second, 1, "rate_per_second", "capacity");  // validates the rate
  const auto make_next = [rate_per_second](const BucketParams& current) {
    return make_bucket_params(rate_per_second, current.capacity, "rate_per_second", "capacity");
  };
  change_params(make_next, [](std::int64_t now, std::int64_t empty, const BucketParams& old,
                              const BucketParams& p) {
    // The same number of tokens (possibly negative: debt), expressed at the new interval.
    const long double tokens =
        static_cast<long double>(now - empty) / static_cast<long double>(old.interval_ns);
    // Clamped so that llround stays in range; the caller caps the debt at kMaxDebt anyway.
    const long double filled =
        std::clamp(tokens * static_cast<long double>(p.interval_ns),
                   -static_cast<long double>(kMaxDebt), static_cast<long double>(kMaxSpan));
    return now - std::llround(filled);
  });
}

void AtomicBucket::set_capacity_impl(std::int64_t capacity, const char* name) {
  require_positive(capacity, name);
  const auto make_next = [capacity, name](const BucketParams& current) {
    if (capacity > kMaxSpan / current.interval_ns) {
      throw std::invalid_argument(
          fmt::format("{} {} takes over two years to refill at the current rate", name, capacity));
    }
    return BucketParams{current.interval_ns, capacity};
  };
  change_params(make_next, [](std::int64_t now, std::int64_t empty, const BucketParams&,
                              const BucketParams& p) {
    // Tokens above the new capacity are dropped; a larger capacity adds none.
    return std::max(empty, now - p.span());
  });
}

}  // namespace keel::ratelimit::internal

namespace keel::ratelimit {

bool Reservation::cancel() {
  if (owner_ == nullptr || settled_) return false;
  settled_ = true;
  return owner_->refund(permits_, time_to_act_);
}

}  // namespace keel::ratelimit
