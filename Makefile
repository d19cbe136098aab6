# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Everything they need is installed by scripts/bootstrap, idempotently, on 127.0.0.1 only.
.PHONY: demo test bench lint clean

demo:
	@scripts/bootstrap
	.venv/bin/zt demo

test:
	@scripts/bootstrap --test
	scripts/test

bench:
	@scripts/bootstrap
	.venv/bin/zt bench

lint:
	@scripts/bootstrap
	.venv/bin/ruff check .

clean:
	rm -rf .venv build *.egg-info .zt
