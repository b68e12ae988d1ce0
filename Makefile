# The two commands a new user needs: `make demo` and `make test`. Both install what is missing first.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all deps build test demo bench clean test-asan test-asan-parsers fuzz format format-check

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	$(BUILD)/mechscope demo

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build folder.
# scripts/sanitizer/ holds the suppressions (only libtorch / OpenBLAS / libgomp, each with its reason).
ASAN_BUILD ?= build-asan
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMECHSCOPE_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && . ../scripts/sanitizer/env.sh && ctest --output-on-failure -j $(JOBS)

# What CI runs after `make test` (its 30-minute budget has room for this part, not the whole suite):
# the layers that parse a user's files, their tests and the fuzz replay under the same sanitizers.
ASAN_PARSERS_BUILD ?= build-asan-parsers
test-asan-parsers: deps
	cmake -S . -B $(ASAN_PARSERS_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMECHSCOPE_SANITIZE_PARSERS=ON
	cmake --build $(ASAN_PARSERS_BUILD) -j $(JOBS)
	cd $(ASAN_PARSERS_BUILD) && . ../scripts/sanitizer/env.sh && ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (clang) for every parser of a user's file, FUZZ_SECONDS each (tests/fuzz/).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz:
	@MECHSCOPE_FUZZ_DEPS=1 bash scripts/install-deps.sh
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMECHSCOPE_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	FUZZ_JOBS=$(FUZZ_JOBS) bash scripts/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The layout of every C++ file we wrote (.clang-format; third_party/ is kept as its authors wrote it).
# CI runs format-check: it lists the files clang-format would change and fails if there is one.
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.h' | grep -v '^third_party/')
format: deps
	clang-format-14 -i $(FORMAT_FILES)
format-check: deps
	@bad=$$(for f in $(FORMAT_FILES); do clang-format-14 --dry-run -Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not in the layout of .clang-format (run \`make format\`):"; echo "$$bad"; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_FILES)) files in the layout of .clang-format"

bench: build
	cmake --build $(BUILD) --target benches -j $(JOBS)
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
