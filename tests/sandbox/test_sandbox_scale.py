"""The sandbox holds 100k trunks and lists them in one go, quickly.

The database is bulk-loaded in-process (one transaction), then served by a real sandbox.
``BOLNA_SANDBOX_SCALE_TRUNKS`` overrides the count (default 100 000).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.sandbox.store import Store
from airflow_provider_bolna.sandbox.validation import validate_create

from .conftest import TRUNKS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNT = int(os.environ.get("BOLNA_SANDBOX_SCALE_TRUNKS", "100000"))


def bulk_load(db_path: Path, count: int) -> None:
    store = Store(str(db_path))
    try:
        store.import_trunks(
            validate_create(
                {
                    "name": f"cust-{i}",
                    "provider": "scale",
                    "auth_type": "ip-based",
                    "ip_identifiers": [{"ip_address": "203.0.113.0/24"}],
                    "gateways": [{"gateway_address": f"gw{i}.example.com"}],
                    "phone_numbers": [{"phone_number": f"+1415{i:07d}"}],
                }
            )
            for i in range(count)
        )
    finally:
        store.close()


def test_list_100k_trunks(bolna_sandbox_factory: Any, tmp_path: Path) -> None:
    db_path = tmp_path / "scale.db"
    bulk_load(db_path, COUNT)
    server = bolna_sandbox_factory(db_path)
    with server.client(timeout=120) as client:
        started = time.perf_counter()
        response = client.get(TRUNKS)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        trunks = response.json()
        assert len(trunks) == COUNT
        assert trunks[0]["name"] == "cust-0" and trunks[-1]["name"] == f"cust-{COUNT - 1}"
        assert trunks[7]["phone_numbers"][0]["phone_number"] == "+14150000007"
        print(f"\nGET {TRUNKS} with {COUNT} trunks: {elapsed:.2f}s, {len(response.content) / 1e6:.0f} MB")
        assert elapsed < 60

        started = time.perf_counter()
        assert client.get(f"{TRUNKS}/{trunks[COUNT // 2]['id']}").status_code == 200
        assert client.get(TRUNKS, params={"is_active": "false"}).json() == []
        assert time.perf_counter() - started < 1.0
    counters = server.admin.counters()
    assert counters["trunks"] == COUNT and counters["numbers"] == COUNT
