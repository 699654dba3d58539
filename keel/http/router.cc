#include "keel/http/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include "keel/core/encoding.h"

namespace keel::http {

struct Router::Node {
  struct Param {
    std::string name;
    std::string suffix;  // literal text after {name} in the segment
    std::unique_ptr<Node> node;
  };
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  std::vector<Param> params;  // longest suffix first, so "{code}+" is tried before "{code}"
  std::map<Method, Handler> handlers;
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&& other) noexcept : root_(std::exchange(other.root_, std::make_unique<Node>())) {}
Router& Router::operator=(Router&& other) noexcept {
  root_ = std::exchange(other.root_, std::make_unique<Node>());
  return *this;
}

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path == "/") return segments;
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

std::string allowed_methods(const std::map<Method, Handler>& handlers) {
  std::vector<std::string> names;
  for (const auto& [method, handler] : handlers) {
    names.emplace_back(beast_http::to_string(method));
    if (method == Method::get && !handlers.contains(Method::head)) names.emplace_back("HEAD");
  }
  std::sort(names.begin(), names.end());
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

Router& Router::add(Method method, std::string_view pattern, Handler handler) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(
        fmt::format("Router: the pattern {} {}", quote_for_message(pattern), why));
  };
  if (pattern.empty() || pattern.front() != '/') throw bad("does not start with '/'");
  if (!handler) throw bad("has no handler");
  Node* node = root_.get();
  for (const std::string_view segment : split_path(pattern)) {
    if (segment.empty()) throw bad("has an empty segment");
    if (segment.front() != '{') {
      if (segment.find_first_of("{}") != std::string_view::npos) {
        throw bad("has a '{' or '}' inside a literal segment");
      }
      auto& child = node->literals[std::string(segment)];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
      continue;
    }
    const std::size_t close = segment.find('}');
    if (close == std::string_view::npos) throw bad("has an unclosed '{'");
    const std::string_view name = segment.substr(1, close - 1);
    const std::string_view suffix = segment.substr(close + 1);
    if (name.empty()) throw bad("has an empty parameter name");
    if (suffix.find_first_of("{}") != std::string_view::npos) {
      throw bad("has more than one parameter in a segment");
    }
    auto it = std::find_if(node->params.begin(), node->params.end(), [&](const Node::Param& p) {
      return p.name == name && p.suffix == suffix;
    });
    if (it == node->params.end()) {
      node->params.push_back({std::string(name), std::string(suffix), std::make_unique<Node>()});
      std::stable_sort(node->params.begin(), node->params.end(),
                       [](const Node::Param& a, const Node::Param& b) {
                         return a.suffix.size() > b.suffix.size();
                       });
      it = std::find_if(node->params.begin(), node->params.end(), [&](const Node::Param& p) {
        return p.name == name && p.suffix == suffix;
      });
    }
    node = it->node.get();
  }
  if (!node->handlers.emplace(method, std::move(handler)).second) {
    throw bad(fmt::format("is already routed for {}", beast_http::to_string(method)));
  }
  return *this;
}

Response Router::route(Request& request) const {
  const std::vector<std::string_view> segments = split_path(request.path());
  const Method method = request.method();
  std::map<Method, Handler> allowed;  // methods of every node matching the path (for 405)
  std::vector<std::pair<std::string, std::string>> params;

  // Depth-first, literals before parameters; returns the handler of the first full match that
  // has the method.
  const std::function<const Handler*(const Node&, std::size_t)> search =
      [&](const Node& node, std::size_t depth) -> const Handler* {
    if (depth == segments.size()) {
      auto it = node.handlers.find(method);
      if (it == node.handlers.end() && method == Method::head) it = node.handlers.find(Method::get);
      if (it != node.handlers.end()) return &it->second;
      for (const auto& [other, handler] : node.handlers) allowed.emplace(other, handler);
      return nullptr;
    }
    const std::string_view segment = segments[depth];
    if (segment.empty()) return nullptr;
    if (const auto literal = node.literals.find(segment); literal != node.literals.end()) {
      if (const Handler* found = search(*literal->second, depth + 1)) return found;
    }
    for (const Node::Param& param : node.params) {
      if (segment.size() <= param.suffix.size() || !segment.ends_with(param.suffix)) continue;
      params.emplace_back(param.name,
                          std::string(segment.substr(0, segment.size() - param.suffix.size())));
      if (const Handler* found = search(*param.node, depth + 1)) return found;
      params.pop_back();
    }
    return nullptr;
  };

  if (const Handler* handler = search(*root_, 0)) {
    request.params = std::move(params);
    return (*handler)(request);
  }
  if (!allowed.empty()) {
    Response response = error_response(
        Status::method_not_allowed, "method_not_allowed",
        fmt::format("{} is not allowed here", beast_http::to_string(method)));
    response.set(Field::allow, allowed_methods(allowed));
    return response;
  }
  return error_response(Status::not_found, "not_found", "no such resource");
}

}  // namespace keel::http
