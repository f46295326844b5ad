# keyward: the commands a user runs. `make test` and `make demo` install missing Debian packages
# (as root), configure, build, and run. See README.md.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MATRIX_BUILD ?= build-matrix
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

.PHONY: all deps build test unit demo asan fuzz builds bench bench-table format clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKW_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j$(JOBS)

demo: build
	bash scripts/demo-proxy.sh $(BUILD)
	sh scripts/demo.sh $(BUILD)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKW_SANITIZE=ON -DKW_WERROR=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	# integration.package builds the .deb from the source tree with its own (packager's) build, so
	# running it against the sanitizer build would test nothing new: make test runs it.
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS) -E '^integration\.package$$'

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKW_FUZZ=ON -DKW_WERROR=ON >/dev/null
	cmake --build $(FUZZ_BUILD) --target fuzzers -j$(JOBS)
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

builds: deps
	bash scripts/build-matrix.sh $(MATRIX_BUILD)

bench: build
	bash bench/keyserver.sh $(BUILD)
	bash bench/handshake.sh $(BUILD)
	bash bench/proxy.sh $(BUILD)

# issue 16's table: 3 runs of every row (~20 minutes on 2 vCPUs), written into README.md
bench-table: build
	bash bench/table.sh $(BUILD) --runs 3 --readme

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(MATRIX_BUILD)
