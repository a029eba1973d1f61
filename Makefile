# The two commands of the README:
#   make run   - execute every notebook in the quick profile and collect the figures
#   make test  - run the whole test suite
# Both create their own virtual environment (.venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARCH   := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH  := torch==2.9.1 torchvision==0.24.1
else
TORCH  := torch==2.14.1 torchvision==0.29.1
endif
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: run test bench env clean

env: $(VENV)/.installed

# The venv takes about 6 GB on x86_64 (torch is a CUDA build there): say so before pip runs out of disk.
NEED_GB := 7
$(VENV)/.installed: pyproject.toml Makefile
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); if [ "$$free" -lt $(NEED_GB) ]; then \
	  echo "make: the environment needs about $(NEED_GB) GB of free disk in $$(pwd), but only $$free GB are free." >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev,dask]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

run: env
	$(PY) -m jmlkit run --profile quick --jobs 2 --timeout 1200 --out runs/quick --figures figures/quick --results results/quick

test: env
	$(PY) -m pytest -n 2 --dist loadgroup

bench: env
	$(PY) benchmarks/bench_losses.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_train.py --throughput
	$(PY) benchmarks/bench_playground.py
	$(PY) benchmarks/bench_scheduler.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
