# ngx_fhir_bulk: one entry point for building, running and testing.
#
#   make          build everything (core, tools, tests, benchmarks, the nginx module)
#   make deps     install the Debian packages (idempotent, quiet when present)
#   make up       start PostgreSQL, nginx with the module and the worker under var/
#                 (REPLICAS=N: also N streaming standbys, which the worker reads exports from)
#   make down     stop what `make up` started
#   make demo     deps + build + up + a demonstration against the running server
#   make test     deps + build + the checks below (format-check, tidy) + unit tests (ctest, also
#                 under ASan + UBSan, the threaded ones under TSan) + each fuzz target briefly
#                 (FUZZ_TEST_SECONDS) + integration tests (prove). Every build uses -Werror.
#   make san      the sanitizer build (build-san/: clang, ASan + UBSan, unit tests, fuzz targets)
#   make tsan     the ThreadSanitizer build (build-tsan/: clang) and the tests that run threads
#   make format-check  clang-format --dry-run --Werror over the C++ sources (make format fixes)
#   make tidy     clang-tidy (.clang-tidy) over build/compile_commands.json; fails on a finding
#   make fuzz     every fuzz target for FUZZ_SECONDS each (fuzz/README.md)
#   make bench    benchmarks (results: benchmarks/RESULTS.md)
#   make deb      Debian packages for this machine's nginx in build/deb/ (scripts/build-deb.sh)

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# -Werror: a warning fails the build (gcc here; clang, with -Wthread-safety, in the
# sanitizer builds), so the tree stays warning-free with both compilers.
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFHIRBULK_WERROR=ON
# The sanitizer build: clang (libFuzzer), -O1 so that it builds and runs in CI time.
SAN_BUILD  ?= build-san
SAN_CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
                  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DFHIRBULK_FUZZ=ON -DFHIRBULK_BUILD_BENCHMARKS=OFF \
                  -DFHIRBULK_WERROR=ON
# The ThreadSanitizer build: clang, -O1 like the sanitizer build; only the unit tests.
TSAN_BUILD ?= build-tsan
TSAN_CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
                   -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DFHIRBULK_TSAN=ON -DFHIRBULK_BUILD_BENCHMARKS=OFF \
                   -DFHIRBULK_WERROR=ON
# The C++ sources clang-format owns. ngx_module/ is not among them: it is C in nginx's style,
# which clang-format cannot express (ngx_module/.clang-format turns formatting off there).
FORMAT_FILES = $(wildcard core/*/*.h core/*/*.cc core/include/fhirbulk/*.h tests/*.h tests/*.cc \
                          benchmarks/*.cc fuzz/*.h fuzz/*.cc)
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 10

.PHONY: all core module deps up down demo test unit-test integration-test san san-test fuzz bench \
        deb format format-check tidy tsan tsan-build tsan-test clean

all: core module

# The generated Makefile, not CMakeCache.txt: a configure that failed half way (a missing
# package) leaves a cache behind but no Makefile, and must run again.
$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null

core: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

module: core
	BUILD=$(abspath $(BUILD)) scripts/build-module.sh

deps:
	@scripts/deps.sh

up: all
	@REPLICAS=$(REPLICAS) scripts/services.sh up

down:
	@scripts/services.sh down

demo: deps all
	@scripts/demo.sh

test: deps all san tsan-build
	JOBS=$(JOBS) BUILD=$(BUILD) SAN_BUILD=$(SAN_BUILD) TSAN_BUILD=$(TSAN_BUILD) \
	    FUZZ_TEST_SECONDS=$(FUZZ_TEST_SECONDS) scripts/run-tests.sh

$(SAN_BUILD)/Makefile:
	CC=clang CXX=clang++ cmake -S . -B $(SAN_BUILD) $(SAN_CMAKE_ARGS) >/dev/null

san: $(SAN_BUILD)/Makefile
	cmake --build $(SAN_BUILD) -j $(JOBS)

# The unit tests under ASan + UBSan only.
san-test: san
	scripts/pg-cluster.sh run sh -c 'FHIRBULK_TEST_PG="$$PG_CONNINFO" ctest --test-dir $(SAN_BUILD) --output-on-failure -j $(JOBS)'

$(TSAN_BUILD)/Makefile:
	CC=clang CXX=clang++ cmake -S . -B $(TSAN_BUILD) $(TSAN_CMAKE_ARGS) >/dev/null

# Only the test binary: the tools and the module are exercised under TSan by nothing.
tsan-build: $(TSAN_BUILD)/Makefile
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target fhirbulk_tests

# The tests that start threads, under ThreadSanitizer (scripts/run-tsan.sh says which).
tsan: tsan-build
	JOBS=$(JOBS) TSAN_BUILD=$(TSAN_BUILD) scripts/pg-cluster.sh run scripts/run-tsan.sh

fuzz: san
	JOBS=$(JOBS) SAN_BUILD=$(SAN_BUILD) scripts/run-fuzz.sh $(FUZZ_SECONDS)

unit-test: all
	scripts/pg-cluster.sh run sh -c 'FHIRBULK_TEST_PG="$$PG_CONNINFO" ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)'

integration-test: all
	prove -r -j $(JOBS) t/

bench: deps all
	benchmarks/run.sh

# The packages of the binaries in $(BUILD) (what the tests ran), then lintian when installed.
# DEB_BUILD=<dir>: a tree of its own with Debian's hardening flags (scripts/build-deb.sh).
deb: all
	BUILD=$(abspath $(BUILD)) DEB_DIR=$(abspath $(BUILD))/deb scripts/build-deb.sh

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# Needs the compile database of $(BUILD) (and its generated sources): built by `make core`.
tidy: core
	JOBS=$(JOBS) BUILD=$(BUILD) scripts/tidy.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(TSAN_BUILD)
