# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Both install what is missing first (the machines run as root; Debian packages via apt-get).

# Debian packages the build and the tests need. Keep this list complete: CI installs exactly it.
DEB_PACKAGES := gcc libc6-dev pkg-config make clang libelf-dev zlib1g-dev ca-certificates nginx python3 sysdig postgresql prometheus-alertmanager python3-venv prometheus wrk nodejs chromium chromium-driver tmux buildah podman runc

FIXTURES := ../shared/fixtures/k8s
CRASHSCOPE := target/debug/crashscope

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

.PHONY: deps demo views test lint ci fuzz image

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The reference story (needs root: containers run in their own namespaces).
demo: deps
	cargo build -q --bin crashscope
	$(CRASHSCOPE) demo

# kubectl-exact views of real pods from the fixtures (no root needed).
views:
	cargo build -q --bin crashscope
	@echo '$$ crashscope get pods -A -o wide -f $(FIXTURES),$(FIXTURES)/api-replays-v1-34/pod-list.json'
	@$(CRASHSCOPE) get pods -A -o wide -f $(FIXTURES),$(FIXTURES)/api-replays-v1-34/pod-list.json
	@echo
	@echo '$$ crashscope describe pod my-pod -f $(FIXTURES)/gitops-engine__pod-crashloop.yaml'
	@$(CRASHSCOPE) describe pod my-pod -f $(FIXTURES)/gitops-engine__pod-crashloop.yaml

# The store's tests run on SQLite and on Debian's PostgreSQL (started here when root); the
# API's property test uses schemathesis (installed here into /opt/schemathesis when root).
test: deps
	scripts/test-schemathesis.sh
	scripts/test-kubernetes-validate.sh
	node --test crates/web/tests/js/
	CRASHSCOPE_TEST_POSTGRES="$$(scripts/test-postgres.sh)" cargo test --workspace

# The container image, as an OCI archive (buildah, no registry): FROM scratch, the release
# binary and the Debian libraries it links (scripts/image.sh says how).
image: deps
	cargo build --release -q --bin crashscope
	scripts/image.sh target/release/crashscope $(VERSION) target/crashscope-$(VERSION).oci.tar

# The long fuzz run (make test runs a bounded one): FUZZ_SECONDS per target, every target.
FUZZ_SECONDS ?= 600
fuzz:
	cargo run --release -q -p crashscope-fuzz -- --iterations 100000000 --seconds $(FUZZ_SECONDS)

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

ci: test lint
