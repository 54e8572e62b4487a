# Developer shortcuts; the README's two commands (scripts/demo, scripts/test) need no make.
VENV := .venv/bin

.PHONY: setup build demo test test-debug lint checkpatch clean

setup:
	scripts/setup

build: setup
	$(VENV)/quicctl build

demo:
	scripts/demo

test:
	scripts/test

test-debug:
	scripts/test --debug-kernel

lint:
	$(VENV)/ruff check quicctl selftests
	$(VENV)/ruff format --check quicctl selftests

checkpatch:
	../shared/tools/checkpatch.sh $$(git ls-files 'kernel/*.c' 'kernel/*.h')

clean:
	rm -rf build
