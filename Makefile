# ngx_fhir_bulk: one entry point for building, running and testing.
#
#   make          build everything (core, tools, tests, benchmarks, the nginx module)
#   make deps     install the Debian packages (idempotent, quiet when present)
#   make up       start PostgreSQL, nginx with the module and the worker under var/
#   make down     stop what `make up` started
#   make demo     deps + build + up + a demonstration against the running server
#   make test     deps + build + unit tests (ctest) + integration tests (prove)
#   make bench    benchmarks (results: benchmarks/RESULTS.md)

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all core module deps up down demo test unit-test integration-test bench format clean

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

test: deps all
	scripts/run-tests.sh

unit-test: all
	scripts/pg-cluster.sh run sh -c 'FHIRBULK_TEST_PG="$$PG_CONNINFO" ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)'

integration-test: all
	prove -r -j $(JOBS) t/

bench: deps all
	benchmarks/run.sh

format:
	clang-format -i core/*/*.h core/*/*.cc core/include/fhirbulk/*.h tests/*.cc benchmarks/*.cc

clean:
	rm -rf $(BUILD)
