# VoxPersona — `make run` runs the platform, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell sha256sum $(LOCK) pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup browser run test test-all lint bench bench-all bento lock clean reliability

VOICE_CACHE_STAMP := .cache/voice-engine-ok

setup: $(STAMP) .cache/apt-ok $(VOICE_CACHE_STAMP)

.cache/apt-ok:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@# npm installs make run's durable dev chain (anvil) once; any Node.js with npm will do.
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing Node.js and npm"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	@mkdir -p .cache && touch $@

$(STAMP): $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25"
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

# The emulator voice engine's base-voice statistics, measured once into the machine-wide cache
# ($VOXPERSONA_VOICE_CACHE, else ~/.cache/voxpersona/voice-engine): a fresh emulator's first clone reads them.
# Reruns after the venv, the Debian voices or the engine change (nothing left to measure: a few seconds); an
# emulator that finds the cache stale or missing measures and writes it itself.
$(VOICE_CACHE_STAMP): $(STAMP) .cache/apt-ok bentos/stepfun/emulator/engine.py bentos/stepfun/emulator/stats_cache.py encoders/synthetic.py
	$(PY) -m bentos.stepfun.emulator --warm-cache
	@mkdir -p .cache && touch $@

run: setup
	$(PY) -m scripts.run $(ARGS)

test: setup
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

test-all: setup browser
	$(MAKE) test PYTEST_ARGS="-m 'slow or not slow' $(PYTEST_ARGS)"

# Debian's chromium for the browser journeys (slow tests; they skip without it). Playwright drives it: no
# browser download.
browser: .cache/chromium-ok

.cache/chromium-ok:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@mkdir -p .cache && touch $@

lint: setup
	$(VENV)/bin/ruff check encoders bentos scripts tests streamlit_app
	$(VENV)/bin/ruff format --check encoders bentos scripts tests streamlit_app
	$(VENV)/bin/mypy encoders bentos streamlit_app

bench: setup
	$(PY) -m scripts.bench_intake

# Every benchmark (≈ 10 minutes on 2 cores); each prints a table and writes bench_results/<name>.json.
bench-all: bench
	$(PY) -m scripts.bench_stepfun
	$(PY) -m scripts.bench_chain
	$(PY) -m scripts.bench_encoders
	$(PY) -m scripts.bench_pipeline
	$(PY) -m scripts.bench_tts
	$(PY) -m scripts.bench_embed_service
	$(PY) -m scripts.bench_memory

# Fuzz, hostile corpus, fault matrix and a load test on postgres + redis → var/reliability/report.md (targets
# met/missed). ARGS="--quick" runs each step small; ARGS="--only load,fuzz" a subset.
reliability: setup
	$(PY) -m scripts.reliability_report $(ARGS)

# Package the services as a Bento (BentoML's deployable unit); `bentoml containerize` turns it into an image.
bento: setup
	BENTOML_HOME=$${BENTOML_HOME:-$(CURDIR)/.cache/bentoml} $(VENV)/bin/bentoml build -f bentofile.yaml .

# Re-resolve the lock from pyproject (needs the registry); commit the result.
lock:
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip freeze --all --exclude-editable | grep -vE '^(pip|wheel)==' > $(LOCK)

clean:
	rm -rf $(VENV) .cache var bench_results
