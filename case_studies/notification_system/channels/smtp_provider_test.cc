// SmtpProvider against a real SMTP server on 127.0.0.1 (testdata/smtp_sink.py on Debian's
// python3-aiosmtpd), which hands every message it accepts to Python's email parser: the test
// checks what an independent MIME implementation reads, not our own bytes.
#include "case_studies/notification_system/channels/smtp_provider.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "case_studies/notification_system/channels/test_sinks.h"
#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;
namespace json = boost::json;

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// testdata/smtp_sink.py in a temp dir, on a free port.
class SmtpSink {
 public:
  explicit SmtpSink(std::vector<std::string> extra_args = {}) : dir_("keel-smtp-sink") {
    if (!std::filesystem::exists(KEEL_NOTIFIER_PYTHON3)) {
      throw std::runtime_error("python3 not found: install the Debian package 'python3'");
    }
    const auto check = keel::testing::run_command({KEEL_NOTIFIER_PYTHON3, "-c", "import aiosmtpd"});
    if (check.exit_code != 0) {
      throw std::runtime_error(
          "aiosmtpd not found: install the Debian package 'python3-aiosmtpd' (scripts/bootstrap "
          "installs it)");
    }
    std::filesystem::create_directory(dir_.path() / "out");
    keel::testing::LaunchedServer launched = keel::testing::launch_on_free_port({
        .name = "smtp_sink.py",
        .argv =
            [&](std::uint16_t port) {
              std::vector<std::string> argv = {KEEL_NOTIFIER_PYTHON3,
                                               KEEL_NOTIFIER_SMTP_SINK,
                                               "--port",
                                               std::to_string(port),
                                               "--out",
                                               (dir_.path() / "out").string()};
              argv.insert(argv.end(), extra_args.begin(), extra_args.end());
              return argv;
            },
        .log_file = dir_.path() / "sink.log",
        .run_as_user = std::nullopt,
        .ready = accepts_connections,
    });
    process_ = std::move(launched.process);
    port_ = launched.port;
  }

  std::string url() const { return fmt::format("smtp://127.0.0.1:{}", port_); }

