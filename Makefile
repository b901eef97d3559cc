.PHONY: run test bench
run:  ## run Pli with demo accounts on localhost
	scripts/run
test: ## every check and test, on SQLite and PostgreSQL
	scripts/test
bench: ## benchmarks (prints tables; see docs/PERFORMANCE.md)
	scripts/bootstrap "[test]" && .venv/bin/python -m bench.run_all
