// Demo of keel/saga: the order saga three times — it succeeds; the payment is declined and the
// reservation is released; the process dies in the middle of the payment (a real crash: a
// forked child calls _exit) and a new coordinator finishes the saga from the SQLite log.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/demo.h"
#include "keel/pubsub.h"
#include "keel/saga.h"
#include "keel/sqlite.h"

namespace keel::demo {
namespace {

using namespace keel::saga;

// The order saga's steps; `say` prints what each service does.
std::vector<SagaStep> order_steps(bool crash_in_payment = false) {
  const auto say = [](std::string_view what) { fmt::print("    {}\n", what); };
  return {
      {"reserve_inventory",
       [say](Context& c) {
         c["reservation_id"] = "R-1001";
         say(fmt::format("inventory: reserved 1 x {} as R-1001",
                         std::string(c.at("product_id").as_string())));
       },
       [say](Context& c) {
         say(fmt::format("inventory: released {} (compensation)",
                         c.contains("reservation_id")
                             ? std::string(c.at("reservation_id").as_string())
                             : std::string("the reservation")));
         c.erase("reservation_id");
       }},
      {"charge_payment",
       [say, crash_in_payment](Context& c) {
         const double amount = c.at("amount").as_double();
         if (c.contains("card_declined")) {
           say(fmt::format("payment: card declined for {:.2f}", amount));
           throw std::runtime_error("card declined");
         }
         say(fmt::format("payment: charged {:.2f} (idempotency key {}/charge_payment)", amount,
                         current_step()->saga_id));
         if (crash_in_payment) {
           say("*** the process dies here, after the charge, before the log records it ***");
           std::fflush(stdout);
           _exit(9);
         }
         c["payment_id"] = "P-77";
       },
       [say](Context&) {
         say(fmt::format("payment: refunded the charge of saga {} (compensation, idempotent)",
                         current_step()->saga_id));
       }},
      {"send_confirmation", [say](Context&) { say("email: order confirmed"); }, no_op},
  };
}

void print_result(const SagaResult& result) {
  fmt::print("  -> {}", to_string(result.status));
  if (!result.failed_step.empty()) {
    fmt::print(" (failed step: {}, error: {})", result.failed_step, result.error);
  }
  fmt::print("\n     completed: [{}]  compensated in order: [{}]\n",
             fmt::join(result.completed_steps, ", "), fmt::join(result.compensated_steps, ", "));
}

}  // namespace

void run_saga_demo() {
  heading("Saga: the order saga, orchestrated");
  {  // the bus (and its scheduler thread) ends before the fork below
    pubsub::EventBus bus;
    std::vector<std::string> events;
    auto audit = bus.subscribe("saga.order.#", [&](const pubsub::Message& m) {
      events.push_back(m.topic.substr(std::string_view("saga.order.").size()));
    });
    Saga order_saga("order", order_steps(), SagaOptions{.bus = &bus});

    fmt::print("1. everything works:\n");
    print_result(order_saga.execute({{"product_id", "A1"}, {"amount", 49.99}}));
    fmt::print("     events on the bus: {}\n", fmt::join(events, " "));

    fmt::print("\n2. the payment is declined: the completed steps are compensated in reverse\n");
    events.clear();
    print_result(
        order_saga.execute({{"product_id", "A1"}, {"amount", 49.99}, {"card_declined", true}}));
    fmt::print("     events on the bus: {}\n", fmt::join(events, " "));
  }

  heading("Saga: a crash mid-saga, recovered from the SQLite log");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("keel-saga-demo-{}", getpid());
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sagas.db").string();
  fmt::print("3. a child process runs the saga with its log in {} and dies:\n", path);
  std::fflush(stdout);
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error("fork failed");
  if (child == 0) {
    sqlite::SqliteSagaLog log(path, {.owner = "node-1"});
    SagaCoordinator coordinator(log);
    coordinator.define("order", order_steps(/*crash_in_payment=*/true));
    coordinator.execute("order", {{"product_id", "B7"}, {"amount", 120.0}}, "order-3");
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  fmt::print("  the child exited with status {}\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  sqlite::SqliteSagaLog log(path, {.owner = "node-1"});  // the node restarts
  fmt::print("  what the log says about order-3 (unfinished: [{}]):\n",
             fmt::join(log.unfinished(), ", "));
  for (const SagaRecord& r : log.history("order-3")) {
    fmt::print("    {:<16} {}\n", to_string(r.event), r.step_name);
  }
  SagaCoordinator coordinator(log);
  coordinator.define("order", order_steps());
  fmt::print(
      "  recover(): backward, compensating every step that started, the one in flight "
      "first\n");
  const RecoveryReport report = coordinator.recover();
  for (const SagaResult& result : report.finished) {
    fmt::print("  {}", result.saga_id);
    print_result(result);
  }
  fmt::print("  unfinished after recovery: {}\n", log.unfinished().size());
  std::filesystem::remove_all(dir);
}

}  // namespace keel::demo
