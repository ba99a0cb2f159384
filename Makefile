# The two commands: `make run` (demo on http://127.0.0.1:$PORT, default 8000, with a Celery worker + beat) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Settings read PORT: e-mail links (SITE_URL unset) follow the port the demo serves on.
export PORT
DEMO_CLIENTS ?= 3000

.PHONY: run test stack bench lint messages venv dev-venv clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.dev-installed

run: venv
	mkdir -p var/staticfiles
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo_setup --clients $(DEMO_CLIENTS)
	$(PY) manage.py run_demo 127.0.0.1:$(PORT)

test: dev-venv
	mkdir -p var/staticfiles
	$(PY) -m pytest $(PYTEST_ARGS)

stack: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/honcho start -f Procfile

bench: dev-venv
	$(PY) -m bench.import_transactions

lint: dev-venv
	$(VENV)/bin/ruff check .

messages: dev-venv
	$(PY) manage.py makemessages -l zh_Hans -l en --ignore=.venv --ignore=var --no-obsolete
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf var/crm.sqlite3* var/media var/test-media
