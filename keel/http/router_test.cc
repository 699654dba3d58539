#include "keel/http/router.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <stdexcept>
#include <string>

namespace keel::http {
namespace {

using ::testing::HasSubstr;

Request make(Method method, std::string target, std::string body = {}) {
  Request request;
  request.message.method(method);
  request.message.target(target);
  request.message.body() = std::move(body);
  return request;
}

Handler says(std::string what) {
  return [what](Request& request) {
    std::string text = what;
    for (const auto& [name, value] : request.params) text += fmt::format(" {}={}", name, value);
    return text_response(Status::ok, text);
  };
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_.add(Method::get, "/", says("home"))
        .add(Method::post, "/api/v1/links", says("create"))
        .add(Method::get, "/api/v1/links/{code}", says("show"))
        .add(Method::delete_, "/api/v1/links/{code}", says("delete"))
        .add(Method::get, "/{code}", says("follow"))
        .add(Method::get, "/{code}+", says("stats"))
        .add(Method::get, "/static/app.js", says("js"));
  }
  std::string body(Method method, std::string target) {
    Request request = make(method, std::move(target));
    return router_.route(request).body();
  }
  Router router_;
};

TEST_F(RouterTest, LiteralsWinOverParametersAndParametersAreCaptured) {
  EXPECT_EQ(body(Method::get, "/"), "home");
  EXPECT_EQ(body(Method::post, "/api/v1/links"), "create");
  EXPECT_EQ(body(Method::get, "/api/v1/links/abc1234"), "show code=abc1234");
  EXPECT_EQ(body(Method::delete_, "/api/v1/links/abc1234"), "delete code=abc1234");
  EXPECT_EQ(body(Method::get, "/abc1234"), "follow code=abc1234");
  EXPECT_EQ(body(Method::get, "/abc1234+"), "stats code=abc1234");
  EXPECT_EQ(body(Method::get, "/static/app.js"), "js");
  EXPECT_EQ(body(Method::get, "/abc1234?utm=x"), "follow code=abc1234");  // query is not path
}

TEST_F(RouterTest, HeadIsServedByGet) { EXPECT_EQ(body(Method::head, "/abc"), "follow code=abc"); }

TEST_F(RouterTest, UnknownPathsAre404AndWrongMethods405WithAllow) {
  Request missing = make(Method::get, "/api/v2/nothing");
  const Response not_found = router_.route(missing);
  EXPECT_EQ(not_found.result(), Status::not_found);
  EXPECT_THAT(not_found.body(), HasSubstr(R"("code":"not_found")"));

  Request wrong = make(Method::put, "/api/v1/links/abc");
  const Response not_allowed = router_.route(wrong);
  EXPECT_EQ(not_allowed.result(), Status::method_not_allowed);
  EXPECT_EQ(not_allowed[Field::allow], "DELETE, GET, HEAD");

  Request empty_segment = make(Method::get, "/api/v1/links/");
  EXPECT_EQ(router_.route(empty_segment).result(), Status::not_found);
  Request double_slash = make(Method::get, "//x");
  EXPECT_EQ(router_.route(double_slash).result(), Status::not_found);
}

TEST(Router, AllowListsTheMethodsOfEveryRouteMatchingThePath) {
  Router router;
  router.add(Method::get, "/links/{code}", says("get"));
  router.add(Method::delete_, "/links/{id}", says("delete"));
  Request post = make(Method::post, "/links/x");
  const Response r = router.route(post);
  EXPECT_EQ(r.result(), Status::method_not_allowed);
  EXPECT_EQ(r[Field::allow], "DELETE, GET, HEAD");
  Request del = make(Method::delete_, "/links/x");
  EXPECT_EQ(router.route(del).body(), "delete id=x");
}

TEST_F(RouterTest, BadPatternsAreRefused) {
  Router router;
  EXPECT_THROW(router.add(Method::get, "", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "no-slash", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/a//b", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/{open", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/{}", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/a{b}", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/{a}{b}", says("x")), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/x", Handler{}), std::invalid_argument);
  router.add(Method::get, "/x", says("x"));
  EXPECT_THROW(router.add(Method::get, "/x", says("again")), std::invalid_argument);
}

TEST(HttpMessage, RequestAccessorsAndJsonErrors) {
  Request request = make(Method::post, "/p/q?a=1&b=2", R"({"url": "https://example.com"})");
  request.message.set(Field::content_type, "application/json");
  request.message.set("X-Custom", "yes");
  EXPECT_EQ(request.path(), "/p/q");
  EXPECT_EQ(request.query(), "a=1&b=2");
  EXPECT_EQ(request.header(Field::content_type), "application/json");
  EXPECT_EQ(request.header("x-custom"), "yes");
  EXPECT_FALSE(request.header("missing").has_value());
  EXPECT_EQ(request.json().at("url").as_string(), "https://example.com");
  EXPECT_THROW(request.param("nope"), std::out_of_range);

  Request broken = make(Method::post, "/", "{not json");
  try {
    broken.json();
    FAIL() << "expected HttpError";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), Status::bad_request);
    EXPECT_EQ(e.code(), "invalid_json");
  }
  const Response error = error_response(Status::conflict, "alias_taken", "the alias \"x\" is taken");
  EXPECT_EQ(boost::json::parse(error.body()),
            boost::json::parse(R"({"error":{"code":"alias_taken","message":"the alias \"x\" is taken"}})"));
  EXPECT_EQ(error[Field::content_type], "application/json");
  const Response redirect = redirect_response(Status::found, "https://example.com/");
  EXPECT_EQ(redirect[Field::location], "https://example.com/");
}

}  // namespace
}  // namespace keel::http
