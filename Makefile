# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3.10
VENV := .venv
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed
# Debian's Chromium and its WebDriver, for the tests of the pages people open (run report,
# serving's drawing page).
BROWSER := /usr/bin/chromedriver
# Debian's buildah (daemonless, builds and runs images as root without a container engine) and
# debootstrap (the stand-in of python:3.10-slim in tests/python_standin.sh), for the image tests.
IMAGE_TOOLS := /usr/bin/buildah /usr/sbin/debootstrap

.PHONY: run test test-fast lint lock clean images python-standin

run: $(INSTALLED)
	$(VENV)/bin/mnist-tfx run $(ARGS)

# Every test, the full-MNIST ones (marked `slow`), the browser ones and the images' included.
test: $(INSTALLED) $(BROWSER) $(IMAGE_TOOLS)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The edit-test loop: unit tests only (no pipeline runs, training, servers or browser), < 1 min.
test-fast: $(INSTALLED)
	$(VENV)/bin/python -m pytest -m "not slow and not integration" $(PYTEST_ARGS)

# Style (ruff) and the layers of .importlinter: who may import whom, no cycles, serving TF-free.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

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

$(BROWSER):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

$(IMAGE_TOOLS):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap

# The serving and Kubeflow images, with docker, podman or buildah (scripts/build_images.sh says
# which variables it reads: TAG, BASE_IMAGE, EDGETPU_COMPILER, CA_BUNDLE, ENGINE...).
IMAGES ?= serving kubeflow
images:
	scripts/build_images.sh $(IMAGES)

# No registry reachable: a stand-in of python:3.10-slim, localhost/python-standin:3.10-slim, to
# build with `make images BASE_IMAGE=localhost/python-standin:3.10-slim` (root, buildah).
python-standin: $(IMAGE_TOOLS)
	tests/python_standin.sh

lock: $(INSTALLED)
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.10 -o requirements.lock

clean:
	rm -rf $(VENV) output
