# kiln - the two commands of the README, plus bench and the sanitizer build.
# Everything builds with CMake + Ninja; this file only strings the steps together.

BUILD      ?= build
ASAN_BUILD ?= build-asan
DATA       ?= ./kiln-data
LISTEN     ?= 127.0.0.1:8080
JOBS       ?= $(shell nproc)

.PHONY: all deps build run test test-asan bench fuzz format check-style clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@ninja -C $(BUILD) -j $(JOBS)

run: build
	@mkdir -p $(DATA)
	./$(BUILD)/kiln serve --data $(DATA) --listen $(LISTEN)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# clang with AddressSanitizer + UndefinedBehaviorSanitizer, same tests
test-asan: deps
	@CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
		-DKL_SANITIZE=address,undefined >/dev/null
	@ninja -C $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

bench:
	@KL_BENCH_DEPS=1 bash scripts/install-deps.sh
	@cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C build-bench -j $(JOBS)
	@bash bench/run.sh build-bench
	@bash bench/ingest.sh build-bench

# libFuzzer targets (clang): FUZZ_SECONDS per target
FUZZ_SECONDS ?= 60
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DKL_FUZZ=ON >/dev/null
	@ninja -C build-fuzz -j $(JOBS)
	@bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

check-style:
	@bash scripts/check-style.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-bench build-fuzz
