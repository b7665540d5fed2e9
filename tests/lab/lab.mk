# Lab targets (owned by the lab work; placeholder until it lands).
.PHONY: test-lab lab-up lab-down
test-lab:
	@echo "test-lab: the lab scenario is not built yet" >&2; exit 1
lab-up lab-down:
	@echo "$@: the lab is not built yet" >&2; exit 1
