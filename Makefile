# banger - build, test and lint.  `make help` lists the targets.

CC       ?= cc
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
# A comma where make would read one as an argument separator.
comma    := ,
SAN      ?=
# make install: $(DESTDIR)$(PREFIX)/bin, lib/banger, lib/systemd/system, share
PREFIX   ?= /usr/local
DESTDIR  ?=
CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-format-truncation
CPPFLAGS += -D_GNU_SOURCE -Isrc $(NL_CFLAGS)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) -pthread
ifeq ($(SAN),1)
BUILD     = build/san
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
LDSAN      = -fsanitize=address,undefined
endif

NL_CFLAGS  := $(shell pkg-config --cflags libnl-3.0 libnl-route-3.0 2>/dev/null)
DAEMON_LIBS = -lmicrohttpd -ljansson -lsqlite3 -lnl-route-3 -lnl-3 -lnftables -lldns -lnettle \
              -lsystemd -pthread
CLI_LIBS    = -lcurl -ljansson -lncursesw -lnettle -larchive -pthread

COMMON_SRC = $(wildcard src/common/*.c)
# Daemon code except main(): also linked into the unit tests.
LIB_SRC    = $(COMMON_SRC) $(wildcard src/store/*.c src/vmm/*.c src/net/*.c \
             src/guest/*.c src/core/*.c src/api/*.c)
DAEMON_SRC = $(wildcard src/daemon/*.c)
CLI_SRC    = $(wildcard src/cli/*.c) src/common/err.c src/common/util.c \
             src/common/wire.c src/common/b64.c src/common/relay.c \
             src/common/portspec.c src/common/mountspec.c
AGENT_SRC  = $(wildcard agent/*.c)
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
# Unit tests of the CLI's own code (linked with it, not with the daemon's).
CLI_UNIT_SRC = $(wildcard tests/unit/cli/test_*.c)
# The Firecracker test double; fc_schema.c is generated (make fake-schema).
FAKE_SRC   = $(wildcard tests/fakes/fc/*.c)
FAKE_SCHEMA = tests/fakes/fc/fc_schema.c
# Firecracker's swagger, which fake-schema reads (the repository keeps no
# copy of it): by default the reference copy next to the checkout.
FC_SWAGGER ?= ../shared/reference/firecracker/swagger/firecracker.yaml

LIB_OBJ    = $(LIB_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ = $(DAEMON_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ    = $(CLI_SRC:%.c=$(BUILD)/cli-obj/%.o)
FAKE_OBJ   = $(FAKE_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
CLI_LIB_OBJ  = $(filter-out %/src/cli/main.o,$(CLI_OBJ))
CLI_UNIT_BIN = $(CLI_UNIT_SRC:tests/unit/cli/%.c=$(BUILD)/tests-cli/%)

ifeq ($(SAN),1)
BANGERD = $(BUILD)/bangerd
BANGER  = $(BUILD)/banger
FAKE_FC = $(BUILD)/firecracker
else
BANGERD = bangerd
BANGER  = banger
FAKE_FC = tests/fakes/firecracker
endif
AGENT   = runtime/banger-vsock-agent

# The TypeScript client and the one command that generates its types.
SDK_TS     = clients/typescript
SDK_TS_GEN = npx --no-install openapi-typescript ../../openapi.yaml \
             --default-non-nullable false --output


.PHONY: run bench-create bench-boot stress-boot stress-ready test-e2e test-images verify runtime-bundle rootfs rootfs-void verify-void
.PHONY: sdk check-sdk test-sdk sdk-deps check-layers fake-schema check-fake-schema
.PHONY: all build test test-unit test-fake test-api test-san lint lint-openapi \
        lint-shell deps bench help clean install uninstall test-system

all: build

## build: compile bangerd, banger, the guest agent and the test double
build: $(BANGERD) $(BANGER) $(AGENT) $(FAKE_FC)

$(BUILD)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -c $< -o $@

$(BUILD)/cli-obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libbangerd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BANGERD): $(DAEMON_OBJ) $(BUILD)/libbangerd.a
	$(CC) $(LDSAN) -o $@ $^ $(DAEMON_LIBS)

$(BANGER): $(CLI_OBJ)
	$(CC) $(LDSAN) -o $@ $^ $(CLI_LIBS)

# The agent runs inside any guest (glibc or musl): always static, never
# sanitized.
# It shares src/common/uhttp_msg.c (libc only) with bangerd.
# libarchive reads and writes its tar streams (agent/files*.c): linked
# statically with what its static library needs (pkg-config --static),
# grouped because xml2 and icu refer back and forth; --gc-sections drops
# the formats and filters the agent never calls (1 MB instead of 35).
AGENT_SHARED = src/common/uhttp_msg.c
AGENT_LIBS = -Wl,--gc-sections -Wl,--start-group \
	$(shell pkg-config --static --libs libarchive libxml-2.0 icu-uc) \
	-lstdc++ -Wl,--end-group
$(AGENT): $(AGENT_SRC) $(AGENT_SHARED) $(wildcard agent/*.h) src/common/uhttp_msg.h
	@mkdir -p runtime
	$(CC) -std=gnu11 $(WARN) -O2 -D_GNU_SOURCE -DLIBARCHIVE_STATIC -Isrc \
	    -static -o $@ $(AGENT_SRC) $(AGENT_SHARED) $(AGENT_LIBS) -pthread \
	    2>$@.log || { cat $@.log; rm -f $@.log; exit 1; }
	@# ld warns of dlopen and getaddrinfo in libxml2 and icu code that
	@# --gc-sections then drops (nm shows neither): not worth a line.
	@grep -v 'in statically linked applications requires\|in function `' \
	    $@.log || true
	@rm -f $@.log

$(FAKE_FC): $(FAKE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ -lmicrohttpd -ljansson -pthread

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbangerd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDSAN) -o $@ $< $(BUILD)/libbangerd.a $(DAEMON_LIBS)

$(BUILD)/tests-cli/%: tests/unit/cli/%.c $(CLI_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDSAN) -o $@ $< $(CLI_LIB_OBJ) $(CLI_LIBS)

## test: everything CI runs: unit, test double, API, CLI, system and
##       TypeScript client suites, real boots through QEMU, then unit, API
##       and system suites under ASan+UBSan
test: build
	$(MAKE) test-unit test-fake test-api test-system test-sdk test-images test-e2e
	$(MAKE) test-san

## verify: the smoke test on a real VM (./verify.sh) with the runtime
##         bundle, against a bangerd of its own (state under build/verify)
verify: build
	$(MAKE) runtime-bundle
	@mkdir -p build/verify
	BANGER_SOCKET=$(CURDIR)/build/verify/api.sock \
	BANGER_STATE_DIR=$(CURDIR)/build/verify/state ./verify.sh; \
	rc=$$?; pkill -TERM -f "[b]angerd --socket $(CURDIR)/build/verify/api.sock" || true; \
	exit $$rc

## test-images: guest images: the Debian image built (cached by its inputs)
##              and inspected, the /root repair step, kernel and initrd,
##              bundle manifests, the Void script (plan mode + fixtures)
test-images: $(BANGERD) $(AGENT)
	BANGERD=$(CURDIR)/$(BANGERD) $(PYTHON) -m pytest -q tests/images

## test-e2e: real boots (QEMU, TCG here): the driver on a tiny guest, then
##           the runtime bundle's Debian image through bangerd: verify.sh
##           --nat, two VMs, .vm DNS, vm ssh, bangerd restarted under them
test-e2e: build $(BUILD)/tests/test_qemu
	BUILD=$(CURDIR)/$(BUILD) bash tests/e2e/qemu-boot.sh
	$(MAKE) runtime-bundle
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) \
	    $(PYTHON) -m pytest -q -s tests/e2e

## test-unit: C unit tests (TAP; the daemon's and the CLI's) and the
##            agent's tests
test-unit: $(UNIT_BIN) $(CLI_UNIT_BIN) $(AGENT)
	@set -e; for t in $(UNIT_BIN) $(CLI_UNIT_BIN); do echo "# $$t"; BANGER_AGENT=$(AGENT) $$t; done
	BANGER_AGENT=$(AGENT) bash tests/agent/test_agent.sh
	BANGER_AGENT=$(AGENT) bash tests/agent/test_files.sh
	BANGER_AGENT=$(AGENT) bash tests/agent/test_forward.sh
	BANGER_AGENT=$(AGENT) bash tests/agent/test_exec_tty.sh
	$(PYTHON) tests/unit/layers.py

## check-layers: what may include and call what (ARCHITECTURE.md), and
##               file sizes; lists what is left to split
check-layers:
	$(PYTHON) tests/unit/layers.py

## test-fake: the Firecracker test double against the published API
test-fake: $(FAKE_FC) $(AGENT)
	BANGER_FAKE_FC=$(FAKE_FC) $(PYTHON) -m pytest -q tests/fakes

## test-api: HTTP-level and CLI suites against a live bangerd
test-api: $(BANGERD) $(BANGER) $(FAKE_FC) $(AGENT)
	BANGERD=$(BANGERD) BANGER=$(BANGER) BANGER_FAKE_FC=$(FAKE_FC) \
	    $(PYTHON) -m pytest -q tests/api tests/cli

## test-sdk: the TypeScript client (clients/typescript): compiled with tsc,
##           its node --test suite run against a live bangerd
test-sdk: $(BANGERD) $(FAKE_FC) $(AGENT) sdk-deps
	BANGERD=$(BANGERD) BANGER_FAKE_FC=$(FAKE_FC) $(PYTHON) -m pytest -q tests/clients

## sdk: regenerate clients/typescript/src/schema.ts from openapi.yaml
##      (openapi-typescript); commit the result
sdk: sdk-deps
	cd $(SDK_TS) && $(SDK_TS_GEN) src/schema.ts

## check-sdk: fail when clients/typescript/src/schema.ts is not what
##            `make sdk` generates from openapi.yaml
check-sdk: sdk-deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd $(SDK_TS) && $(SDK_TS_GEN) "$$tmp/schema.ts" >/dev/null) && \
	if ! cmp -s "$$tmp/schema.ts" $(SDK_TS)/src/schema.ts; then \
	    diff -u $(SDK_TS)/src/schema.ts "$$tmp/schema.ts" | head -n 40; \
	    echo "check-sdk: $(SDK_TS)/src/schema.ts is stale (it does not match openapi.yaml);" \
	        "run 'make sdk' and commit the result" >&2; \
	    exit 1; \
	fi; \
	echo "check-sdk: $(SDK_TS)/src/schema.ts matches openapi.yaml"

sdk-deps:
	@test -x $(SDK_TS)/node_modules/.bin/openapi-typescript || \
	    { echo "$(SDK_TS)/node_modules is missing: run 'make deps' (or 'npm ci' in $(SDK_TS))" >&2; exit 1; }

## test-system: bangerd under systemd socket activation, the unit files
##              (systemd-analyze verify), make install and uninstall
test-system: $(BANGERD) $(BANGER) $(FAKE_FC) $(AGENT)
	BANGERD=$(BANGERD) BANGER=$(BANGER) BANGER_FAKE_FC=$(FAKE_FC) \
	    $(PYTHON) -m pytest -q tests/system

## test-san: unit, API and system suites with AddressSanitizer and UBSan
test-san:
	$(MAKE) SAN=1 build test-unit test-api test-system

## lint: openapi.yaml (Redocly), shell scripts (shellcheck), the generated
##       TypeScript client and test-double schema are up to date (check-sdk,
##       check-fake-schema)
lint: lint-openapi lint-shell check-sdk check-fake-schema

## fake-schema: regenerate tests/fakes/fc/fc_schema.c, the test double's
##              request-body table, from Firecracker's swagger
##              (FC_SWAGGER=path/firecracker.yaml, default
##              ../shared/reference/firecracker/swagger/); commit the result
fake-schema:
	$(PYTHON) tests/fakes/fc/gen_schema.py $(FC_SWAGGER) -o $(FAKE_SCHEMA)

## check-fake-schema: fail when tests/fakes/fc/fc_schema.c is not what
##                    fake-schema makes from FC_SWAGGER; skip (and say why)
##                    when there is no swagger at FC_SWAGGER
check-fake-schema:
	@if [ ! -f "$(FC_SWAGGER)" ]; then \
	    echo "check-fake-schema: skipped: no Firecracker swagger at" \
	        "$(FC_SWAGGER) (point FC_SWAGGER at firecracker.yaml to check" \
	        "$(FAKE_SCHEMA))"; \
	    exit 0; \
	fi; \
	tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
	$(PYTHON) tests/fakes/fc/gen_schema.py "$(FC_SWAGGER)" -o "$$tmp" && \
	if ! cmp -s "$$tmp" $(FAKE_SCHEMA); then \
	    diff -u $(FAKE_SCHEMA) "$$tmp" | head -n 40; \
	    echo "check-fake-schema: $(FAKE_SCHEMA) is stale (it is not what" \
	        "$(FC_SWAGGER) makes); run 'make fake-schema' and commit the" \
	        "result" >&2; \
	    exit 1; \
	fi; \
	echo "check-fake-schema: $(FAKE_SCHEMA) matches $(FC_SWAGGER)"

## lint-openapi: redocly lint openapi.yaml (after npm ci)
lint-openapi:
	npx --no-install redocly lint openapi.yaml

## lint-shell: shellcheck every tracked shell script
lint-shell:
	@files=$$(git ls-files '*.sh' .ci/run); \
	    if [ -n "$$files" ]; then shellcheck -x $$files; fi

## run: the main job: install what is missing, build, assemble the runtime
##      bundle, boot VM "demo", show it healthy, SSH in (re-runnable)
run:
	sh .ci/deps.sh
	$(MAKE) build
	$(MAKE) runtime-bundle
	bash scripts/run-demo.sh

## runtime-bundle: fill runtime/ from RUNTIME_MANIFEST (URLs + sha256), or
##                 by default assemble it locally from Debian packages
runtime-bundle: build
	bash rootfs/fetch-vhost-device-vsock.sh --out runtime/tools
	RUNTIME_MANIFEST="$(RUNTIME_MANIFEST)" bash rootfs/make-bundle.sh --out runtime

## rootfs: rebuild only the Debian image and work seed into runtime/
rootfs: build
	@test -r runtime/id_ed25519.pub || { echo "run make runtime-bundle first (it makes the key)" >&2; exit 1; }
	bash rootfs/make-rootfs.sh --out runtime --agent $(AGENT) --pubkey runtime/id_ed25519.pub

## rootfs-void: the experimental Void image (needs root and a reachable Void
##              mirror; VOID_MIRROR=URL to pick one); never the default
rootfs-void: build
	@test -r runtime/id_ed25519.pub || { echo "run make runtime-bundle first (it makes the key)" >&2; exit 1; }
	bash rootfs/make-rootfs-void.sh --out runtime --agent $(AGENT) \
	    --pubkey runtime/id_ed25519.pub $(if $(VOID_MIRROR),--mirror $(VOID_MIRROR))

## verify-void: register the Void image as void-exp (never the default)
##              and run the smoke test (verify.sh) against it
verify-void: build
	@test -f runtime/rootfs-void.ext4 || { echo "run make rootfs-void first" >&2; exit 1; }
	./banger image register --name void-exp --rootfs $(CURDIR)/runtime/rootfs-void.ext4 \
	    --work-seed $(CURDIR)/runtime/work-seed-void.ext4
	./verify.sh --image void-exp

$(BUILD)/loadgen: tests/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -pthread

$(BUILD)/bench_nat: tests/bench/bench_nat.c $(BUILD)/libbangerd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libbangerd.a $(DAEMON_LIBS)

## bench: control-plane throughput and latency (GET /v1/vms, 100 VMs,
##        8 clients), bangerd's memory, the NAT rebuild with 100 VMs,
##        port forwarding against a direct connection (throughput, latency)
##        and banger vm cp against a local tar pipe
bench: build $(BUILD)/loadgen $(BUILD)/bench_nat
	$(PYTHON) tests/bench/bench.py control
	$(BUILD)/bench_nat
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) \
	    BANGER_FAKE_FC=$(CURDIR)/$(FAKE_FC) $(PYTHON) tests/bench/bench_ports.py
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) \
	    BANGER_FAKE_FC=$(CURDIR)/$(FAKE_FC) $(PYTHON) tests/bench/bench_cp.py

## stress-boot: N real boots per image (default 20) through bangerd in the
##              cycles users run (create, start after stop, restart,
##              recreate), IMAGES=tiny,debian, LOAD=none|cpu|io|cpu+io,
##              VCPUS=1, PARALLEL=1|2 (VMs booting at once), STORM=1 (an
##              outside client hammers vsock.sock during boots): time to
##              ready per boot, the distribution, and the console, vmm.log
##              and bangerd log of every failure under build/stress/
stress-boot: build
	$(MAKE) runtime-bundle
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) BUILD=$(CURDIR)/$(BUILD) \
	    $(PYTHON) tests/stress/stress_boot.py -n $(or $(N),20) \
	    --images $(or $(IMAGES),tiny$(comma)debian) --load $(or $(LOAD),none) \
	    --vcpus $(or $(VCPUS),1) --parallel $(or $(PARALLEL),1) \
	    $(if $(filter 1,$(STORM)),--storm)

## stress-ready: N stop/start cycles (default 20) of the Debian image
##               through bangerd, one ssh the instant each start returns:
##               every ssh must work and every stop be clean (real boots)
stress-ready: build
	$(MAKE) runtime-bundle
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) \
	    $(PYTHON) tests/stress/ready_cycles.py -n $(or $(N),20)

## bench-create: VM create latency through the API with the test double
##               (pooled TAP vs none; rootfs copy on ext4 and reflink XFS),
##               warm starts with the double (pause/resume, snapshot and
##               restore against memory size, clone vs cold create), then
##               real boots of the default image next to raw QEMU boots
##               of the same argv (needs the runtime bundle), then
##               bench-boot
bench-create: build
	$(PYTHON) tests/bench/bench.py create
	$(PYTHON) tests/bench/bench_snap.py
	$(PYTHON) tests/bench/bench_boot.py --rounds $(or $(ROUNDS),3)
	$(MAKE) bench-boot

## bench-boot: cold boots, real: a new VM of the Debian image from create
##             to SSH next to the tiny test guest from create to healthy,
##             alternating in one run; prints the ratio (goal <= 2.5).
##             ROUNDS=3, VCPUS=2, BASELINE=DIR (also boot the image built
##             in DIR, e.g. an older runtime/); skips, saying why, without
##             root, QEMU or the runtime bundle
bench-boot: build
	BANGERD=$(CURDIR)/$(BANGERD) BANGER=$(CURDIR)/$(BANGER) BUILD=$(CURDIR)/$(BUILD) \
	    $(PYTHON) tests/bench/bench_cold.py --rounds $(or $(ROUNDS),3) \
	    --vcpus $(or $(VCPUS),2) $(if $(BASELINE),--baseline $(BASELINE))

BINDIR      = $(PREFIX)/bin
LIBDIR      = $(PREFIX)/lib/banger
UNITDIR     = $(PREFIX)/lib/systemd/system
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  = $(PREFIX)/share/zsh/site-functions
DOCDIR      = $(PREFIX)/share/doc/banger
UNITS       = bangerd.service bangerd.socket
# The rootfs scripts bangerd runs for image builds, and make-bundle.sh.
ROOTFS_FILES = $(shell git ls-files rootfs 2>/dev/null || find rootfs -type f)

## install: bangerd and banger to $(PREFIX)/bin, systemd units, bash and
##          zsh completion, the agent and rootfs scripts to
##          $(PREFIX)/lib/banger (PREFIX=/usr/local, DESTDIR for staging)
install: $(BANGERD) $(BANGER) $(AGENT)
	@mkdir -p $(BUILD)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(LIBDIR)/runtime
	install -m 0755 $(BANGERD) $(DESTDIR)$(BINDIR)/bangerd
	install -m 0755 $(BANGER) $(DESTDIR)$(BINDIR)/banger
	@set -e; for u in $(UNITS); do \
	    echo "install $$u -> $(DESTDIR)$(UNITDIR)"; \
	    sed 's|@PREFIX@|$(PREFIX)|g' dist/systemd/$$u.in >$(BUILD)/$$u; \
	    install -m 0644 $(BUILD)/$$u $(DESTDIR)$(UNITDIR)/$$u; done
	./$(BANGER) completion bash >$(BUILD)/banger.bash
	./$(BANGER) completion zsh >$(BUILD)/banger.zsh
	install -m 0644 $(BUILD)/banger.bash $(DESTDIR)$(BASHCOMPDIR)/banger
	install -m 0644 $(BUILD)/banger.zsh $(DESTDIR)$(ZSHCOMPDIR)/_banger
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0755 $(AGENT) $(DESTDIR)$(LIBDIR)/runtime/banger-vsock-agent
	@set -e; for f in $(ROOTFS_FILES); do \
	    if [ -x "$$f" ]; then m=0755; else m=0644; fi; \
	    install -D -m $$m "$$f" "$(DESTDIR)$(LIBDIR)/$$f"; done
	@echo "installed under $(DESTDIR)$(PREFIX); make the runtime bundle with"
	@echo "  $(LIBDIR)/rootfs/make-bundle.sh   (fills $(LIBDIR)/runtime)"

## uninstall: remove what install put there (a runtime bundle made in
##            $(PREFIX)/lib/banger/runtime stays)
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bangerd $(DESTDIR)$(BINDIR)/banger \
	    $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) \
	    $(DESTDIR)$(BASHCOMPDIR)/banger $(DESTDIR)$(ZSHCOMPDIR)/_banger \
	    $(DESTDIR)$(DOCDIR)/README.md \
	    $(DESTDIR)$(LIBDIR)/runtime/banger-vsock-agent
	rm -rf $(DESTDIR)$(LIBDIR)/rootfs
	rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(LIBDIR)/runtime $(DESTDIR)$(LIBDIR) 2>/dev/null || true

## deps: install build and test dependencies (Debian; needs root)
deps:
	sh .ci/deps.sh

## help: list targets
help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'

## clean: remove build output (keeps the runtime bundle)
clean:
	rm -rf build bangerd banger $(AGENT) tests/fakes/firecracker $(SDK_TS)/dist

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)
