# hostpatrol - build, test, lint. `make help` lists the targets.
#
# The README's two commands: `make demo` and `make test`. Both do all set-up themselves
# (Debian packages via `make deps`, test tools via `make tools`), so they work on a fresh machine.

CC      ?= gcc
PKGS    := libcurl jansson yaml-0.1 libwebsockets openssl libpcre2-8
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Icontroller -Ibuild/gen \
           -fno-strict-aliasing -MMD -MP
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -ljansson -lyaml -lwebsockets -lssl -lcrypto -lpcre2-8) -lpthread
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

SRC      := $(shell find controller -name '*.c' | sort)
LIB_SRC  := $(filter-out controller/main.c,$(SRC))
OBJ      := $(SRC:%.c=build/obj/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
ITEST_SRC := $(sort $(wildcard tests/integration/c/itest-*.c))
ITEST_BIN := $(ITEST_SRC:tests/integration/c/%.c=build/asan/itests/%)

.PHONY: all itests bench help deps tools lint format test test-unit test-integration test-liveness-long demo clean version-stamp
.PHONY: soak soak-asan
.PHONY: fuzz fuzz-build
.PHONY: image kind-load deploy run cluster cluster-load cluster-down

all: build/hostpatrol

itests: $(ITEST_BIN)

help:
	@echo "make            build build/hostpatrol"
	@echo "make demo       local control plane + results etcd (all set-up included); Ctrl-C stops"
	@echo "make test       everything: deps, tools, lint, unit tests (ASan+UBSan), integration tests"
	@echo "make test-unit  unit tests only;  make test-integration  integration tests only"
	@echo "make test-liveness-long  the batch queue's liveness tests with 10,000 batches per run"
	@echo "make soak       controller + agent, 200 HostInspections, 30 minutes of faults in rotation on a"
	@echo "                3-member etcd (CI runs a 3-minute form); RSS/FD table, etcd history read back"
	@echo "make soak-asan  a 5-minute soak of build/asan/hostpatrol (ASan + LSan): 0 errors, 0 leaks"
	@echo "make bench      benchmarks, each printing its comparison measured in the same run"
	@echo "make fuzz       every libFuzzer target (tests/fuzz) for FUZZ_TIME s (default 60) and a table;"
	@echo "                FUZZ_TARGETS='yaml_doc b64' runs some; make fuzz-build only builds (docs/fuzzing.md)"
	@echo "make deps       Debian packages to build, test and lint (idempotent)"
	@echo "make tools      kube-apiserver, kubectl, etcd 3.5/3.6, helm, toxiproxy, libcurl 8 into the tool cache"
	@echo "make lint       clang-format check, cppcheck, banned functions, shellcheck"
	@echo "make format     rewrite sources with clang-format"
	@echo "make image      build the image IMAGE (default hostpatrol:VERSION): docker build, or buildah without a"
	@echo "                docker daemon; IMAGE_ARCHIVE=FILE also writes a docker-archive tarball (ctr images import)"
	@echo "make kind-load  load IMAGE into the kind cluster KIND_CLUSTER (default kind; hack/kind-up.sh makes one)"
	@echo "make deploy     helm upgrade --install charts/hostpatrol into hostpatrol-system (ETCD_ENDPOINTS, else bundled etcd)"
	@echo "make run        controller + agent from build/ on the current kubeconfig (ETCD_ENDPOINTS, else a local etcd)"
	@echo "make cluster    a local single-node cluster here (kubelet on containerd; root) for machines without"
	@echo "                kind: prints its KUBECONFIG and a results ETCD_ENDPOINTS"
	@echo "make cluster-load  build IMAGE and import it into the local cluster's containerd (kind load's analogue)"
	@echo "make cluster-down  stop the local cluster and remove everything it made"

# The version header is rewritten only when the version changes, so builds stay incremental.
version-stamp:
	@mkdir -p build/gen
	@printf '#define HP_VERSION "%s"\n#define HP_COMMIT "%s"\n' '$(VERSION)' '$(COMMIT)' > build/gen/hp_version.h.tmp
	@cmp -s build/gen/hp_version.h.tmp build/gen/hp_version.h || mv build/gen/hp_version.h.tmp build/gen/hp_version.h
	@rm -f build/gen/hp_version.h.tmp
build/gen/hp_version.h: version-stamp

build/hostpatrol: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: %.c | version-stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/%.o: %.c | version-stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE) -O1 -c -o $@ $<

