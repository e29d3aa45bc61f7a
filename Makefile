# The two commands: `make run` (the product, embedded) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: run test lint format graph clean messages translations

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "Creating the virtualenv in $(VENV)…"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing the Python packages (the first time takes a few minutes)…"
	@$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt \
		| grep -v "^Requirement already satisfied" || true
	@$(BIN)/python -c "import django, celery" || { echo "Installing failed: see the pip output above."; exit 1; }
	@DEBUG=1 $(BIN)/python manage.py compile_translations >/dev/null
	@touch $(STAMP)

## Compile the translation catalogues (.po → .mo) in pure Python; only stale ones.
translations: $(STAMP)
	@DEBUG=1 $(BIN)/python manage.py compile_translations >/dev/null

## Refresh locale/de/LC_MESSAGES/django.po from the code (needs GNU gettext; no location
## lines, which only make merge conflicts). Then translate the new entries and `make test`.
messages: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py makemessages -l de --no-location --no-wrap --ignore=.venv --ignore=var --ignore=bench
	DEBUG=1 $(BIN)/python manage.py makemessages -d djangojs -l de --no-location --no-wrap --ignore=.venv --ignore=var --ignore=bench --ignore=node_modules

## Run web + Celery worker + beat on SQLite with demo data (Ctrl-C stops all).
run: $(STAMP) translations
	@PORT=$(PORT) $(BIN)/python scripts/run_embedded.py

## Run the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: $(STAMP) translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Print the deal state machine (Mermaid) from the model.
graph: $(STAMP)
	@DEBUG=1 $(BIN)/python manage.py deal_graph --markdown

clean:
	rm -rf $(VENV) var
