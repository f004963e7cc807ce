"""Benchmarks of the bulk provisioning DAG against its naive peers: ``python -m bench.run``."""
