# Backdrop — set-up, demo and tests. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MEDIAPIPE_WHEEL_DIR := .cache/mediapipe
# Debian packages the tests use: GStreamer's RTSP server (relay), ffmpeg/ffprobe, Chromium, Xvfb, xdotool.
APT_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-libav ffmpeg chromium xvfb xdotool

.PHONY: install system-deps fetch-mediapipe demo test test-fast lint bench weights clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

fetch-mediapipe: install
	@ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.14-*.whl >/dev/null 2>&1 || \
		$(PY) -m pip download -q --no-deps --only-binary=:all: mediapipe==0.10.14 -d $(MEDIAPIPE_WHEEL_DIR)

# The bundled default: a 5 s 720p clip of a person made from a public-domain photo, background blurred.
demo: install
	$(PY) -m backdrop.stream.sources.demo_clip out/demo_input.mp4 --size 1280x720 --frames 150
	$(VENV)/bin/backdrop run --config configs/file.yaml --source out/demo_input.mp4 --background blur:31 \
		--output out/demo.mp4 --stats-json out/demo_stats.json

test: install system-deps fetch-mediapipe
	$(VENV)/bin/pytest -q

test-fast: install
	$(VENV)/bin/pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Regenerates benchmarks/results/ (JSON, Markdown, plots) and the README's Performance tables.
bench: install
	$(PY) -m backdrop bench --out benchmarks/results --readme README.md

weights: fetch-mediapipe
	$(PY) -m backdrop model import --wheel $$(ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.14-*.whl)

clean:
	rm -rf out .pytest_cache .ruff_cache
