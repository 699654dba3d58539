// The shortener's web page, served by the binary itself (no outside CDN, no framework):
//
//   GET /                 the page to shorten a URL and copy the result (index.html)
//   GET /{code}+          the stats page of a link: clicks, clicks per day, referrers
//                         (stats.html); 404 with the same page, which says "not found", for a
//                         code that has no live link
//   GET /static/{file}    the page's script, style sheet and icon
//
// The files live in case_studies/url_shortener/web/ and are embedded into the library at build
// time (web/embed.cmake turns each into a byte array), so the binary needs nothing beside it.
// The pages only call the JSON API (api.h) from their script.
//
// Every response carries X-Content-Type-Options: nosniff and an ETag (If-None-Match → 304).
// HTML is sent with Cache-Control: no-cache and the security headers: a Content-Security-Policy
// of default-src 'self' (no inline script or style anywhere), Referrer-Policy: same-origin and
// X-Frame-Options: DENY. Static files are cached for an hour.
//
// Thread safety: add_web_routes() during set-up only; the handlers may run on any number of
// threads.
#pragma once

#include <span>
#include <string_view>

#include "case_studies/url_shortener/shortener.h"
#include "keel/http/router.h"

namespace keel::shortener {

// One file of web/, embedded at build time.
struct WebFile {
  std::string_view name = {};   // "app.js"
  std::string_view bytes = {};  // the file's content
};

// Every embedded file, in the order CMakeLists.txt lists them.
std::span<const WebFile> embedded_web_files();

// Adds GET / , GET /{code}+ and GET /static/{file}. `shortener` (for "is there such a link?")
// must outlive the router.
void add_web_routes(http::Router& router, Shortener& shortener);

}  // namespace keel::shortener