build/asan/tests/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE) -O1 -Itests/unit -o $@ $< $(ASAN_OBJ) $(LDLIBS) -lcmocka

build/asan/itests/%: tests/integration/c/%.c tests/integration/c/itest_util.h $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE) -O1 -Itests/integration/c -o $@ $< $(ASAN_OBJ) $(LDLIBS) -lcmocka

# the product built with ASan + UBSan (the unit tests' objects and main.c): for `make soak-asan`
build/asan/hostpatrol: build/asan/controller/main.o $(ASAN_OBJ)
	$(CC) $(CFLAGS) $(SANITIZE) -O1 -o $@ $^ $(LDLIBS)

build/obj/controller/util/buildinfo.o build/asan/controller/util/buildinfo.o: build/gen/hp_version.h

# The dashboard's page (controller/server/dashboard/) is embedded into the binary as byte arrays.
DASH_ASSETS := controller/server/dashboard/index.html controller/server/dashboard/dashboard.js \
               controller/server/dashboard/dashboard.css
build/gen/dashboard_assets.h: $(DASH_ASSETS)
	@mkdir -p build/gen
	@for f in $(DASH_ASSETS); do xxd -i "$$f" || exit 1; done | \
		sed -e 's/^unsigned char/static const unsigned char/' -e '/^unsigned int/d' > $@.tmp
	@mv $@.tmp $@
build/obj/controller/server/dashboard.o build/asan/controller/server/dashboard.o: build/gen/dashboard_assets.h
build/fuzz/obj/controller/server/dashboard.o: build/gen/dashboard_assets.h

deps:
	@bash tests/tools/deps.sh

tools:
	@bash tests/tools/build.sh all

lint:
	@bash tests/tools/lint.sh

format:
	clang-format -i $$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^build/')

# the build runs on every core (a serial one took 2 min 18 s of CI's 20 on 2 cores; -j2: 67 s)
test: deps tools
	@$(MAKE) --no-print-directory -j$$(nproc) lint all $(UNIT_BIN) $(ITEST_BIN)
	@bash tests/run.sh all

test-unit: $(UNIT_BIN)
	@bash tests/run.sh unit

test-integration: all $(ITEST_BIN)
	@bash tests/run.sh integration

# the long form of test-etcd-liveness.sh (not in CI): 10,000 batches per run
test-liveness-long: all
	@HP_LIVENESS_BATCHES=10000 HP_LIVENESS_TIMEOUT=1800 HP_IT_TIMEOUT=3600 \
		bash tests/run.sh integration test-etcd-liveness

# The soak (tests/integration/test-soak.sh; not in CI, which runs its 3-minute form): 30 minutes,
# a fault every minute; and 5 minutes of the ASan + LSan build, which must exit with 0 leaks.
soak: all
	@HP_SOAK_MINUTES=30 HP_SOAK_FAULT_EVERY=60 HP_IT_TIMEOUT=3600 \
		bash tests/run.sh integration test-soak

soak-asan: all build/asan/hostpatrol
	@HP_SOAK_MINUTES=5 HP_SOAK_FAULT_EVERY=60 HP_SOAK_ASAN=1 HOSTPATROL=$(CURDIR)/build/asan/hostpatrol \
		HP_IT_TIMEOUT=1800 bash tests/run.sh integration test-soak

bench: deps tools
	@$(MAKE) --no-print-directory all
	@bash tests/bench/etcd.sh
	@bash tests/bench/controller.sh
	@bash tests/bench/probes.sh

# The demo needs only the product's packages, the control plane and one etcd, not the whole test
# toolchain: tests/tools/demo-setup.sh installs and builds them (in parallel, one line a step).
demo:
	@bash tests/tools/demo-setup.sh
	@bash tests/harness/demo.sh

clean:
	rm -rf build

