"""A realistic, deterministic customer table for the demo, the tests and the benchmarks.

Mixed carriers (twilio, plivo, zadarma, telnyx, vonage, exotel), userpass and ip-based
authentication, gateways as text or JSON, 1–3 numbers per customer (unique across customers,
with and without ``+``), some TLS + SDES trunks, and ``invalid`` rows that break one rule each
(bad CIDR, port 70000, SDES without TLS, missing password, a 2-digit number, a bad boolean).

With ``agents=N``, customers also get Bolna agents (ids :func:`agent_id` 0..N-1, which a
sandbox must know: :func:`agent_ids`): an inbound agent per customer, every tenth customer a
number of its own with another agent, every third an outbound agent.

Works on any DB-API connection (``?`` or ``%s`` placeholders); :func:`seed_sqlite` is the
one-liner for a file. Demo and test data: it lives beside the sandbox, not in the product.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CUSTOMER_COLUMNS",
    "INVALID_KINDS",
    "PROVIDERS",
    "agent_id",
    "agent_ids",
    "create_customers_table",
    "generate_customers",
    "insert_customers",
    "seed_sqlite",
]

PROVIDERS: tuple[str, ...] = ("twilio", "plivo", "zadarma", "telnyx", "vonage", "exotel")
INVALID_KINDS: tuple[str, ...] = (
    "bad_cidr",
    "port_70000",
    "sdes_without_tls",
    "missing_password",
    "short_number",
    "bad_boolean",
)
#: The table's columns (all of the contract's main columns plus a company name).
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "company",
    "status",
    "provider",
    "auth_type",
    "auth_username",
    "auth_password",
    "gateways",
    "ip_identifiers",
    "allow",
    "transport",
    "media_encryption",
    "numbers",
    "inbound_enabled",
    "outbound_leading_plus_enabled",
    "inbound_agent_id",
    "outbound_agent_ids",
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_WORDS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "vandelay",
    "pied",
    "dunder",
    "gringotts",
    "oscorp",
    "monarch",
    "aperture",
)


def _gateway_host(provider: str, rng: random.Random, cid: int) -> str:
    return {
        "twilio": f"cust{cid}.pstn.twilio.com",
        "plivo": f"{rng.randrange(10**8, 10**9)}.zt.plivo.com",
        "zadarma": "pbx.zadarma.com",
        "telnyx": "sip.telnyx.com",
        "vonage": "sip.nexmo.com",
        "exotel": f"cust{cid}.voip.exotel.com",
    }[provider]


def number_for(customer_id: int, index: int) -> str:
    """A phone number unique to (customer, index): ``+1`` and 10 digits."""
    return f"+1{2_000_000_000 + customer_id * 4 + index}"


def agent_id(index: int) -> str:
    """The id of demo agent ``index`` (32 hex characters, like Bolna's)."""
    return f"a9e{index:029x}"


def agent_ids(count: int) -> list[str]:
    """The ids of demo agents 0..count-1 (create them in the sandbox before binding)."""
    return [agent_id(i) for i in range(count)]


def generate_customers(
    count: int, invalid: int = 0, seed: int = 0, start_id: int = 1, agents: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` customer rows (dicts of :data:`CUSTOMER_COLUMNS`), ``invalid`` of them broken.

    :param count: customers.
    :param invalid: how many rows break a rule (spread evenly; kinds cycle through :data:`INVALID_KINDS`).
    :param seed: random seed (same seed, same rows).
    :param start_id: first ``customer_id``.
    :param agents: size of the agent pool the customers are bound to (0: no agents).
    """
    if invalid > count:
        raise ValueError("invalid must be <= count")
    rng = random.Random(seed)
    step = count / invalid if invalid else 0
    broken = {start_id + int(i * step + step / 2) for i in range(invalid)}
    kinds = iter(INVALID_KINDS * (invalid // len(INVALID_KINDS) + 1))
    for cid in range(start_id, start_id + count):
        row = _customer(cid, rng)
        if agents:
            _bind(row, cid, agents)
        if cid in broken:
            _break(row, next(kinds))
        yield row


def _customer(cid: int, rng: random.Random) -> dict[str, Any]:
    provider = PROVIDERS[(cid * 7 + rng.randrange(3)) % len(PROVIDERS)]
    ip_based = rng.random() < 0.35
    tls = rng.random() < 0.15
    host = _gateway_host(provider, rng, cid)
    port = 5061 if tls else 5060
    if rng.random() < 0.5:
        gateways: str = f"{host}:{port}"
        if rng.random() < 0.3:
            gateways += f";backup-{host}:{port}"
    else:
        items = [{"gateway_address": host, "port": port, "priority": 1}]
        if rng.random() < 0.3:
            items.append({"gateway_address": f"backup-{host}", "port": port, "priority": 2})
        gateways = json.dumps(items)
    numbers = [number_for(cid, j) for j in range(rng.randint(1, 3))]
    numbers = [n if rng.random() < 0.8 else n.lstrip("+") for n in numbers]
    company = f"{rng.choice(_WORDS).title()} {rng.choice(('Ltd', 'Inc', 'GmbH', 'Pvt Ltd', 'SAS'))} #{cid}"
    return {
        "customer_id": cid,
        "company": company,
        "status": "active",
        "provider": provider,
        "auth_type": "ip-based" if ip_based else "userpass",
        "auth_username": None if ip_based else f"{provider}_{cid}",
        "auth_password": None
        if ip_based
        else "pw-" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(16)),
        "gateways": gateways,
        "ip_identifiers": (f"203.0.{cid % 256}.0/28, 198.51.100.{cid % 250 + 1}" if ip_based else None),
        "allow": rng.choice(("ulaw,alaw", "ulaw,alaw", "ulaw")),
        "transport": "tls" if tls else rng.choice(("udp", "udp", "tcp")),
        "media_encryption": "sdes" if tls and rng.random() < 0.7 else "no",
        "numbers": ", ".join(numbers),
        "inbound_enabled": rng.random() < 0.6,
        "outbound_leading_plus_enabled": provider != "plivo",
        "inbound_agent_id": None,
        "outbound_agent_ids": None,
    }


def _bind(row: dict[str, Any], cid: int, agents: int) -> None:
    """Agents for a customer, derived from its id only (the random stream is left alone)."""
    row["inbound_agent_id"] = agent_id(cid % agents)
    if cid % 10 == 0:  # a number answered by an agent of its own
        numbers = [n.strip() for n in row["numbers"].split(",")]
        entries: list[Any] = [
            {"phone_number": numbers[0], "agent_id": agent_id((cid + 1) % agents)},
            *numbers[1:],
        ]
        row["numbers"] = json.dumps(entries)
    if cid % 3 == 0:
        row["outbound_agent_ids"] = agent_id(cid % agents)


def _break(row: dict[str, Any], kind: str) -> None:
    if kind == "bad_cidr":
        row.update(auth_type="ip-based", auth_username=None, auth_password=None, ip_identifiers="10.0.0.0/33")
    elif kind == "port_70000":
        row["gateways"] = "sip.example.net:70000"
    elif kind == "sdes_without_tls":
        row.update(transport="udp", media_encryption="sdes")
    elif kind == "missing_password":
        row.update(auth_type="userpass", auth_username="user", auth_password=None, ip_identifiers=None)
    elif kind == "short_number":
        row["numbers"] = "12"
    elif kind == "bad_boolean":
        row["inbound_enabled"] = "maybe"


def create_customers_table(conn: Any, table: str = "customers", *, drop: bool = False) -> None:
    """Create the customer table (portable types) on a DB-API connection and commit."""
    if not _IDENT.match(table):
        raise ValueError(f"bad table name {table!r}")
    cur = conn.cursor()
    try:
        if drop:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "  customer_id BIGINT NOT NULL PRIMARY KEY,\n"
            "  company VARCHAR(200),\n"
            "  status VARCHAR(20) NOT NULL DEFAULT 'active',\n"
            "  provider VARCHAR(50),\n"
            "  auth_type VARCHAR(20),\n"
            "  auth_username VARCHAR(100),\n"
            "  auth_password VARCHAR(200),\n"
            "  gateways TEXT,\n"
            "  ip_identifiers TEXT,\n"
            "  allow VARCHAR(100),\n"
            "  transport VARCHAR(20),\n"
            "  media_encryption VARCHAR(10),\n"
            "  numbers TEXT,\n"
            "  inbound_enabled VARCHAR(10),\n"
            "  outbound_leading_plus_enabled VARCHAR(10),\n"
            "  inbound_agent_id VARCHAR(128),\n"
            "  outbound_agent_ids TEXT,\n"
            "  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP\n"
            ")"
        )
        conn.commit()
    finally:
        cur.close()


def insert_customers(
    conn: Any,
    rows: Sequence[dict[str, Any]] | Iterator[dict[str, Any]],
    table: str = "customers",
    placeholder: str = "?",
    chunk: int = 1000,
) -> int:
    """Insert rows in chunks (bound parameters), committing each chunk; return how many."""
    if not _IDENT.match(table):
        raise ValueError(f"bad table name {table!r}")
    sql = (
        f"INSERT INTO {table} ({', '.join(CUSTOMER_COLUMNS)}) "
        f"VALUES ({', '.join([placeholder] * len(CUSTOMER_COLUMNS))})"
    )
    total = 0
    buffer: list[tuple[Any, ...]] = []
    cur = conn.cursor()
    try:
        for row in rows:
            buffer.append(tuple(_db_value(row[c]) for c in CUSTOMER_COLUMNS))
            if len(buffer) >= chunk:
                cur.executemany(sql, buffer)
                conn.commit()
                total, buffer = total + len(buffer), []
        if buffer:
            cur.executemany(sql, buffer)
            conn.commit()
            total += len(buffer)
    finally:
        cur.close()
    return total


def _db_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def seed_sqlite(
    path: str | Path, count: int, invalid: int = 0, seed: int = 0, table: str = "customers", agents: int = 0
) -> int:
    """Create (replace) ``table`` in the SQLite file ``path`` with generated customers."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # readers and the state writer do not block each other
        create_customers_table(conn, table, drop=True)
        return insert_customers(conn, generate_customers(count, invalid, seed, agents=agents), table)
    finally:
        conn.close()
