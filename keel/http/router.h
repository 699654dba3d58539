// keel::http::Router: maps a method and a path to a handler.
//
//   Router router;
//   router.add(Method::post, "/api/v1/links", create_link);
//   router.add(Method::get, "/api/v1/links/{code}", get_link);
//   router.add(Method::get, "/{code}", follow);          // request.param("code")
//   router.add(Method::get, "/{code}+", stats_page);     // a parameter with a literal suffix
//
// Patterns are '/'-separated segments. A segment is a literal, or `{name}` optionally followed
// by a literal suffix; a parameter matches one non-empty segment. Literal segments win over
// parameters at each level, so /healthz is never taken for a code. A path that matches no
// pattern gets 404; one that matches with another method gets 405 with an Allow header. HEAD
// is served by the GET handler when no HEAD route exists (the server drops the body).
//
// Thread safety: add() during set-up only; route() may then run on any number of threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/message.h"

namespace keel::http {

using Handler = std::function<Response(Request&)>;

class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Throws std::invalid_argument for a pattern that does not start with '/', has an empty
  // segment, an unclosed or empty {name}, or the same method and pattern twice.
  Router& add(Method method, std::string_view pattern, Handler handler);

  // Finds the handler, fills request.params, and runs it. 404/405 as described above.
  Response route(Request& request) const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
};

}  // namespace keel::http
