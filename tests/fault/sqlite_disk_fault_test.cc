// keel's SQLite stores on a full disk and on a read-only database file: each write that cannot
// be made fails with a clear error (keel::BackendError from SQLite, nothing else, no crash),
// what was committed before is all there afterwards, and the file passes PRAGMA
// integrity_check. Covered: the shortener's link store, the cqrs event store, the saga log and
// the notifier's queue.
//
// How the faults are made, in a forked child that writes while the test watches:
// - Disk full, everywhere: setrlimit(RLIMIT_FSIZE) with SIGXFSZ ignored, so a write past the limit
// fails
//   with EFBIG (or writes short) exactly as it would on a full file system, at the system-call
//   level SQLite sees. It needs no privilege, works in any container, and fails real writes of
//   the database and its WAL. (SQLite's max_page_count only fakes SQLITE_FULL inside SQLite and
//   misses the WAL.) SQLite reports EFBIG as a disk I/O error.
// - Disk full, where the test may mount (root): a 1 MiB tmpfs that really fills up (ENOSPC),
//   which SQLite reports as SQLITE_FULL. Skipped, with the reason, where mounting is refused.
// - Read-only file: the file belongs to root with mode 0644, and the child runs as `nobody`
//   (as root, chmod alone changes nothing: root writes anyway). Not root: the file is made 0444.
//
// Each child reports on a pipe, one line per event: "ok <i>" after record i is committed,
// "error <kind> <message>" for a failed write, "read <yes|no>" for a read afterwards.
#include <fmt/format.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "case_studies/notification_system/sqlite_store.h"
#include "case_studies/url_shortener/link_store.h"
#include "keel/core/errors.h"
#include "keel/sqlite/database.h"
#include "keel/sqlite/event_store.h"
#include "keel/sqlite/saga_log.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

// A store as the tests see it: write record i (throws when it cannot), and find record i.
struct Store {
  std::function<void(int)> write;
  std::function<bool(int)> has;
};

// Records of ~1 KiB: the limit below takes tens to hundreds of them, depending on the store's
// pages per transaction.
std::string filler(int i) { return fmt::format("{}-{}", i, std::string(1000, 'x')); }

struct StoreKind {
  std::string name;
  std::function<Store(const std::string& path)> open;
};

// Names the parameter in test listings.
void PrintTo(const StoreKind& kind, std::ostream* out) { *out << kind.name; }

std::vector<StoreKind> store_kinds() {
  using namespace std::chrono_literals;
  return {
      {"link_store",
       [](const std::string& path) {
         auto store = std::make_shared<shortener::SqliteLinkStore>(path);
         return Store{[store](int i) {
                        if (!store->insert({.code = fmt::format("c{}", i),
                                            .url = "https://example.com/" + filler(i)})) {
                          throw std::logic_error("code taken");
                        }
                      },
                      [store](int i) { return store->find(fmt::format("c{}", i)).has_value(); }};
       }},
      {"event_store",
       [](const std::string& path) {
         auto store = std::make_shared<sqlite::SqliteEventStore>(path);
         return Store{
             [store](int i) {
               const cqrs::NewEvent event{.type = "Filled",
                                          .data = fmt::format(R"({{"x":"{}"}})", filler(i))};
               store->append(fmt::format("s-{}", i), cqrs::ExpectedVersion::no_stream(),
                             std::span(&event, 1));
             },
             [store](int i) { return store->read_stream(fmt::format("s-{}", i)).size() == 1; }};
       }},
      {"saga_log",
       [](const std::string& path) {
         auto log = std::make_shared<sqlite::SqliteSagaLog>(path);
         return Store{[log](int i) {
                        log->append({.saga_id = fmt::format("saga-{}", i),
                                     .saga_name = "fill",
                                     .event = saga::SagaEvent::started,
                                     .context = {{"x", filler(i)}}});
                      },
                      [log](int i) { return log->history(fmt::format("saga-{}", i)).size() == 1; }};
       }},
      {"notifier_store",
       [](const std::string& path) {
         auto store = std::make_shared<notifier::SqliteNotificationStore>(path);
         return Store{
             [store](int i) {
               notifier::Notification n;
               n.id = fmt::format("ntf_{:024}", i);
               n.user_id = "user-1";
               n.category = "billing";
               n.body = filler(i);
               n.fingerprint = "f";
               notifier::Delivery d;
               d.id = fmt::format("dlv_{:024}", i);
               d.notification_id = n.id;
               d.channel = notifier::Channel::sms;
               n.deliveries.push_back(d);
               store->insert(n, WallTime{});
             },
             [store](int i) { return store->find(fmt::format("ntf_{:024}", i)).has_value(); }};
       }},
  };
}

