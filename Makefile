# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3.10
VENV := .venv
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed

.PHONY: run test lock clean

run: $(INSTALLED)
	$(VENV)/bin/mnist-tfx run $(ARGS)

test: $(INSTALLED)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# A venv with pip seeded (TFX installs user modules with pip), uv inside it for a fast,
# reproducible install from the lock file, then this project without re-resolving. Bytecode is
# compiled at install time: with PYTHONDONTWRITEBYTECODE set, every process (Beam workers too)
# would otherwise recompile TensorFlow's sources on import, tens of seconds each.
$(INSTALLED): requirements.lock setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(VENV)/bin/python -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --no-deps -e .
	touch $@

lock: $(INSTALLED)
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.10 -o requirements.lock

clean:
	rm -rf $(VENV) output
