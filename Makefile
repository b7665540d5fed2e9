# Developer entry points of the flexvdi.storage collection (the repository root is the collection).
#   make demo    converge this host with playbooks/getting_started.yml (light setup)
#   make test    every tier: unit, sanity, lint, integration, lab; then one summary line
#   make docs    the collection's docsite (antsibull-docs + Sphinx) in .cache/docsite/html
#   make help    the list
# Every target runs `make setup` first (scripts/setup.sh): idempotent, under a second when done.

ROOT := $(abspath $(dir $(firstword $(MAKEFILE_LIST))))
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

OLD := $(ROOT)/.venv/core219
NEW := $(ROOT)/.venv/newest
# The cores of stock execution environments (AAP 2.5: 2.16; AAP 2.7: 2.16, 2.18): unit tests and
# the sanity tests that depend on the core (its docs, argument specs, imports, runtime schema).
CORE216 := $(ROOT)/.venv/core216
CORE218 := $(ROOT)/.venv/core218
SANITY_COMPAT := --test ansible-doc --test validate-modules --test import --test compile \
	--test runtime-metadata --test action-plugin-docs
# galaxy-importer, ansible-builder, ansible-runner, antsibull-docs (driven by pytest of NEW).
TOOLS := $(ROOT)/.venv/tools
# make docs: the docsite's work directory; the site is its html/ (.cache: gitignored and build-ignored).
DOCSITE := $(ROOT)/.cache/docsite
# JUnit files of every pytest run (and of the other tiers, one case each) that `make test` sums.
# Exported so that included tiers (tests/lab/lab.mk) can write theirs there too.
export FLEXVDI_JUNIT_DIR := $(ROOT)/.cache/junit
JUNIT := $(FLEXVDI_JUNIT_DIR)
# Lint and format targets.
PY_DIRS := plugins tests benchmarks scripts
TIERS := test-unit test-sanity test-lint test-galaxy test-docs test-ee test-awx test-integration test-lab
# What a pytest tier runs: a directory, a file or a node id (make test-integration TESTS=tests/integration/test_x.py).
UNIT_TESTS := tests/unit
INTEGRATION_TESTS := tests/integration
# On the oldest core (2.16, the stock EEs'): the storage role and the getting-started flow.
INTEGRATION_216 := tests/integration/test_role.py -k 'test_getting_started or check_real_again'
ifeq ($(origin TESTS),command line)
UNIT_TESTS := $(TESTS)
INTEGRATION_TESTS := $(TESTS)
endif

.PHONY: help setup setup-light demo docs test $(filter-out test-lab,$(TIERS)) changelog clean

help:
	@echo 'make setup             system packages, .venv/{core216,core218,core219,newest,tools}, collection path (idempotent)'
	@echo 'make demo              run playbooks/getting_started.yml on this host (inventories/local)'
	@echo 'make docs              the docsite: every module, filter, role entry point and the README guides, in .cache/docsite/html'
	@echo 'make test              $(TIERS) (the lab beside awx and integration; LAB_BESIDE=no: last), then "N passed, N failed"'
	@echo 'make test-unit         pytest tests/unit on ansible-core 2.16, 2.18, 2.19 and 2.21'
	@echo 'make test-sanity       ansible-test sanity --local: all tests on 2.19 and 2.21, the core-bound ones on 2.16 and 2.18'
	@echo 'make test-lint         ruff check + format --check, yamllint, ansible-lint (production)'
	@echo 'make test-galaxy       the built tarball: contents, galaxy-importer, antsibull-docs lint, changelog'
	@echo 'make test-docs         the docsite built warning-free, its pages in headless Chromium, every internal link, broken plugin docs'
	@echo 'make test-ee           ansible-builder introspect and create on meta/ and ee/execution-environment.yml'
	@echo 'make test-awx          AWX-shaped jobs through ansible-runner transmit | worker | process (root)'
	@echo 'make test-integration  pytest tests/integration on 2.21, the role and getting-started tests on 2.16 (root)'
	@echo 'make changelog         antsibull-changelog lint + generate (CHANGELOG.rst from changelogs/)'
	@echo 'make test-lab          the multi-host lab (tests/lab/lab.mk); lab-up / lab-down'
	@echo 'Extra pytest arguments: make test-unit PYTEST_ARGS="-k registry -x"; one file: make test-integration TESTS=tests/integration/test_x.py'

setup:
	@scripts/setup.sh full

setup-light:
	@scripts/setup.sh light

demo: setup-light
	cd $(ROOT) && PATH="$(NEW)/bin:$$PATH" ansible-playbook playbooks/getting_started.yml

# Each tier runs all of its steps and fails at the end if any failed.
test-unit: setup
	@rc=0; \
	scripts/pytest-tier unit-2.16 $(CORE216) $(UNIT_TESTS) $(PYTEST_ARGS) || rc=1; \
	scripts/pytest-tier unit-2.18 $(CORE218) $(UNIT_TESTS) $(PYTEST_ARGS) || rc=1; \
	scripts/pytest-tier unit-2.19 $(OLD) $(UNIT_TESTS) $(PYTEST_ARGS) || rc=1; \
	scripts/pytest-tier unit-2.21 $(NEW) $(UNIT_TESTS) $(PYTEST_ARGS) || rc=1; \
	exit $$rc