struct ChildReport {
  std::string wait_status = {};
  std::set<int> committed = {};
  std::vector<std::string> errors = {};  // "<kind> <message>"
  std::string read = {};                 // "yes", "no" or empty
};

// Forks; the child runs `body` with a function to report lines, then exits 0. The test process
// is single-threaded here, so the child may use the allocator and SQLite freely.
ChildReport run_child(const std::function<void(const std::function<void(std::string)>&)>& body) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    auto report = [fd = pipe_fds[1]](std::string line) {
      line += '\n';
      [[maybe_unused]] const auto n = ::write(fd, line.data(), line.size());
    };
    try {
      body(report);
    } catch (const std::exception& e) {
      report(fmt::format("error uncaught {}", e.what()));
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ChildReport report;
  report.wait_status = describe_wait_status(status);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("ok ")) report.committed.insert(std::stoi(line.substr(3)));
    if (line.starts_with("error ")) report.errors.push_back(line.substr(6));
    if (line.starts_with("read ")) report.read = line.substr(5);
  }
  return report;
}

// Writes records from `first` until `attempts` writes have failed, reporting each.
void write_until_failures(Store& store, int first, int attempts,
                          const std::function<void(std::string)>& report) {
  int failures = 0;
  for (int i = first; failures < attempts && i < first + 100000; ++i) {
    try {
      store.write(i);
      report(fmt::format("ok {}", i));
    } catch (const BackendError& e) {
      ++failures;
      report(fmt::format("error backend {}", e.what()));
    } catch (const std::exception& e) {
      ++failures;
      report(fmt::format("error other {}", e.what()));
    }
  }
}

std::string integrity_of(const std::string& path) {
  sqlite::Database db(path);
  sqlite::Statement check = db.prepare("PRAGMA integrity_check");
  std::string result;
  while (check.step()) result += check.column_text(0);
  return result;
}

class FaultSqliteDiskTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  TempDir dir_{"keel-fault-sqlite"};
};

TEST_P(FaultSqliteDiskTest, DiskFullIsAClearErrorAndLosesNothingCommitted) {
  const std::string path = (dir_.path() / "store.db").string();
  const StoreKind& kind = GetParam();
  const ChildReport child = run_child([&](const auto& report) {
    ::signal(SIGXFSZ, SIG_IGN);        // EFBIG from write() instead of a killed process
    const rlim_t limit = 1024 * 1024;  // below the WAL's 4 MiB auto-checkpoint
    const rlimit fsize{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &fsize) != 0) throw std::runtime_error("setrlimit");
    Store store = kind.open(path);
    write_until_failures(store, 0, 5, report);
    // The store still answers reads on a full disk.
    report(fmt::format("read {}", store.has(0) ? "yes" : "no"));
  });
  ASSERT_EQ(child.wait_status, "exited with code 0") << "the writer crashed on a full disk";
  ASSERT_FALSE(child.errors.empty()) << "the limit was never reached";
  ASSERT_GE(child.committed.size(), 5u) << "the limit was hit too early to test anything";
  for (const std::string& error : child.errors) {
    EXPECT_TRUE(error.starts_with("backend sqlite")) << error;
  }
  EXPECT_EQ(child.read, "yes") << "a full disk must not stop reads";

  // After the disk has room again: nothing committed is lost, the file is sound, and the store
  // takes writes again.
  EXPECT_EQ(integrity_of(path), "ok");
  Store store = kind.open(path);
  int lost = 0;
  for (const int i : child.committed) lost += store.has(i) ? 0 : 1;
  EXPECT_EQ(lost, 0) << "committed records lost, of " << child.committed.size();
  EXPECT_NO_THROW(store.write(1'000'000));
  EXPECT_TRUE(store.has(1'000'000));
  RecordProperty("committed", static_cast<int>(child.committed.size()));
  RecordProperty("first_error", child.errors.front());
  std::printf("%s: %zu records committed before the disk filled; first error: %s\n",
              kind.name.c_str(), child.committed.size(), child.errors.front().c_str());
}

