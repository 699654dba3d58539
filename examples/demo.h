// The demo tour: each pattern registers one demo that shows its behaviour with real numbers.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace keel::demo {

struct Demo {
  std::string name;         // what `keel-demo NAME` takes
  std::string description;  // one line for `keel-demo --list`
  std::function<void()> run;
};

// Every demo, in tour order.
const std::vector<Demo>& all_demos();

// Section heading printed by the demos.
void heading(const std::string& title);

// Writes a demo's output file (a chart) into $KEEL_DEMO_DIR, or the temporary directory, and
// returns its path.
std::filesystem::path write_demo_file(const std::string& name, const std::string& contents);

}  // namespace keel::demo
