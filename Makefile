# aiguillage — two commands on a fresh machine:
#   make run    venv + install + the embedded pipeline with the demo contacts
#   make test   venv + install + system packages when missing + ruff, mypy, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run up test lint typecheck deps system-deps schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

deps: $(STAMP)

# Debian packages the tests talk to: tesseract (fra), Dovecot, PostgreSQL when none runs.
system-deps:
	@missing=""; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	tesseract --list-langs 2>/dev/null | grep -qx fra || missing="$$missing tesseract-ocr-fra"; \
	command -v dovecot >/dev/null || missing="$$missing dovecot-imapd"; \
	pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	fc-list 2>/dev/null | grep -qi dejavu || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

run: deps system-deps
	$(BIN)/aiguillage up --demo

up: deps
	$(BIN)/aiguillage up

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

test: deps system-deps lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

schemas: deps
	$(BIN)/aiguillage schemas export schemas

bench: deps system-deps
	$(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
