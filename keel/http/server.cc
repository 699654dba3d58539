#include "keel/http/server.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "keel/core/internal/log.h"

namespace keel::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

class Session;

double seconds_between(std::chrono::steady_clock::time_point from,
                       std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

struct Server::Impl {
  Impl(Router r, ServerOptions o) : router(std::move(r)), options(std::move(o)) {}

  Response dispatch(Request& request);
  void accept();
  void count(const Request& request, const Response& response,
             std::chrono::steady_clock::time_point began);

  Router router;
  ServerOptions options;
  std::atomic<bool> ready{true};
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> connection_count{0};
  std::atomic<std::uint64_t> request_count{0};
  std::uint16_t bound_port = 0;
  bool started = false;
  bool stopped = false;
  std::mutex lifecycle;  // start/stop

  std::mutex sessions_mutex;
  std::condition_variable drained;
  std::map<Session*, std::weak_ptr<Session>> sessions;

  Histogram* latency = nullptr;
  std::vector<std::thread> threads;
  // Declared last: destroyed first, while everything above is still there for the handlers
  // (and sessions) it destroys. The acceptor and the work guard live in optionals for the same
  // reason: they are made in start() and reset in stop().
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) client_ = peer.address();
  }

  ~Session() {
    const std::lock_guard lock(server_.sessions_mutex);
    server_.sessions.erase(this);
    server_.connection_count.fetch_sub(1);
    server_.drained.notify_all();
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    {
      const std::lock_guard lock(server_.sessions_mutex);
      server_.sessions.emplace(this, weak_from_this());
    }
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this()] { self->wait_for_request(); });
  }

  // From stop(): closes the connection now if it waits for a request (on its strand).
  void close_if_idle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->close();
    });
  }
  void close_now() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  const ServerOptions& options() const { return server_.options; }

  void wait_for_request() {
    idle_ = true;
    if (server_.stopping.load()) return close();
    if (buffer_.size() > 0) return read_header();  // pipelined bytes already here
    stream_.expires_after(options().idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          if (ec) return self->close();
          self->buffer_.commit(n);
          self->read_header();
        });
  }

  void read_header() {
    idle_ = false;
    began_ = std::chrono::steady_clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    stream_.expires_after(options().header_timeout);
    beast_http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec == beast_http::error::header_limit) {
      return refuse(Status::request_header_fields_too_large, "headers_too_large",
                    fmt::format("the request headers exceed {} bytes", options().max_header_bytes));
    }
    if (ec == beast_http::error::body_limit) return refuse_body();
    if (ec.category() == beast_http::make_error_code(beast_http::error::bad_target).category() &&
        ec != beast_http::error::end_of_stream && ec != beast_http::error::partial_message) {
      return refuse(Status::bad_request, "bad_request", "the request is not valid HTTP/1.1");
    }
    if (ec) return close();  // timeout, reset, end of stream
    const auto length = parser_->content_length();
    if (length && *length > options().max_body_bytes) return refuse_body();
    stream_.expires_after(options().body_timeout);
    beast_http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code error, std::size_t) { self->on_body(error); });
  }

  void on_body(beast::error_code ec) {
    if (ec == beast_http::error::body_limit) return refuse_body();
    if (ec) return close();
    handle();
  }

  void refuse_body() {
    refuse(Status::payload_too_large, "body_too_large",
           fmt::format("the request body exceeds {} bytes", options().max_body_bytes));
  }

  void handle() {
    try {
      respond();
    } catch (...) {
      // Past the handler (which dispatch() guards): a response that cannot be serialised, an
      // allocation. Never let it out of the I/O thread; drop the connection.
      keel::internal::logger().error("http: could not answer a request: {}",
                                     keel::internal::describe(std::current_exception()));
      close();
    }
  }

  void respond() {
    Request request{.message = parser_->release(), .client_address = client_, .params = {}};
    const bool head = request.method() == Method::head;
    Response response = server_.dispatch(request);
    server_.count(request, response, began_);
    const bool keep_alive = request.message.keep_alive() && !server_.stopping.load();
    response.version(request.message.version());
    response.keep_alive(keep_alive);
    response.set(Field::server, options().server_name);
    const unsigned status = response.result_int();
    if (status == 204 || status == 304 || status < 200) {
      response.body().clear();  // no body, and no Content-Length, for these statuses
      response.erase(Field::content_length);
    } else if (head) {
      // The headers a GET would have sent, without the body.
      const std::size_t length = response.body().size();
      response.body().clear();
      response.content_length(length);
    } else {
      response.prepare_payload();
    }
    write(std::move(response), keep_alive ? After::next_request : After::close);
  }

  // A request the server refuses before reading it whole: answer, then close gracefully.
  void refuse(Status status, std::string_view code, std::string message) {
    Response response = error_response(status, code, message);
    response.keep_alive(false);
    response.set(Field::server, options().server_name);
    Request request;
    if (parser_) request.message = parser_->get();
    if (request.method() == Method::head) {
      // A response to HEAD has no body (RFC 9112, 6.3), even a refusal: the client would take
      // the body for the start of the next response.
      const std::size_t length = response.body().size();
      response.body().clear();
      response.content_length(length);
    }
    server_.count(request, response, began_);
    write(std::move(response), After::linger);
  }

  enum class After { next_request, close, linger };

  void write(Response response, After after) {
    response_ = std::move(response);
    stream_.expires_after(options().write_timeout);
    beast_http::async_write(stream_, response_,
                            [self = shared_from_this(), after](beast::error_code ec, std::size_t) {
                              if (ec || after == After::close) return self->close();
                              if (after == After::linger) return self->linger();
                              self->wait_for_request();
                            });
  }

  // Stops sending, then reads and discards what the client still sends (the rest of a refused
  // body) for a moment: closing with unread data would reset the connection, and the client
  // could lose the response before reading it.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    drain();
  }
  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Server::Impl& server_;
  asio::ip::address client_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  Response response_;
  std::array<char, 4096> discard_{};
  std::chrono::steady_clock::time_point began_{};
  bool idle_ = true;
  bool closed_ = false;
};

}  // namespace

