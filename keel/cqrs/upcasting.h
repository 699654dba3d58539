// keel::cqrs::Upcasters: reading old events in their current shape. Events are stored forever,
// but the code that reads them changes; an upcaster translates an event written by an older
// version of the code (a field renamed, a unit changed, a type split) into the shape the
// aggregates and projections know today, as it is read. The log itself is never rewritten.
//
//   cqrs::Upcasters upcasters;
//   // v1 "Deposited" held {"amount": 12.5} in euros; v2 "DepositedV2" holds {"cents": 1250}.
//   upcasters.add("Deposited", "DepositedV2", [](boost::json::value& data) {
//     const double euros = data.at("amount").to_number<double>();
//     data = {{"cents", std::llround(euros * 100)}};
//   });
//   // v3 "MoneyDeposited" adds a currency.
//   upcasters.add("DepositedV2", "MoneyDeposited", [](boost::json::value& data) {
//     data.as_object()["currency"] = "EUR";
//   });
//   cqrs::Repository accounts(store, {.upcasters = &upcasters});      // aggregate loads
//   cqrs::ProjectionRunner runner(store, balances, {.upcasters = &upcasters});
//   sqlite_store.add_inline_read_model(model, &upcasters);            // inline read models
//
// Chains: upcast() applies the upcaster registered for the event's type; when it returned
// another type that has an upcaster too, that one runs next, and so on (v1 → v2 → v3 above, so
// each upcaster only knows the step from one version to the next). An upcaster that keeps the
// type (a rewrite of the data only) ends the chain: it must recognise the events already in the
// new shape and return them unchanged.
//
// An upcaster may change an event's type, data and metadata; the stream, version, position, id
// and recorded_at are the store's and stay as stored (so checkpoints and expected versions are
// unaffected).
//
// Errors: anything an upcaster throws, and an upcaster that breaks the rules above, surfaces
// as UpcastFailed naming the event; a Repository::load throws it to its caller, a
// ProjectionRunner stops at that event (its checkpoint stays before it), an inline read model
// fails the append that ran it.
//
// Thread safety: register every upcaster first; after that the const members are safe from any
// number of threads (upcasters themselves must then be safe to call concurrently).
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "keel/cqrs/event_store.h"

namespace keel::cqrs {

// Translates one event to a newer shape: takes it as stored (or as the previous upcaster of a
// chain left it) and returns it changed.
using Upcaster = std::function<RecordedEvent(RecordedEvent)>;

// Rewrites an event's data, parsed, in place.
using DataRewrite = std::function<void(boost::json::value& data)>;

// An upcaster threw, or returned an event it must not (see Upcasters); what() names the event.
class UpcastFailed : public std::runtime_error {
 public:
  UpcastFailed(const RecordedEvent& event, std::string_view upcaster_type, const std::string& why);
  const std::string& stream() const noexcept { return stream_; }
  std::uint64_t position() const noexcept { return position_; }
  // The type whose upcaster failed (in a chain, not necessarily the type as stored).
  const std::string& upcaster_type() const noexcept { return upcaster_type_; }

 private:
  std::string stream_;
  std::uint64_t position_;
  std::string upcaster_type_;
};

class Upcasters {
 public:
  // Registers `upcaster` for events of `type`. Throws std::invalid_argument for an empty type,
  // an empty upcaster, or a type that already has one.
  Upcasters& add(std::string type, Upcaster upcaster);
  // Registers an upcaster that renames `type` to `new_type` (which may be `type` itself, for a
  // rewrite of the data only) and, when `rewrite` is given, rewrites the data (parsed JSON).
  // Throws as add() above, and for an empty `new_type`.
  Upcasters& add(std::string type, std::string new_type, DataRewrite rewrite = {});

  // `event` in its latest shape: the chain of upcasters starting at its type applied, or
  // unchanged when its type has none. Throws UpcastFailed when an upcaster throws, changes the
  // stream, version, position, id or recorded_at, returns an empty type, or leads back to a
  // type the chain passed (a cycle).
  RecordedEvent upcast(RecordedEvent event) const;

  // Whether events of `type` are changed by upcast().
  bool handles(std::string_view type) const;
  bool empty() const noexcept { return by_type_.empty(); }
  std::size_t size() const noexcept { return by_type_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  std::unordered_map<std::string, Upcaster, Hash, std::equal_to<>> by_type_;
};

// Calls `use` with `event` in its latest shape — the one step every reader (Repository,
// ProjectionRunner, the SQL stores' inline read models) takes before applying an event. Copies
// the event only when an upcaster changes it; `upcasters` may be null (none).
template <class Use>
decltype(auto) with_upcast(const Upcasters* upcasters, const RecordedEvent& event, Use&& use) {
  if (upcasters == nullptr || !upcasters->handles(event.type)) return use(event);
  const RecordedEvent latest = upcasters->upcast(event);
  return use(latest);
}

}  // namespace keel::cqrs
