# Thin wrapper over CMake presets. Every verb runs scripts/bootstrap first, which installs the
# Debian packages that are missing and does nothing when all are there.
.PHONY: bootstrap configure build demo test bench asan tsan sanitize check fuzz format

JOBS ?= $(shell nproc)

bootstrap:
	@scripts/bootstrap

configure: bootstrap
	@cmake --preset release >/dev/null

build: configure
	cmake --build --preset release -j $(JOBS)

demo: build
	build/release/examples/keel-demo

test: build
	ctest --preset release

# Every Google Benchmark suite in turn (figures: the Figures section of each docs/ page).
bench: build
	@for b in build/release/bench/keel_*_benchmark; do echo "== $$b"; $$b || exit 1; done

# Every test under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: bootstrap
	@cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

# The tests labelled `concurrency` under ThreadSanitizer.
tsan: bootstrap
	@cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan

sanitize: asan tsan

# Every libFuzzer target (fuzz/README.md) for FUZZ_SECONDS each, on a copy of its seed corpus;
# fails on any crash or broken property.
FUZZ_SECONDS ?= 60
fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) scripts/fuzz

check: test sanitize

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i