// A 1 MiB tmpfs mounted for the test: a truly full file system (ENOSPC, which SQLite reports
// as SQLITE_FULL, where RLIMIT_FSIZE's EFBIG is SQLITE_IOERR_WRITE). Needs the right to mount
// (root with CAP_SYS_ADMIN); skipped, saying so, where that is refused.
class Tmpfs {
 public:
  explicit Tmpfs(const std::filesystem::path& at) : at_(at) {
    std::filesystem::create_directory(at_);
    mounted_ = ::mount("tmpfs", at_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") == 0;
    error_ = mounted_ ? 0 : errno;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  int error() const { return error_; }

 private:
  std::filesystem::path at_;
  bool mounted_ = false;
  int error_ = 0;
};

TEST_P(FaultSqliteDiskTest, FullFileSystemIsSqliteFullAndLosesNothingCommitted) {
  const Tmpfs tmpfs(dir_.path() / "tmpfs");
  if (!tmpfs.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(tmpfs.error())
                 << "); DiskFullIsAClearErrorAndLosesNothingCommitted covers a full disk";
  }
  const std::string path = (dir_.path() / "tmpfs" / "store.db").string();
  const StoreKind& kind = GetParam();
  const ChildReport child = run_child([&](const auto& report) {
    Store store = kind.open(path);
    write_until_failures(store, 0, 5, report);
    report(fmt::format("read {}", store.has(0) ? "yes" : "no"));
  });
  ASSERT_EQ(child.wait_status, "exited with code 0") << "the writer crashed on a full disk";
  ASSERT_FALSE(child.errors.empty()) << "the file system never filled";
  ASSERT_GE(child.committed.size(), 5u);
  for (const std::string& error : child.errors) {
    EXPECT_TRUE(error.starts_with("backend sqlite")) << error;
  }
  EXPECT_NE(child.errors.front().find("full"), std::string::npos) << child.errors.front();
  EXPECT_EQ(child.read, "yes") << "a full disk must not stop reads";
  EXPECT_EQ(integrity_of(path), "ok");
  Store store = kind.open(path);
  int lost = 0;
  for (const int i : child.committed) lost += store.has(i) ? 0 : 1;
  EXPECT_EQ(lost, 0) << "committed records lost, of " << child.committed.size();
  std::printf("%s on a full tmpfs: %zu records committed; first error: %s\n", kind.name.c_str(),
              child.committed.size(), child.errors.front().c_str());
}

TEST_P(FaultSqliteDiskTest, ReadOnlyFileIsAClearErrorAndStaysIntact) {
  const std::filesystem::path shared = dir_.path() / "shared";
  std::filesystem::create_directory(shared);
  // `nobody` may pass through the test's directory to reach the file.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  // The directory is writable by anyone (the reader may create its -shm file); the file is not.
  std::filesystem::permissions(shared, std::filesystem::perms::all);
  const std::string path = (shared / "store.db").string();
  const StoreKind& kind = GetParam();
  constexpr int kRecords = 20;
  {
    Store store = kind.open(path);
    for (int i = 0; i < kRecords; ++i) store.write(i);
  }
  const bool as_root = ::geteuid() == 0;
  std::optional<UserIds> nobody = find_user("nobody");
  if (as_root) {
    ASSERT_TRUE(nobody) << "no user 'nobody' to run the reader as";
  } else {
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::group_read |
                                           std::filesystem::perms::others_read);
  }
  const ChildReport child = run_child([&](const auto& report) {
    if (as_root && (::setgroups(0, nullptr) != 0 || ::setgid(nobody->gid) != 0 ||
                    ::setuid(nobody->uid) != 0)) {
      throw std::runtime_error("cannot become nobody");
    }
    try {
      Store store = kind.open(path);
      write_until_failures(store, 1000, 3, report);
      report(fmt::format("read {}", store.has(0) ? "yes" : "no"));
    } catch (const BackendError& e) {
      report(fmt::format("error backend {}", e.what()));  // refused at open: as clear
    }
  });
  ASSERT_EQ(child.wait_status, "exited with code 0") << "the writer crashed on a read-only file";
  EXPECT_TRUE(child.committed.empty()) << "a write to a read-only file reported success";
  ASSERT_FALSE(child.errors.empty());
  for (const std::string& error : child.errors) {
    EXPECT_TRUE(error.starts_with("backend sqlite")) << error;
  }
  EXPECT_EQ(integrity_of(path), "ok");
  Store store = kind.open(path);
  for (int i = 0; i < kRecords; ++i) EXPECT_TRUE(store.has(i)) << "record " << i << " lost";
  EXPECT_FALSE(store.has(1000));
  RecordProperty("error", child.errors.front());
  std::printf("%s: read-only file: %s (reads: %s)\n", kind.name.c_str(),
              child.errors.front().c_str(),
              child.read.empty() ? "not reached" : child.read.c_str());
}

INSTANTIATE_TEST_SUITE_P(Stores, FaultSqliteDiskTest, ::testing::ValuesIn(store_kinds()),
                         [](const auto& kind) { return kind.param.name; });

}  // namespace
}  // namespace keel::testing
