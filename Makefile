# Backdrop — set-up, demo and tests. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MEDIAPIPE_WHEEL_DIR := .cache/mediapipe
# MediaPipe's own interpreter, for the test that Backdrop's masks agree with MediaPipe's loop (tests/test_resampling.py).
MEDIAPIPE_VENV := .cache/mpvenv
# Debian packages the tests use: GStreamer's RTSP server (relay), ffmpeg/ffprobe, Chromium, Xvfb, xdotool.
APT_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-libav ffmpeg chromium xvfb xdotool

.PHONY: install install-core system-deps fetch-mediapipe mediapipe-env demo test test-fast lint docs bench weights clean

# Two stamps: `make demo` installs the core alone (numpy, OpenCV headless, ONNX Runtime, PyAV: no TensorFlow, Ray,
# pygame or pytest); `make test`, `lint` and `bench` add the dev extras on top. The dev stamp refreshes the core's
# (and the docs') stamp, so `make demo` after `make test` installs nothing, and `make test` after `make demo` adds
# only what the demo left out.
install: $(VENV)/.installed-dev
install-core: $(VENV)/.installed-core

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[docs]'
	touch $@ $(VENV)/.installed-core

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-core $(VENV)/.installed-docs

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

fetch-mediapipe: install
	@ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.14-*.whl >/dev/null 2>&1 || \
		$(PY) -m pip download -q --no-deps --only-binary=:all: mediapipe==0.10.14 -d $(MEDIAPIPE_WHEEL_DIR)

# mediapipe pins numpy < 2, so it gets a venv of its own, never $(VENV). Only what its selfie segmentation imports
# (not its jax, jaxlib, sounddevice, opencv-contrib-python); OpenCV 4.10, as the wheel links, decodes the same frames.
mediapipe-env: $(MEDIAPIPE_VENV)/.installed

$(MEDIAPIPE_VENV)/.installed: | fetch-mediapipe
	rm -rf $(MEDIAPIPE_VENV)
	$(PY) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/python -m pip install -q "numpy<2" "protobuf>=4.25.3,<5" absl-py "attrs>=19.1.0" \
		"flatbuffers>=2.0" matplotlib opencv-python-headless==4.10.0.84
	$(MEDIAPIPE_VENV)/bin/python -m pip install -q --no-deps $$(ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.14-*.whl)
	$(MEDIAPIPE_VENV)/bin/python -c "import mediapipe as mp; mp.solutions.selfie_segmentation.SelfieSegmentation"
	touch $@

# The bundled default: a 5 s 720p clip of a person made from a public-domain photo, background blurred. The core
# install is all it needs; -y replaces the outputs of an earlier `make demo`.
demo: install-core
	$(PY) -m backdrop.stream.sources.demo_clip out/demo_input.mp4 --size 1280x720 --frames 150
	$(VENV)/bin/backdrop run --config configs/file.yaml --source out/demo_input.mp4 --background blur:31 \
		--output out/demo.mp4 --stats-json out/demo_stats.json -y

# The tests check MediaPipe's own loop with MediaPipe's interpreter (tests/test_resampling.py).
TEST_ENV := BACKDROP_MEDIAPIPE_PYTHON=$(abspath $(MEDIAPIPE_VENV))/bin/python

test: install system-deps fetch-mediapipe mediapipe-env
	$(TEST_ENV) $(VENV)/bin/pytest -q

test-fast: install system-deps fetch-mediapipe mediapipe-env
	$(TEST_ENV) $(VENV)/bin/pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/typecheck.py

# The documentation site (docs/, mkdocs.yml) into site/; its CLI and config reference are generated from the code at
# build time (docs/gen_reference.py). --strict: a broken link or a missing page fails the build.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

# Regenerates benchmarks/results/ (JSON, Markdown, plots) and the tables of docs/performance.md, with MediaPipe's
# documented loop measured beside ours in the same run (its own interpreter: mediapipe pins numpy < 2).
bench: install mediapipe-env
	$(PY) -m backdrop bench --out benchmarks/results --readme docs/performance.md --against mediapipe \
		--mediapipe-python $(MEDIAPIPE_VENV)/bin/python

weights: fetch-mediapipe
	$(PY) -m backdrop model import --wheel $$(ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.14-*.whl)

clean:
	rm -rf out site .pytest_cache .ruff_cache
