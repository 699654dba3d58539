// LinkLoad: traffic against a running keel-shortener for the fault tests. Writer threads create
// links (each URL new, so every success is a 201) and a follower thread follows the links already
// acknowledged, while the test kills the service or restarts an engine under it.
//
// Every 201 is recorded; a code issued twice is a test failure. A redirect that answers, but
// not with 302 to the recorded URL, is counted by status (an engine being down may make it a
// 500) and kept for the test to judge; requests that get no answer at all (the process is gone,
// or a timeout) are counted apart. After each failed exchange the thread opens a new connection.
//
// Thread safety: all members may be called from any thread while the load runs.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"

namespace keel::testing {

class LinkLoad {
 public:
  // `port` is asked before each new connection (a restarted service listens elsewhere).
  explicit LinkLoad(std::function<std::uint16_t()> port) : port_(std::move(port)) {}
  ~LinkLoad() { stop(); }

  // Starts `writers` writer threads and one follower; URLs carry `tag` to stay new.
  void start(int writers, const std::string& tag) {
    stop_ = false;
    for (int t = 0; t < writers; ++t) {
      threads_.emplace_back(
          [this, t, tag] { create_until_stopped(fmt::format("{}/t{}", tag, t)); });
    }
    threads_.emplace_back([this] { follow_until_stopped(); });
  }

  void stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  std::size_t acknowledged() const {
    const std::lock_guard lock(mutex_);
    return url_of_code_.size();
  }
  std::map<std::string, std::string> links() const {
    const std::lock_guard lock(mutex_);
    return url_of_code_;
  }
  // Answers other than 201 to a creation / 302-to-the-URL to a redirect, by HTTP status.
  std::map<int, std::size_t> failed_creations() const {
    const std::lock_guard lock(mutex_);
    return failed_creations_;
  }
  std::map<int, std::size_t> failed_redirects() const {
    const std::lock_guard lock(mutex_);
    return failed_redirects_;
  }
  // The body of the last failed answer, for messages.
  std::string last_failure() const {
    const std::lock_guard lock(mutex_);
    return last_failure_;
  }
  std::size_t unanswered() const { return unanswered_.load(); }
  std::size_t redirects() const { return redirects_.load(); }

  // Every acknowledged link redirects to its URL on the service at `port`; returns the number
  // that do not (and reports the first few as test failures).
  std::size_t count_lost(std::uint16_t port) const {
    http::Client client("127.0.0.1", port);
    std::size_t lost = 0;
    for (const auto& [code, url] : links()) {
      const http::Response r = client.get(fmt::format("/{}", code));
      if (r.result() != http::Status::found || r[http::Field::location] != url) {
        if (++lost <= 5) {
          ADD_FAILURE() << "acknowledged link /" << code << " -> " << url << " answered "
                        << r.result_int() << " " << r[http::Field::location] << " " << r.body();
        }
      }
    }
    return lost;
  }

 private:
  void create_until_stopped(const std::string& tag) {
    std::unique_ptr<http::Client> client;
    for (int i = 0; !stop_.load(); ++i) {
      const std::string url = fmt::format("https://example.com/{}/{}", tag, i);
      try {
        if (!client) client = std::make_unique<http::Client>("127.0.0.1", port_(), kTimeout);
        const http::Response r = client->request(http::Method::post, "/api/v1/links",
                                                 fmt::format(R"({{"url": "{}"}})", url),
                                                 {{"Content-Type", "application/json"}});
        if (r.result() != http::Status::created) {
          record_failure(failed_creations_, r);
          continue;
        }
        const std::string code(boost::json::parse(r.body()).at("code").as_string());
        const std::lock_guard lock(mutex_);
        if (!url_of_code_.emplace(code, url).second) {
          ADD_FAILURE() << "code " << code << " issued twice: " << url << " and "
                        << url_of_code_[code];
        } else {
          codes_.push_back(code);
        }
      } catch (const std::exception&) {
        ++unanswered_;
        client.reset();
      }
    }
  }

  void follow_until_stopped() {
    std::unique_ptr<http::Client> client;
    for (std::size_t i = 0; !stop_.load(); ++i) {
      std::string code, url;
      {
        const std::lock_guard lock(mutex_);
        if (!codes_.empty()) {
          code = codes_[i % codes_.size()];
          url = url_of_code_.at(code);
        }
      }
      if (code.empty()) {
        std::this_thread::yield();
        continue;
      }
      try {
        if (!client) client = std::make_unique<http::Client>("127.0.0.1", port_(), kTimeout);
        const http::Response r = client->get(fmt::format("/{}", code));
        ++redirects_;
        if (r.result() != http::Status::found || r[http::Field::location] != url) {
          if (r.result() == http::Status::found) {
            ADD_FAILURE() << "/" << code << " redirected to " << r[http::Field::location]
                          << " instead of " << url;
          }
          record_failure(failed_redirects_, r);
        }
      } catch (const std::exception&) {
        ++unanswered_;
        client.reset();
      }
    }
  }

  void record_failure(std::map<int, std::size_t>& by_status, const http::Response& r) {
    const std::lock_guard lock(mutex_);
    ++by_status[static_cast<int>(r.result_int())];
    last_failure_ = fmt::format("{} {}", r.result_int(), r.body());
  }

  static constexpr auto kTimeout = std::chrono::seconds(5);
  std::function<std::uint16_t()> port_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> url_of_code_;  // guarded by mutex_
  std::vector<std::string> codes_;                  // guarded by mutex_; in creation order
  std::map<int, std::size_t> failed_creations_;     // guarded by mutex_
  std::map<int, std::size_t> failed_redirects_;     // guarded by mutex_
  std::string last_failure_;                        // guarded by mutex_
  std::atomic<std::size_t> unanswered_{0};
  std::atomic<std::size_t> redirects_{0};
};

}  // namespace keel::testing
