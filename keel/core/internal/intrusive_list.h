// An intrusive doubly linked list of hooks (not public): entries embed a Hook and a list links
// them without allocating. Head = most recent. Used by the caches' policies and by the keyed rate
// limiter's LRU order. Not thread-safe: its owner holds a lock.
#pragma once

#include <cstddef>

namespace keel::internal {

struct Hook {
  Hook* prev = nullptr;
  Hook* next = nullptr;
};

class HookList {
 public:
  void push_front(Hook* h) noexcept {
    h->prev = nullptr;
    h->next = head_;
    (head_ != nullptr ? head_->prev : tail_) = h;
    head_ = h;
    ++size_;
  }
  // Appends as the least recent.
  void push_back_oldest(Hook* h) noexcept {
    h->next = nullptr;
    h->prev = tail_;
    (tail_ != nullptr ? tail_->next : head_) = h;
    tail_ = h;
    ++size_;
  }
  void remove(Hook* h) noexcept {
    (h->prev != nullptr ? h->prev->next : head_) = h->next;
    (h->next != nullptr ? h->next->prev : tail_) = h->prev;
    h->prev = h->next = nullptr;
    --size_;
  }
  void move_to_front(Hook* h) noexcept {
    if (head_ == h) return;
    remove(h);
    push_front(h);
  }
  Hook* back() const noexcept { return tail_; }
  Hook* front() const noexcept { return head_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept {
    head_ = tail_ = nullptr;
    size_ = 0;
  }

 private:
  Hook* head_ = nullptr;
  Hook* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace keel::internal
