# The multi-host lab (included by the top-level Makefile): Debian 12 guests under QEMU
# software emulation, see tests/lab/labctl and molecule/lab/.
#   make test-lab    molecule test -s lab: destroy, create, prepare, converge, idempotence,
#                    verify, destroy (destroy also runs when a step fails)
#   make lab-up      boot node1, node2 and nas and prepare them (NFS export, local disks); then e.g.
#                    .venv/newest/bin/ansible-playbook -i inventories/lab playbooks/site.yml
#   make lab-down    stop the guests, delete taps, bridge and overlays (safe to repeat)
#   make lab-image   build the guest image now (cached in ~/.cache/flexvdi-lab by recipe hash)
#   make lab-status  what is running
# One guest: tests/lab/labctl stop NAME [--kill], tests/lab/labctl start NAME [--without SERIAL].
LAB_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
VENV_NEWEST ?= $(LAB_ROOT)/.venv/newest
LABCTL := $(LAB_ROOT)/tests/lab/labctl
LAB_PATH := $(VENV_NEWEST)/bin:$(PATH)

.PHONY: test-lab lab-up lab-down lab-image lab-status

# `labctl check` prints one line saying why when this machine cannot run QEMU guests, and
# fails: the lab never passes silently.
test-lab: setup
	@$(LABCTL) check
	@cd $(LAB_ROOT) && start=$$(date +%s) && \
	  PATH="$(LAB_PATH)" FLEXVDI_LAB_RESTORE=no molecule test -s lab && rc=0 || rc=$$?; \
	  echo "test-lab: molecule test -s lab exited $$rc after $$(( $$(date +%s) - start )) s"; \
	  exit $$rc

lab-image: setup
	@$(LAB_ROOT)/tests/lab/image.sh >/dev/null

lab-up: setup
	@$(LABCTL) up
	@cd $(LAB_ROOT) && PATH="$(LAB_PATH)" ansible-playbook -i inventories/lab molecule/lab/prepare.yml

lab-down:
	@$(LABCTL) down

lab-status:
	@$(LABCTL) status
