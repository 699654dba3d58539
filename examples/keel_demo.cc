// keel-demo: the tour. `keel-demo` runs every demo in order, `keel-demo NAME` runs one,
// `keel-demo --list` lists them.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <exception>

#include "examples/demo.h"

int main(int argc, char** argv) {
  CLI::App app{"keel-demo: watch keel's system-design patterns behave"};
  std::vector<std::string> names;
  bool list = false;
  app.add_option("demo", names, "Demos to run (default: all, in order)");
  app.add_flag("-l,--list", list, "List the demos and exit");
  CLI11_PARSE(app, argc, argv);

  const auto& demos = keel::demo::all_demos();
  if (list) {
    for (const auto& d : demos) fmt::print("{:<14} {}\n", d.name, d.description);
    return 0;
  }
  std::vector<const keel::demo::Demo*> selected;
  for (const auto& name : names) {
    auto it =
        std::find_if(demos.begin(), demos.end(), [&](const auto& d) { return d.name == name; });
    if (it == demos.end()) {
      fmt::print(stderr, "keel-demo: no demo called '{}' (see keel-demo --list)\n", name);
      return 2;
    }
    selected.push_back(&*it);
  }
  if (selected.empty()) {
    for (const auto& d : demos) selected.push_back(&d);
  }
  for (const auto* d : selected) {
    fmt::print("\n=== {} — {} ===\n", d->name, d->description);
    try {
      d->run();
    } catch (const std::exception& e) {
      fmt::print(stderr, "keel-demo: demo '{}' failed: {}\n", d->name, e.what());
      return 1;
    }
  }
  return 0;
}
