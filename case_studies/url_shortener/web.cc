#include "case_studies/url_shortener/web.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "keel/core/encoding.h"

namespace keel::shortener {

namespace {

using http::Field;
using http::Method;
using http::Status;

// No inline script or style, nothing from another origin, no plugins, no <base> tricks, no
// framing (clickjacking of the Copy button).
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";
// HTML is revalidated on every load (the ETag makes that a 304), so a new binary's page shows
// at once; the files it refers to may be reused for an hour.
constexpr std::string_view kHtmlCacheControl = "no-cache";
constexpr std::string_view kStaticCacheControl = "public, max-age=3600";

std::string_view content_type_of(std::string_view name) {
  static const std::map<std::string_view, std::string_view> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".json", "application/json"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"}};
  const std::size_t dot = name.rfind('.');
  if (dot != std::string_view::npos) {
    if (const auto it = kTypes.find(name.substr(dot)); it != kTypes.end()) return it->second;
  }
  return "application/octet-stream";
}

// One embedded file, ready to serve.
struct Asset {
  std::string_view bytes;
  std::string_view content_type;
  std::string etag;  // a strong validator: the content's digest, quoted
  bool html = false;
};

using Assets = std::map<std::string, Asset, std::less<>>;

std::shared_ptr<const Assets> load_assets() {
  auto assets = std::make_shared<Assets>();
  for (const WebFile& file : embedded_web_files()) {
    const std::string_view type = content_type_of(file.name);
    assets->emplace(std::string(file.name),
                    Asset{.bytes = file.bytes,
                          .content_type = type,
                          .etag = fmt::format("\"{}\"", sha256_hex(file.bytes).substr(0, 32)),
                          .html = type.starts_with("text/html")});
  }
  return assets;
}

const Asset& require(const Assets& assets, std::string_view name) {
  const auto it = assets.find(name);
  if (it == assets.end()) {
    throw std::logic_error(
        fmt::format("add_web_routes: web/{} is not embedded (see CMakeLists.txt)", name));
  }
  return it->second;
}

// True when the request's If-None-Match names `etag` (or is "*"). Weak comparison, as RFC 9110
// asks for If-None-Match: W/"x" matches "x".
bool not_modified(const http::Request& request, std::string_view etag) {
  const std::optional<std::string_view> header = request.header(Field::if_none_match);
  if (!header) return false;
  return *header == "*" || header->find(etag) != std::string_view::npos;
}

// `asset` with `status`, its headers, and 304 for a matching If-None-Match on a 200.
http::Response serve(const http::Request& request, const Asset& asset, Status status = Status::ok) {
  const bool conditional = status == Status::ok && not_modified(request, asset.etag);
  http::Response response(conditional ? Status::not_modified : status, 11);
  response.set("X-Content-Type-Options", "nosniff");
  response.set(Field::cache_control, asset.html ? kHtmlCacheControl : kStaticCacheControl);
  if (status == Status::ok) response.set(Field::etag, asset.etag);
  if (asset.html) {
    response.set("Content-Security-Policy", kContentSecurityPolicy);
    response.set("Referrer-Policy", "same-origin");
    response.set(Field::x_frame_options, "DENY");
  }
  if (!conditional) {
    response.set(Field::content_type, asset.content_type);
    response.body().assign(asset.bytes.begin(), asset.bytes.end());
  }
  response.prepare_payload();
  return response;
}

}  // namespace

void add_web_routes(http::Router& router, Shortener& shortener) {
  const std::shared_ptr<const Assets> assets = load_assets();
  const Asset& index = require(*assets, "index.html");
  const Asset& stats = require(*assets, "stats.html");

  router.add(Method::get, "/", [assets, &index](http::Request& r) { return serve(r, index); });
  // The page itself fetches the numbers; the status tells crawlers and tools whether the link
  // exists, and the page says "not found" when its fetch gets a 404.
  router.add(Method::get, "/{code}+", [assets, &stats, &shortener](http::Request& r) {
    const std::optional<Link> link = shortener.find(r.param("code"));
    return serve(r, stats, link && !link->deleted ? Status::ok : Status::not_found);
  });
  router.add(Method::get, "/static/{file}", [assets](http::Request& r) {
    const auto it = assets->find(r.param("file"));
    if (it == assets->end()) {
      return http::error_response(Status::not_found, "not_found", "no such file");
    }
    return serve(r, it->second);
  });
}

}  // namespace keel::shortener
