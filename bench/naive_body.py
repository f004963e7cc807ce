"""Customer row → Bolna create-trunk body, the way a user without our provider would write it.

Standard library only: shared by the naive HttpOperator DAG and the plain httpx loop, so both
peers send exactly the same bodies. It understands the columns produced by
``airflow_provider_bolna.sandbox.seed`` (the benchmark data set, no invalid rows), not
the whole column contract.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SPLIT = re.compile(r"[,;\s]+")


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "t", "1", "yes", "y", "on")


def _gateways(raw: str) -> list[dict[str, Any]]:
    raw = raw.strip()
    if raw.startswith("["):
        return [
            {
                "gateway_address": g["gateway_address"],
                "port": int(g.get("port", 5060)),
                "priority": int(g.get("priority", i + 1)),
            }
            for i, g in enumerate(json.loads(raw))
        ]
    out = []
    for i, item in enumerate(p for p in re.split(r"[;,\s]+", raw) if p):
        host, _, port = item.partition(":")
        out.append({"gateway_address": host, "port": int(port or 5060), "priority": i + 1})
    return out


def numbers_of(row: dict[str, Any]) -> list[str]:
    """The row's phone numbers."""
    return [n for n in _SPLIT.split(row.get("numbers") or "") if n]


def trunk_body(row: dict[str, Any], *, inline_numbers: bool) -> dict[str, Any]:
    """The ``POST /sip-trunks/trunks`` body of one customer row."""
    body: dict[str, Any] = {
        "name": f"cust-{row['customer_id']}",
        "provider": row["provider"],
        "auth_type": row["auth_type"],
        "gateways": _gateways(row["gateways"]),
        "allow": row.get("allow") or "ulaw,alaw",
        "transport": f"transport-{row.get('transport') or 'udp'}",
        "media_encryption": row.get("media_encryption") or "no",
        "inbound_enabled": _bool(row.get("inbound_enabled")),
        "outbound_leading_plus_enabled": _bool(row.get("outbound_leading_plus_enabled")),
    }
    if row["auth_type"] == "userpass":
        body["auth_username"] = row["auth_username"]
        body["auth_password"] = row["auth_password"]
    else:
        body["ip_identifiers"] = [{"ip_address": ip} for ip in _SPLIT.split(row["ip_identifiers"]) if ip]
    if inline_numbers:
        body["phone_numbers"] = [{"phone_number": n} for n in numbers_of(row)]
    return body