# ---- Fuzzing (docs/fuzzing.md): libFuzzer targets tests/fuzz/fuzz-NAME.c, built with clang and
# linked against the product sources compiled again with the same sanitizers into build/fuzz/.
FUZZ_CC      ?= clang-14
FUZZ_TIME    ?= 60
FUZZ_TARGETS ?=
# clang takes vsnprintf(fmt) in an HP_PRINTF function for a non-literal format (gcc checks it)
FUZZ_FLAGS   := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=all -O1 -g -Wno-format-nonliteral
FUZZ_OBJ     := $(LIB_SRC:%.c=build/fuzz/obj/%.o) build/fuzz/obj/tests/fuzz/fuzz_peer.o
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/bin/%)

build/fuzz/obj/%.o: %.c | version-stamp
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -Itests/fuzz -c -o $@ $<

build/fuzz/bin/%: tests/fuzz/%.c tests/fuzz/fuzz_peer.h $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(FUZZ_OBJ) $(LDLIBS) -lcrypto

build/fuzz/obj/controller/util/buildinfo.o: build/gen/hp_version.h

fuzz-build:
	@bash tests/fuzz/fuzz.sh --check-toolchain
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@bash tests/fuzz/fuzz.sh --table '$(FUZZ_TIME)' $(FUZZ_TARGETS)

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) build/asan/controller/main.d $(FUZZ_OBJ:.o=.d)

# ---- Container image, kind, Helm, local run (hack/). IMAGE_REPO / IMAGE_TAG make IMAGE; `deploy`
# passes them to the chart. IMAGE_ARCHIVE: `image` also saves IMAGE there (docker-archive).
# ETCD_ENDPOINTS: the results etcd (comma-separated client URLs); empty: `deploy` enables the
# chart's bundled etcd, `run` starts a local etcd 3.6.
IMAGE_REPO     ?= hostpatrol
IMAGE_TAG      ?= $(VERSION)
IMAGE          ?= $(IMAGE_REPO):$(IMAGE_TAG)
IMAGE_ARCHIVE  ?=
KIND_CLUSTER   ?= kind
ETCD_ENDPOINTS ?=
DOCKER         ?= docker
KIND           ?= kind
SOURCE_URL     ?= $(shell git remote get-url origin 2>/dev/null)
HELM           ?= $(shell command -v helm 2>/dev/null || (. tests/tools/versions.env && \
                    echo "$${HOSTPATROL_CACHE:-$$HOME/.cache/hostpatrol}/tools/helm-$$HELM_VERSION/bin/helm"))
hp_comma := ,

# docker build if a docker daemon answers, else a daemonless buildah build (hack/image-build.sh).
image:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' SOURCE_URL='$(SOURCE_URL)' DOCKER='$(DOCKER)' \
	  bash hack/image-build.sh '$(IMAGE)'$(if $(IMAGE_ARCHIVE), --archive '$(IMAGE_ARCHIVE)')

kind-load:
	@DOCKER='$(DOCKER)' KIND='$(KIND)' bash hack/kind-load.sh --check '$(IMAGE)' '$(KIND_CLUSTER)'
	$(KIND) load docker-image '$(IMAGE)' --name '$(KIND_CLUSTER)'

# helm --set splits on commas: the endpoints' commas are escaped.
deploy:
	$(HELM) upgrade --install hostpatrol charts/hostpatrol -n hostpatrol-system --create-namespace \
	  --set image.repository=$(IMAGE_REPO) --set-string image.tag=$(IMAGE_TAG) \
	  $(if $(ETCD_ENDPOINTS),--set 'etcd.endpoints=$(subst $(hp_comma),\$(hp_comma),$(ETCD_ENDPOINTS))',--set etcd.bundled.enabled=true)

# The local cluster (hack/cluster.sh, built on tests/harness/cluster.sh): `make cluster`, then
# `make cluster-load deploy` with the KUBECONFIG and ETCD_ENDPOINTS it prints.
cluster: deps
	@bash tests/tools/build.sh kube kubenode etcd36 helm
	@bash hack/cluster.sh up

cluster-load:
	@mkdir -p build
	@$(MAKE) --no-print-directory image IMAGE='$(IMAGE)' IMAGE_ARCHIVE=build/image.tar
	bash hack/cluster.sh load build/image.tar

cluster-down:
	@bash hack/cluster.sh down

run: all
	ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' bash hack/run.sh build/hostpatrol controller -- build/hostpatrol agent --host-root /
