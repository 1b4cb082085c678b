# Entry points; the scripts do the work and document their variables.
#   make test    every test, as CI runs it (scripts/test.sh)
#   make drill   the full fault drill with its results table (scripts/drill.sh)
#   make soak    a soak run, SOAK_DURATION (default 30m) at SOAK_RATE (scripts/soak.sh)
#   make bench   ingest throughput next to NATS's and ClickHouse's limits
#   make bench-intake   the HTTP intake next to the SDK's direct publish and NATS's limit
#   make cluster-test   scale-out on real clusters on this machine: 3 NATS nodes, 2x2 ClickHouse, faults (scripts/cluster-test.sh)
#   make release static binaries for linux/amd64, linux/arm64 and darwin/arm64 with SHA256SUMS, in dist/
.PHONY: test drill soak bench bench-intake cluster-test release

test:
	bash scripts/test.sh

drill:
	bash scripts/drill.sh

soak:
	bash scripts/soak.sh

bench:
	bash scripts/bench-ingest.sh

bench-intake:
	bash scripts/bench-intake.sh

cluster-test:
	bash scripts/cluster-test.sh

release:
	bash scripts/release.sh
