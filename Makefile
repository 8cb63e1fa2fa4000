# The two commands a new user needs (each does the whole setup on first use):
#   make run    start the Gradio app on http://127.0.0.1:7860
#   make test   run the whole test suite (add PYTEST_ARGS="-m 'not slow'" to skip full-size parity)
# make space-check: would this repository build as a Hugging Face Space? (needs the registry)
VENV ?= .venv
PYTEST_ARGS ?=
export SEMAT_VENV := $(VENV)

.PHONY: run test lint setup space-check

run:
	bash scripts/setup.sh app
	$(VENV)/bin/python app.py

test:
	bash scripts/setup.sh test
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

space-check:
	bash scripts/setup.sh test
	$(VENV)/bin/python scripts/space_check.py

lint:
	$(VENV)/bin/python -m ruff check .
