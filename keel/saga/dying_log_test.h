// DyingLog: an InMemorySagaLog whose writes stop (throw, as a process that dies stops writing)
// at its n-th append while armed; healed, it is the log a new coordinator finds. Test-only.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "keel/saga/saga_log.h"

namespace keel::saga::testing {

class DyingLog final : public SagaLog {
 public:
  // Lets `n` more appends through, then throws on every one until heal().
  void die_at(int n) { left_ = n; }
  void heal() { left_ = -1; }
  void append(const SagaRecord& record) override {
    if (left_ == 0) throw std::runtime_error("the coordinator died");
    if (left_ > 0) --left_;
    inner_.append(record);
  }
  std::vector<SagaRecord> history(std::string_view id) override { return inner_.history(id); }
  std::vector<std::string> unfinished() override { return inner_.unfinished(); }
  std::vector<std::string> failed() override { return inner_.failed(); }
  bool try_claim(std::string_view id) override { return inner_.try_claim(id); }
  void release(std::string_view id) override { inner_.release(id); }

 private:
  int left_ = -1;
  InMemorySagaLog inner_;
};

}  // namespace keel::saga::testing
