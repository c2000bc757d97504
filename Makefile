# The README's two commands: `make run` and `make test`. Everything else is CMake.
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DATA ?= ./data
FUZZ_SECONDS ?= 60

.PHONY: run build test unit unit-asan fuzz e2e bench clean

run: build
	./build/kefu --listen $(LISTEN) --data $(DATA)

build:
	@scripts/deps.sh build
	cmake -S . -B build -DKF_TESTS=OFF >/dev/null
	cmake --build build -j$(JOBS)

# The whole suite: gcc build + unit tests, clang ASan/UBSan build + unit tests, fuzzers, and the
# browser end-to-end tests against the sanitized server.
test:
	@scripts/deps.sh test
	$(MAKE) unit unit-asan fuzz e2e

unit:
	CC=gcc cmake -S . -B build-test -DKF_TESTS=ON >/dev/null
	cmake --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure

unit-asan:
	CC=clang cmake -S . -B build-asan -DKF_TESTS=ON -DKF_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure

fuzz: unit-asan
	@for f in build-asan/fuzz_*; do \
	  name=$$(basename $$f); corpus=fuzz/corpus/$${name#fuzz_}; mkdir -p build-asan/corpus-$$name; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-asan/corpus-$$name $$corpus >build-asan/$$name.log 2>&1 \
	    || { tail -50 build-asan/$$name.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build-asan/$$name.log; \
	done

# ASan keeps freed memory in a quarantine (256 MiB by default) that would read as growth in the
# tests that bound the server's memory; a small one still catches use-after-free.
e2e: unit-asan
	ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=8 KEFU_BIN=$(CURDIR)/build-asan/kefu \
	  node --test --test-concurrency=1 tests/e2e/

# The short standard load suite (bench/README.md): kefu, and Nchan when installed, side by side.
bench: build
	bench/run.sh

clean:
	rm -rf build build-test build-asan
