# Son1kVers3 backend. `make dev` runs the API locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cksum < local/requirements.txt | cut -d' ' -f1)
PYTHON ?= python3
# `make token USER=alice`: USER is also the login name in the environment, so only a USER given on
# the command line counts; without one the token is for the seeded test_user_1.
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),test_user_1)

.PHONY: help venv dev test lint fmt token reset build clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): local/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r local/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## install the local stack's tools (moto, cfn-lint) into .venv

dev: venv ## serve the API on 127.0.0.1:8000 (API_PORT) over local DynamoDB + S3; Ctrl-C stops all
	local/dev.sh

test: venv ## run every test against a fresh local stack
	local/with-stack.sh cargo test --workspace

lint: venv ## cfn-lint the template, rustfmt and clippy
	$(VENV)/bin/cfn-lint template.yaml
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	cargo fmt --all

token: ## print a local bearer token: make token USER=alice [ADMIN=1] [EMAIL=a@b.c]
	@cargo build --quiet --workspace --bin local-api && target/debug/local-api token --user $(TOKEN_USER) $(if $(ADMIN),--admin) $(if $(EMAIL),--email $(EMAIL))

reset: ## run scheduled-reset against the running `make dev` stack: make reset KIND=daily|monthly
	@cargo build --quiet --workspace --bin local-api && AWS_ENDPOINT_URL=http://127.0.0.1:$${MOTO_PORT:-4566} \
	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 target/debug/local-api reset $(or $(KIND),daily)

build: ## release build of every function
	cargo build --workspace --release --bins

clean: ## remove build outputs and the venv
	cargo clean
	rm -rf $(VENV)
