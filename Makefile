# Developer shortcuts; the README's two commands (scripts/demo, scripts/test) need no make.
VENV := .venv/bin

.PHONY: setup build ss demo test test-debug lint checkpatch abi wheel clean

setup:
	scripts/setup

build: setup
	$(VENV)/quicctl build

# iproute2's ss with QUIC sockets (ss -Q), patched from Debian's source: build/iproute2/ss.
ss:
	scripts/build-ss

demo:
	scripts/demo

test:
	scripts/test

test-debug:
	scripts/test --debug-kernel

lint:
	$(VENV)/ruff check quicctl selftests
	$(VENV)/ruff format --check quicctl selftests

# quicctl/_uapi.py: the UAPI header through the preprocessor, for installs without a compiler.
abi:
	$(VENV)/python -m quicctl.abi --write

# The installable package: pip install dist/quicctl-*.whl (add [cli] for the command line).
wheel:
	$(VENV)/pip wheel --no-deps -w dist .

checkpatch:
	../shared/tools/checkpatch.sh $$(git ls-files 'kernel/*.c' 'kernel/*.h')

clean:
	rm -rf build dist
