# EV Carbon Exchange — the two commands: `make run` and `make test`.
# Both install what is missing (and skip what is present) on a Debian machine with Rust.

SHELL := /bin/bash
.DEFAULT_GOAL := run

CARGO_LEPTOS_VERSION := 0.3.10
# Must equal the wasm-bindgen version in Cargo.lock (checked by `setup`).
WASM_BINDGEN_VERSION := 0.2.130

# wasm-opt from the npm package `binaryen` (Debian's is too old and breaks the wasm).
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends

.PHONY: run test setup setup-system setup-rust setup-node build build-release test-rust test-e2e bench bench-bin bench-wasm_size bench-trip_import bench-dashboard bench-purchase_distinct bench-purchase_race bench-ssr_market bench-bid_hot bench-bid_fanout bench-generated_inputs bench-soak bench-crash test-crash fmt clean-data

## Start the platform with demo data on its embedded PostgreSQL: http://127.0.0.1:3000
run: setup build-release
	./target/release/server

## Every test: the short crash run (on the server just built: `cargo leptos test` relinks it),
## Rust unit and API tests, then Playwright end to end.
test: setup build test-crash test-rust test-e2e

setup: setup-system setup-rust setup-node

setup-system:
	@pkgs=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium"; \
	command -v npm >/dev/null || pkgs="$$pkgs nodejs npm"; \
	if [ -n "$$pkgs" ]; then \
		echo "Installing with apt:$$pkgs"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) ca-certificates $$pkgs; \
	fi

setup-rust:
	@rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)" || \
		cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --features no_downloads --locked
	@lock=$$(grep -A1 '^name = "wasm-bindgen"$$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'); \
		[ "$$lock" = "$(WASM_BINDGEN_VERSION)" ] || { echo "Cargo.lock has wasm-bindgen $$lock; set WASM_BINDGEN_VERSION in the Makefile"; exit 1; }
	@wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" || \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

setup-node:
	@[ end2end/node_modules/.package-lock.json -nt end2end/package-lock.json ] || (cd end2end && npm ci --no-audit --no-fund)

build:
	cargo leptos build

build-release:
	cargo leptos build --release

## Rust tests against a throwaway PostgreSQL (fsync off); each test gets its own database.
## On a failure the failed tests and their panics are repeated last (CI shows only the end);
## a run that hangs is stopped after 30 minutes and names the tests still running.
test-rust:
	@set -o pipefail; \
	timeout 1800 ./target/debug/server pg-run --data-dir target/test-pg --no-fsync -- cargo leptos test 2>&1 | tee target/test-rust.log; \
	status=$$?; \
	if [ $$status -ne 0 ]; then \
		echo "== Rust tests failed (exit $$status); the failures: =="; \
		grep -E -A4 "^---- |panicked at" target/test-rust.log | tail -60; \
		grep -E "^test .* FAILED$$|^test result: FAILED|has been running for over" target/test-rust.log; \
	fi; \
	exit $$status

## The crash harness, short: 10 cycles of killing the debug server, its PostgreSQL or both
## under load, each followed by a restart and a check of every answer against the database
## (`make bench-crash` is the long run on the release server). Built with the flags of
## `cargo leptos build`, so it shares the debug server's compiled dependencies.
test-crash:
	RUSTFLAGS="--cfg erase_components" cargo build --package evcx-bench
	EVCX_BENCH_SERVER=target/debug/server timeout 900 ./target/debug/evcx-bench crash --cycles 10

## Playwright against the freshly built server (it starts its own embedded PostgreSQL).
## Built again here: `cargo test` of the server package replaces target/debug/server with a
## binary of its own, so the e2e server must be (re)linked right before the suite.
test-e2e: setup-node
	cargo leptos build
	cd end2end && npx playwright test

## Benchmarks (../shared/BENCHMARKS.md); each prints `BENCH <name> <metric>=<value> …`.
## `make bench-X` runs one. Each starts (and stops) its own PostgreSQL with fsync on and the release server.
bench: bench-wasm_size bench-trip_import bench-dashboard bench-purchase_distinct bench-purchase_race bench-ssr_market bench-bid_hot bench-bid_fanout bench-generated_inputs bench-soak bench-crash

bench-wasm_size: setup build-release
	node bench/wasm_size.mjs target/site/pkg

bench-trip_import: setup build-release bench-bin
	./target/release/evcx-bench trip_import

bench-dashboard: setup build-release bench-bin
	./target/release/evcx-bench dashboard

bench-purchase_distinct: setup build-release bench-bin
	./target/release/evcx-bench purchase_distinct --concurrency 24

bench-purchase_race: setup build-release bench-bin
	./target/release/evcx-bench purchase_race

bench-ssr_market: setup build-release bench-bin
	./target/release/evcx-bench ssr_market

bench-bid_hot: setup build-release bench-bin
	./target/release/evcx-bench bid_hot --concurrency 16

bench-bid_fanout: setup build-release bench-bin
	./target/release/evcx-bench bid_fanout

## A million generated inputs for the file reader, form parsers and payment notifications
## (no database or server; the short run is a unit test of `make test`).
bench-generated_inputs: setup bench-bin
	./target/release/evcx-bench generated_inputs --inputs 1000000

## 100,000 random concurrent operations over every money and credit flow through the real
## services, checked against a pure reference model (server/tests/api/soak.rs; its
## 1,000-operation version runs in `make test`), on a private PostgreSQL with fsync on.
## EVCX_SOAK_OPS, EVCX_SOAK_WORKERS and EVCX_SOAK_SEED change the run.
SOAK_ENV := LEPTOS_OUTPUT_NAME=evcx LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
	LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend LEPTOS_BIN_DIR=server \
	LEPTOS_HASH_FILES=false RUSTFLAGS="--cfg erase_components"
SOAK_TEST := cargo test --release --package=server --no-default-features --test api

bench-soak: setup
	$(SOAK_ENV) $(SOAK_TEST) --no-run
	$(SOAK_ENV) EVCX_SOAK_OPS=$${EVCX_SOAK_OPS:-100000} ./target/release/server pg-run --data-dir target/bench/pg-soak -- \
		$(SOAK_TEST) -- --exact api::soak::soak_against_the_model --nocapture
## 200 cycles of kill -9 (server, PostgreSQL or both) under load, restart and a check of the
## recorded history: nothing acknowledged lost, nothing refused half-done; then SIGTERM under load.
bench-crash: setup build-release bench-bin
	./target/release/evcx-bench crash --cycles 200

bench-bin:
	cargo build --release --package evcx-bench

fmt:
	cargo fmt --all

## Remove the embedded database and mail outbox of `make run`.
clean-data:
	rm -rf .data
