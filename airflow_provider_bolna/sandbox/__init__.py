"""A local, faithful, fault-injecting stand-in of Bolna's ``/sip-trunks`` and agent-binding API.

The sandbox is an independent second opinion of the API: it imports neither Airflow nor
anything else of ``airflow_provider_bolna``. It is a plain ASGI application served by uvicorn,
keeps its state in SQLite, can inject latency, rate limiting and failures deterministically,
and records every write attempt so that tests can assert what the client did.

Run it with ``bolna-sandbox`` / ``python -m airflow_provider_bolna.sandbox``; drive it from
tests with :class:`airflow_provider_bolna.sandbox.testing.SandboxServer` or the pytest
fixtures in :mod:`airflow_provider_bolna.sandbox.pytest_plugin`. See ``docs/sandbox.md``.

Kept import-light on purpose (the pytest plugin is loaded in every test run).
"""

from __future__ import annotations

DEFAULT_API_KEY = "sandbox-key"
ADMIN_PREFIX = "/__sandbox__"
PID_HEADER = "x-sandbox-pid"
"""Header on every admin response: the server's process id (launchers check it is theirs)."""

__all__ = ["ADMIN_PREFIX", "DEFAULT_API_KEY", "PID_HEADER"]