test-sanity: setup
	@rc=0; \
	scripts/sanity $(CORE216) $(or $(SANITY_ARGS),$(SANITY_COMPAT)) || rc=1; \
	scripts/sanity $(CORE218) $(or $(SANITY_ARGS),$(SANITY_COMPAT)) || rc=1; \
	scripts/sanity $(OLD) $(SANITY_ARGS) || rc=1; \
	scripts/sanity $(NEW) $(SANITY_ARGS) || rc=1; \
	exit $$rc

test-lint: setup
	@rc=0; export PATH="$(NEW)/bin:$$PATH"; \
	step() { echo "== $$*"; "$$@" || { echo "test-lint: FAILED: $$*" >&2; rc=1; }; }; \
	step ruff check $(PY_DIRS); \
	step ruff format --check $(PY_DIRS); \
	step yamllint --strict .; \
	step ansible-lint; \
	exit $$rc

# The ecosystem tiers: pytest of the newest track drives the tools of .venv/tools (FLEXVDI_TOOLS).
test-galaxy: setup
	@FLEXVDI_TOOLS=$(TOOLS) scripts/pytest-tier galaxy $(NEW) tests/ecosystem/test_galaxy.py $(PYTEST_ARGS)

# The docsite, built from the plugins' and roles' documentation and README.md's guides; any warning fails.
docs: setup
	@$(TOOLS)/bin/python scripts/docsite/build.py --out $(DOCSITE)

test-docs: setup
	@FLEXVDI_TOOLS=$(TOOLS) scripts/pytest-tier docs $(NEW) tests/ecosystem/test_docs.py $(PYTEST_ARGS)

test-ee: setup
	@FLEXVDI_TOOLS=$(TOOLS) scripts/pytest-tier ee $(NEW) tests/ecosystem/test_ee.py $(PYTEST_ARGS)

test-awx: setup
	@if [ "$$(id -u)" != 0 ]; then echo "test-awx: must run as root (mounts, fstab and registry of this host's stand-ins)" >&2; exit 1; fi
	@FLEXVDI_TOOLS=$(TOOLS) scripts/pytest-tier awx $(NEW) tests/ecosystem/test_awx.py $(PYTEST_ARGS)

# The release notes: lint the fragments and render CHANGELOG.md (what `antsibull-changelog release` wrote).
changelog: setup
	cd $(ROOT) && export PATH="$(TOOLS)/bin:$$PATH" && antsibull-changelog lint && antsibull-changelog generate

test-integration: setup
	@if [ "$$(id -u)" != 0 ]; then echo "test-integration: must run as root (loop devices, mounts, daemons)" >&2; exit 1; fi
	@rc=0; \
	scripts/pytest-tier integration $(NEW) $(INTEGRATION_TESTS) $(PYTEST_ARGS) || rc=1; \
	if [ "$(origin TESTS)" != "command line" ]; then \
	  scripts/pytest-tier integration-2.16 $(CORE216) $(INTEGRATION_216) $(PYTEST_ARGS) || rc=1; \
	fi; \
	exit $$rc

# All tiers run even when one fails, so one run tells everything; the summary line sums the
# JUnit files of every pytest run, plus one case for each tier that wrote none of its own.
# The lab runs beside the slow tiers (LAB_BESIDE=no: last, alone): its guests mostly wait on
# SSH round trips and the integration tier mostly on one ansible-playbook at a time, so on two
# cores they overlap well. The quick tiers run before it, alone: some unit tests time this
# machine, and sanity and lint keep both cores busy (beside them, the lab's converge took 1282 s
# instead of 906 s, far more than the 160 s they take). Its output goes to $(LAB_LOG), shown
# when it ends; it writes no JUnit file, so its one case is recorded from its exit status.
QUICK_TIERS := test-unit test-sanity test-lint test-galaxy test-docs test-ee
SLOW_TIERS := test-awx test-integration
LAB_BESIDE ?= yes
LAB_LOG := $(ROOT)/.cache/test-lab.log
test: setup
	@rm -rf $(JUNIT); mkdir -p $(JUNIT); rc=0; \
	run_tier() { \
	  echo "=================== $$1"; \
	  scripts/junit.py begin $(JUNIT) $$1; \
	  $(MAKE) --no-print-directory $$1 && trc=0 || trc=$$?; \
	  scripts/junit.py end $(JUNIT) $$1 $$trc; \
	  [ $$trc = 0 ] || rc=1; \
	}; \
	run_lab() { \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory test-lab >$(LAB_LOG) 2>&1 && lrc=0 || lrc=$$?; \
	  scripts/junit.py record $(JUNIT) test-lab $$lrc "test-lab exited with status $$lrc (log: $(LAB_LOG))"; \
	  echo "test-lab: exited $$lrc after $$(( $$(date +%s) - start )) s" >>$(LAB_LOG); \
	  return $$lrc; \
	}; \
	for tier in $(QUICK_TIERS); do run_tier $$tier; done; \
	if [ "$(LAB_BESIDE)" = yes ]; then \
	  echo "=================== test-lab (beside the tiers below; output in $(LAB_LOG))"; \
	  run_lab & labpid=$$!; \
	  for tier in $(SLOW_TIERS); do run_tier $$tier; done; \
	  wait $$labpid || rc=1; \
	else \
	  for tier in $(SLOW_TIERS); do run_tier $$tier; done; \
	  run_lab || rc=1; \
	fi; \
	echo "=================== test-lab output"; cat $(LAB_LOG); \
	scripts/junit.py summary $(JUNIT); \
	exit $$rc

clean:
	rm -rf .cache/junit .cache/sanity .cache/docsite tests/output .pytest_cache .ruff_cache

include tests/lab/lab.mk