  // The summaries of the messages received, in order.
  std::vector<json::object> messages() const {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "out")) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<json::object> out;
    for (const auto& file : files) {
      std::ifstream in(file);
      std::stringstream text;
      text << in.rdbuf();
      out.push_back(json::parse(text.str()).as_object());
    }
    return out;
  }

  std::string raw(std::size_t index) const {
    std::ifstream in(dir_.path() / "out" / fmt::format("msg-{:04}.eml", index + 1),
                     std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  keel::testing::TempDir dir_;
  keel::testing::ChildProcess process_;
  std::uint16_t port_ = 0;
};

Message email(std::string to = "alice@example.com") {
  return {.notification_id = "n1",
          .delivery_id = "d1",
          .idempotency_key = "n1:email",
          .channel = Channel::email,
          .user_id = "u1",
          .to = {.email = std::move(to)},
          .category = "security",
          .priority = "critical",
          .subject = "Password reset",
          .body = "Use the link below.\nIt expires in 1 hour."};
}

class SmtpProviderTest : public ::testing::Test {
 protected:
  SmtpProvider provider(const SmtpSink& s, std::string username = "", std::string password = "") {
    return SmtpProvider({.url = s.url(),
                         .from = "noreply@keel.example",
                         .from_name = "Keel Alerts",
                         .username = std::move(username),
                         .password = std::move(password),
                         .timeout = 5s},
                        clock);
  }
  ManualClock clock;
};

std::string header(const json::object& message, std::string_view name) {
  const json::value* v = message.at("headers").as_object().if_contains(name);
  return v == nullptr ? std::string("<absent>") : std::string(v->as_string());
}

TEST_F(SmtpProviderTest, DeliversAWellFormedMessage) {
  SmtpSink sink;
  SmtpProvider p = provider(sink);
  const SendResult r = p.send(email());
  ASSERT_EQ(r.outcome, SendOutcome::sent) << r.error;

  const auto messages = sink.messages();
  ASSERT_EQ(messages.size(), 1U);
  const json::object& m = messages[0];
  EXPECT_EQ(m.at("mail_from"), "noreply@keel.example");
  EXPECT_EQ(m.at("rcpt_tos"), json::array({"alice@example.com"}));
  EXPECT_EQ(header(m, "From"), "Keel Alerts <noreply@keel.example>");
  EXPECT_EQ(header(m, "To"), "alice@example.com");
  EXPECT_EQ(header(m, "Subject"), "Password reset");
  EXPECT_EQ(header(m, "Date"), "Thu, 01 Jan 2026 00:00:00 +0000") << "the clock's wall time";
  EXPECT_EQ(header(m, "Message-ID"), r.provider_message_id);
  EXPECT_EQ(header(m, "Message-ID"), SmtpProvider::message_id(email(), "noreply@keel.example"));
  EXPECT_EQ(header(m, "MIME-Version"), "1.0");
  EXPECT_EQ(m.at("content_type"), "text/plain");
  EXPECT_EQ(m.at("charset"), "utf-8");
  EXPECT_EQ(m.at("body"), "Use the link below.\nIt expires in 1 hour.\n");
  EXPECT_EQ(m.at("defects"), json::array()) << "Python's parser found nothing wrong";
}

TEST_F(SmtpProviderTest, NonAsciiSubjectAndBodyArriveIntact) {
  SmtpSink sink;
  SmtpProvider p = provider(sink);
  Message m = email();
  m.subject =
      "Réinitialisation du mot de passe — パスワードのリセット — this subject is long enough to "
      "fold";
  m.body = "Bonjour Élise,\n\n.\n.leading dot\nVotre code : 42 — 日本語\n";
  const SendResult r = p.send(m);
  ASSERT_EQ(r.outcome, SendOutcome::sent) << r.error;
  const auto messages = sink.messages();
  ASSERT_EQ(messages.size(), 1U);
  EXPECT_EQ(header(messages[0], "Subject"), m.subject);
  EXPECT_EQ(messages[0].at("body").as_string(), m.body)
      << "a lone '.' line must survive (dot-stuffing)";
  EXPECT_EQ(messages[0].at("defects"), json::array());
  const std::string raw = sink.raw(0);
  EXPECT_THAT(raw, HasSubstr("Subject: =?UTF-8?B?"));
  EXPECT_THAT(raw, Not(HasSubstr("Élise"))) << "8-bit text is encoded on the wire";
}

TEST_F(SmtpProviderTest, RejectedMailboxIsPermanent) {
  SmtpSink sink({"--reject", "nobody@example.com=550 5.1.1 No such mailbox"});
  SmtpProvider p = provider(sink);
  const SendResult r = p.send(email("nobody@example.com"));
  EXPECT_EQ(r.outcome, SendOutcome::permanent) << r.error;
  EXPECT_THAT(r.error, HasSubstr("550"));
  EXPECT_THAT(sink.messages(), IsEmpty());
}

TEST_F(SmtpProviderTest, TemporaryRejectionIsTransient) {
  SmtpSink sink({"--reject", "busy@example.com=451 4.3.0 Try again later"});
  SmtpProvider p = provider(sink);
  const SendResult r = p.send(email("busy@example.com"));
  EXPECT_EQ(r.outcome, SendOutcome::transient) << r.error;
  EXPECT_THAT(r.error, HasSubstr("451"));
}

TEST_F(SmtpProviderTest, ConnectionRefusedIsTransient) {
  std::uint16_t closed = 0;
  {
    testing::SilentPort port;  // bound, then closed: nothing listens there any more
    closed = port.port();
  }
  SmtpProvider p({.url = fmt::format("smtp://127.0.0.1:{}", closed), .from = "a@keel.example"},
                 clock);
  const SendResult r = p.send(email());
  EXPECT_EQ(r.outcome, SendOutcome::transient) << r.error;
}

TEST_F(SmtpProviderTest, SilentServerTimesOutTransiently) {
  testing::SilentPort silent;
  SmtpProvider p({.url = fmt::format("smtp://127.0.0.1:{}", silent.port()),
                  .from = "a@keel.example",
                  .timeout = 500ms},
                 clock);
  const SendResult r = p.send(email());
  EXPECT_EQ(r.outcome, SendOutcome::transient) << r.error;
  EXPECT_THAT(r.error, HasSubstr("imed out"));
}

TEST_F(SmtpProviderTest, AuthenticatesAndNeverShowsThePassword) {
  SmtpSink sink({"--auth", "mailer:correct-horse"});
  SmtpProvider good = provider(sink, "mailer", "correct-horse");
  const SendResult ok = good.send(email());
  ASSERT_EQ(ok.outcome, SendOutcome::sent) << ok.error;
  EXPECT_EQ(sink.messages().at(0).at("authenticated_as"), "mailer");

  SmtpProvider bad = provider(sink, "mailer", "wrong-battery");
  const SendResult denied = bad.send(email());
  EXPECT_EQ(denied.outcome, SendOutcome::transient) << "our credentials, not the recipient";
  EXPECT_THAT(denied.error, HasSubstr("authentication failed"));
  EXPECT_THAT(denied.error, Not(HasSubstr("wrong-battery")));
  EXPECT_EQ(sink.messages().size(), 1U);
}

TEST_F(SmtpProviderTest, RequiredTlsThatIsNotOfferedFailsTransientlyAndSendsNothing) {
  SmtpSink sink;  // no STARTTLS
  SmtpProvider p({.url = sink.url(), .from = "a@keel.example", .require_tls = true}, clock);
  const SendResult r = p.send(email());
  EXPECT_EQ(r.outcome, SendOutcome::transient) << r.error;
  EXPECT_THAT(sink.messages(), IsEmpty()) << "never in clear text";
}

TEST_F(SmtpProviderTest, InvalidRecipientIsPermanentWithoutConnecting) {
  SmtpSink sink;
  SmtpProvider p = provider(sink);
  const SendResult r = p.send(email("alice@example.com>\r\nRCPT TO:<bob@example.com"));
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("invalid email address"));
  EXPECT_THAT(sink.messages(), IsEmpty());
}

}  // namespace
}  // namespace keel::notifier