Response Server::Impl::dispatch(Request& request) {
  const bool get = request.method() == Method::get || request.method() == Method::head;
  if (get && request.path() == "/healthz") {
    return ready.load() && !stopping.load()
               ? text_response(Status::ok, "ok\n")
               : text_response(Status::service_unavailable, "not ready\n");
  }
  if (get && options.metrics != nullptr && request.path() == "/metrics") {
    return text_response(Status::ok, options.metrics->render(), MetricsRegistry::kContentType);
  }
  try {
    return router.route(request);
  } catch (const HttpError& e) {
    return error_response(e.status(), e.code(), e.what());
  } catch (...) {
    keel::internal::logger().error("http: {} {} failed: {}", request.message.method_string(),
                                   request.path(),
                                   keel::internal::describe(std::current_exception()));
    return error_response(Status::internal_server_error, "internal", "internal server error");
  }
}

void Server::Impl::count(const Request& request, const Response& response,
                         std::chrono::steady_clock::time_point began) {
  request_count.fetch_add(1);
  if (options.metrics == nullptr) return;
  options.metrics
      ->counter("http_requests_total", "HTTP requests served, by method and status",
                {{"method", std::string(request.message.method_string())},
                 {"status", std::to_string(response.result_int())}})
      .inc();
  latency->observe(seconds_between(began, std::chrono::steady_clock::now()));
}

void Server::Impl::accept() {
  acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      // Out of file descriptors, say: wait a little instead of spinning on the error.
      keel::internal::logger().warn("http: accept failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(acceptor->get_executor());
      timer->expires_after(std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) {
        if (acceptor->is_open()) accept();
      });
      return;
    }
    if (connection_count.load() >= options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      connection_count.fetch_add(1);
      std::make_shared<Session>(std::move(socket), *this)->start();
    }
    accept();
  });
}

