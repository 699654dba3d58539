// A small domain for the tests of the write and read sides (test-only, not installed): bank
// accounts that are opened, credited and debited, with no overdraft beyond a limit.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/projection.h"

namespace keel::cqrs::testing {

class Account : public Aggregate {
 public:
  void open(std::string_view owner, std::int64_t overdraft_limit) {
    if (opened_) throw CommandRejected("the account is already open");
    raise("AccountOpened", {{"owner", owner}, {"overdraft_limit", overdraft_limit}});
  }
  void deposit(std::int64_t amount) {
    require_open();
    raise("Deposited", {{"amount", amount}});
  }
  void withdraw(std::int64_t amount) {
    require_open();
    if (balance_ - amount < -overdraft_limit_) {
      throw CommandRejected("insufficient funds: the overdraft limit would be exceeded");
    }
    raise("Withdrawn", {{"amount", amount}});
  }

  std::int64_t balance() const { return balance_; }
  bool opened() const { return opened_; }
  int events_applied() const { return events_applied_; }
  bool restored() const { return restored_; }

 private:
  void require_open() const {
    if (!opened_) throw CommandRejected("the account is not open");
  }

  void apply(std::string_view type, const boost::json::value& data) override {
    ++events_applied_;
    if (type == "AccountOpened") {
      opened_ = true;
      overdraft_limit_ = data.at("overdraft_limit").as_int64();
    } else if (type == "Deposited") {
      balance_ += data.at("amount").as_int64();
    } else if (type == "Withdrawn") {
      balance_ -= data.at("amount").as_int64();
    }
  }

  std::optional<boost::json::value> snapshot() const override {
    return boost::json::value{
        {"opened", opened_}, {"balance", balance_}, {"overdraft_limit", overdraft_limit_}};
  }
  void restore(const boost::json::value& state) override {
    restored_ = true;
    opened_ = state.at("opened").as_bool();
    balance_ = state.at("balance").as_int64();
    overdraft_limit_ = state.at("overdraft_limit").as_int64();
  }

  bool opened_ = false;
  std::int64_t balance_ = 0;
  std::int64_t overdraft_limit_ = 0;
  int events_applied_ = 0;
  bool restored_ = false;
};

// A read model: the balance of every account, with its checkpoint, in memory.
class Balances final : public Projection {
 public:
  std::uint64_t checkpoint() override {
    std::lock_guard lock(mutex_);
    return checkpoint_;
  }
  void apply(const RecordedEvent& event) override {
    std::lock_guard lock(mutex_);
    const boost::json::value data = boost::json::parse(event.data);
    if (event.type == "AccountOpened") balances_[event.stream] = 0;
    if (event.type == "Deposited") balances_[event.stream] += data.at("amount").as_int64();
    if (event.type == "Withdrawn") balances_[event.stream] -= data.at("amount").as_int64();
    checkpoint_ = event.position;
  }
  void reset() override {
    std::lock_guard lock(mutex_);
    balances_.clear();
    checkpoint_ = 0;
  }
  std::map<std::string, std::int64_t> all() {
    std::lock_guard lock(mutex_);
    return balances_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::int64_t> balances_;  // GUARDED_BY(mutex_)
  std::uint64_t checkpoint_ = 0;                  // GUARDED_BY(mutex_)
};

}  // namespace keel::cqrs::testing
