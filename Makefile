# ngx_fhir_bulk: one entry point for building, running and testing.
#
#   make          build everything (core, tools, tests, benchmarks, the nginx module)
#   make deps     install the Debian packages (idempotent, quiet when present)
#   make up       start PostgreSQL, nginx with the module and the worker under var/
#   make down     stop what `make up` started
#   make demo     deps + build + up + a demonstration against the running server
#   make test     deps + build + unit tests (ctest, also under ASan + UBSan) + each fuzz target
#                 briefly (FUZZ_TEST_SECONDS) + integration tests (prove)
#   make san      the sanitizer build (build-san/: clang, ASan + UBSan, unit tests, fuzz targets)
#   make fuzz     every fuzz target for FUZZ_SECONDS each (fuzz/README.md)
#   make bench    benchmarks (results: benchmarks/RESULTS.md)
#   make deb      Debian packages for this machine's nginx in build/deb/ (scripts/build-deb.sh)

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The sanitizer build: clang (libFuzzer), -O1 so that it builds and runs in CI time.
SAN_BUILD  ?= build-san
SAN_CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
                  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DFHIRBULK_FUZZ=ON -DFHIRBULK_BUILD_BENCHMARKS=OFF
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 10

.PHONY: all core module deps up down demo test unit-test integration-test san san-test fuzz bench \
        deb format clean

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
	@scripts/services.sh up

down:
	@scripts/services.sh down

demo: deps all
	@scripts/demo.sh

test: deps all san
	JOBS=$(JOBS) SAN_BUILD=$(SAN_BUILD) FUZZ_TEST_SECONDS=$(FUZZ_TEST_SECONDS) scripts/run-tests.sh

$(SAN_BUILD)/Makefile:
	CC=clang CXX=clang++ cmake -S . -B $(SAN_BUILD) $(SAN_CMAKE_ARGS) >/dev/null

san: $(SAN_BUILD)/Makefile
	cmake --build $(SAN_BUILD) -j $(JOBS)

# The unit tests under ASan + UBSan only.
san-test: san
	scripts/pg-cluster.sh run sh -c 'FHIRBULK_TEST_PG="$$PG_CONNINFO" ctest --test-dir $(SAN_BUILD) --output-on-failure -j $(JOBS)'

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
	clang-format -i core/*/*.h core/*/*.cc core/include/fhirbulk/*.h tests/*.cc benchmarks/*.cc \
	    fuzz/*.h fuzz/*.cc

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
