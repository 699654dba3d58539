// keel::resilience::decorate: wraps a callable in resilience layers, in the order it reads.
//
//   auto guarded = keel::resilience::decorate(fetch).with(retry).with(breaker).with(bulkhead);
//   Page page = guarded(url);
//
// The first .with is the outermost layer: guarded(url) runs retry.call(...), whose attempts run
// breaker.call(...), which runs bulkhead.call(...), which runs fetch(url). So here each retry
// attempt passes the breaker first (an open breaker fails it fast, and Retry does not retry
// CircuitBreakerOpen), and only calls let through by the breaker take a bulkhead slot.
//
// A layer is any object with a member template `call(F&& f, Args&&... args)` that runs
// f(args...) as its policy decides (once, again, or not at all) and returns or rethrows what f
// does: Retry, CircuitBreaker and Bulkhead are layers. Layers are held by reference: they must
// outlive the decorated callable (and are shared by every copy of it). The callable itself is
// copied or moved in. Results pass through unchanged, references included.
//
// Thread safety: a Decorated is as thread-safe as its callable and its layers (keel's are).
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace keel::resilience {

template <class F, class... Layers>
class Decorated {
 public:
  // Made by decorate() and with().
  Decorated(F f, std::tuple<Layers&...> layers) : f_(std::move(f)), layers_(std::move(layers)) {}

  // A callable that runs f inside the layers of this one, then `layer` (the new innermost).
  template <class Layer>
  Decorated<F, Layers..., Layer> with(Layer& layer) const& {
    return {f_, std::tuple_cat(layers_, std::tie(layer))};
  }
  template <class Layer>
  Decorated<F, Layers..., Layer> with(Layer& layer) && {
    return {std::move(f_), std::tuple_cat(layers_, std::tie(layer))};
  }
  // A temporary layer would be destroyed before the decorated callable runs.
  template <class Layer>
  void with(const Layer&& layer) = delete;

  template <class... Args>
  decltype(auto) operator()(Args&&... args) {
    return run<0>(*this, std::forward<Args>(args)...);
  }
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    return run<0>(*this, std::forward<Args>(args)...);
  }

 private:
  // Layer I runs the rest of the chain (layers I+1.. then f) as its callable.
  template <std::size_t I, class Self, class... Args>
  static decltype(auto) run(Self& self, Args&&... args) {
    if constexpr (I == sizeof...(Layers)) {
      return std::invoke(self.f_, std::forward<Args>(args)...);
    } else {
      return std::get<I>(self.layers_)
          .call(
              [&self](auto&&... inner) -> decltype(auto) {
                return run<I + 1>(self, std::forward<decltype(inner)>(inner)...);
              },
              std::forward<Args>(args)...);
    }
  }

  F f_;
  std::tuple<Layers&...> layers_;
};

// Starts a chain around a copy of `f` (moved in when an rvalue); add layers with .with().
template <class F>
Decorated<std::decay_t<F>> decorate(F&& f) {
  return {std::forward<F>(f), std::tuple<>{}};
}

}  // namespace keel::resilience