Server::Server(Router router, ServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(router), std::move(options))) {
  const ServerOptions& o = impl_->options;
  if (o.threads == 0) throw std::invalid_argument("http::Server: threads must be >= 1");
  if (o.max_header_bytes == 0 || o.max_body_bytes == 0 || o.max_connections == 0) {
    throw std::invalid_argument("http::Server: the size limits must be positive");
  }
  for (const Duration d : {o.idle_timeout, o.header_timeout, o.body_timeout, o.write_timeout}) {
    if (d <= Duration::zero()) throw std::invalid_argument("http::Server: timeouts must be positive");
  }
  if (o.metrics != nullptr) {
    impl_->latency = &o.metrics->histogram(
        "http_request_duration_seconds", "Time from the first byte of a request to its response",
        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
  }
}

Server::~Server() { stop(Duration::zero()); }

void Server::start() {
  Impl& impl = *impl_;
  const std::lock_guard lock(impl.lifecycle);
  if (impl.started) throw std::logic_error("http::Server: already started");
  const tcp::endpoint endpoint(asio::ip::make_address(impl.options.host), impl.options.port);
  // On a strand: the accept handler and stop()'s close never run at the same time.
  impl.acceptor.emplace(asio::make_strand(impl.ioc));
  impl.acceptor->open(endpoint.protocol());
  impl.acceptor->set_option(asio::socket_base::reuse_address(true));
  impl.acceptor->bind(endpoint);  // throws std::system_error (boost::system::system_error)
  impl.acceptor->listen(asio::socket_base::max_listen_connections);
  impl.bound_port = impl.acceptor->local_endpoint().port();
  impl.work.emplace(impl.ioc.get_executor());
  impl.started = true;
  impl.accept();
  for (std::size_t i = 0; i < impl.options.threads; ++i) {
    impl.threads.emplace_back([&impl] {
      for (;;) {
        try {
          impl.ioc.run();
          return;
        } catch (...) {  // a handler threw past every guard: log it, keep serving
          keel::internal::logger().error("http: an I/O handler threw: {}",
                                         keel::internal::describe(std::current_exception()));
        }
      }
    });
  }
}

std::uint16_t Server::port() const noexcept { return impl_->bound_port; }

void Server::set_ready(bool ready) noexcept { impl_->ready.store(ready); }

std::size_t Server::connections() const noexcept { return impl_->connection_count.load(); }

std::uint64_t Server::requests() const noexcept { return impl_->request_count.load(); }

void Server::stop(Duration grace) {
  Impl& impl = *impl_;
  if (impl.ioc.get_executor().running_in_this_thread()) {
    // It would wait for the request this thread is serving, then join itself.
    throw std::logic_error("http::Server::stop: called from one of the server's own threads");
  }
  const std::lock_guard lock(impl.lifecycle);
  if (!impl.started || impl.stopped) return;
  impl.stopped = true;
  impl.stopping.store(true);
  asio::post(impl.acceptor->get_executor(), [&impl] {
    beast::error_code ec;
    impl.acceptor->close(ec);
  });
  // Acts outside the lock: dropping the last reference to a session runs its destructor, which
  // takes the lock.
  const auto each_session = [&impl](auto action) {
    std::vector<std::shared_ptr<Session>> live;
    {
      const std::lock_guard sessions_lock(impl.sessions_mutex);
      for (auto& [raw, weak] : impl.sessions) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (const auto& session : live) action(*session);
  };
  // Idle connections close now; busy ones finish their request (answered Connection: close).
  each_session([](Session& s) { s.close_if_idle(); });
  {
    std::unique_lock sessions_lock(impl.sessions_mutex);
    impl.drained.wait_for(sessions_lock, grace,
                          [&impl] { return impl.connection_count.load() == 0; });
  }
  each_session([](Session& s) { s.close_now(); });
  impl.work.reset();
  for (std::thread& thread : impl.threads) thread.join();
  impl.threads.clear();
}

}  // namespace keel::http
