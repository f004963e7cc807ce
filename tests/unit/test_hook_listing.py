"""Listing trunks item by item: the JSON array reader, and ``list_trunks(names=, ids=)``.

The body of ``GET /sip-trunks/trunks`` is decoded one array item at a time as chunks arrive,
and only the trunks asked for are validated and kept. The reader must give exactly what
``json.loads`` gives, however the body is cut into chunks.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_bolna.exceptions import BolnaResponseError
from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.hooks.reading import JsonArrayReader
from tests.unit.helpers import TRUNKS_PATH, Runner, trunk_json

#: Items that stress the decoder: brackets and quotes inside strings, escapes, multi-byte
#: characters (cut between their bytes), numbers (cut between their digits), nesting.
TRICKY = [
    {"id": "a", "name": "has ] and [ and , inside", "x": '"quoted" \\ back\\slash'},
    {"id": "b", "name": "naïve 日本 🎉", "nested": {"list": [1, [2, [3]]], "e": {}}},
    12345678901234567890,
    -1.5e-7,
    "a string item",
    [],
    {},
    None,
    True,
    {"id": "c", "name": "last"},
]


def _chunks(body: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(body)), k=min(len(body) - 1, rng.randint(1, 40))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]


def _read(chunks: list[bytes]) -> list[Any]:
    items: list[Any] = []
    reader = JsonArrayReader(items.append)
    for chunk in chunks:
        reader.feed(chunk)
    reader.close()
    return items


@pytest.mark.parametrize("seed", range(30))
def test_reader_matches_json_loads_however_the_body_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    body = json.dumps(TRICKY, ensure_ascii=False, indent=rng.choice([None, 1])).encode()
    assert _read(_chunks(body, rng)) == json.loads(body)


def test_reader_byte_by_byte() -> None:
    body = json.dumps(TRICKY, ensure_ascii=False).encode()
    assert _read([body[i : i + 1] for i in range(len(body))]) == TRICKY


@pytest.mark.parametrize("body", [b"[]", b"  [ ]  ", b"\n[\n]\n"])
def test_reader_empty_arrays(body: bytes) -> None:
    assert _read([body]) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"", TypeError, id="empty-body"),
        pytest.param(b'{"trunks": []}', TypeError, id="object"),
        pytest.param(b"<html>", ValueError, id="not-json"),
        pytest.param(b'[{"id": "a"}', ValueError, id="unterminated"),
        pytest.param(b'[{"id": "a"}] []', ValueError, id="trailing-data"),
        pytest.param(b'[{"id": "a"} {"id": "b"}]', ValueError, id="missing-comma"),
        pytest.param(b'[{"id": "a"},]', ValueError, id="trailing-comma"),
        pytest.param(b'[{"id": "a\xff"}]', ValueError, id="not-utf8"),
    ],
)
def test_reader_refuses_what_is_not_one_json_array(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _read([body[:3], body[3:]])


def test_reader_bounds_one_item() -> None:
    reader = JsonArrayReader(lambda item: None, max_item_chars=1000)
    reader.feed(b'[{"id": "' + b"x" * 600)
    with pytest.raises(ValueError, match="longer than 1000"):
        reader.feed(b"x" * 2000)


def test_reader_work_stays_linear_for_one_huge_item() -> None:
    """A failed decode of an incomplete item is retried only once the pending text doubled."""
    decodes = 0
    reader = JsonArrayReader(lambda item: None)
    real = reader._decode

    def counting(*args: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real(*args)

    reader._decode = counting
    reader.feed(b'[{"id": "')
    for _ in range(4000):
        reader.feed(b"x" * 256)  # 1 MB in 4,000 chunks
    reader.feed(b'"}]')
    reader.close()
    assert decodes < 40, decodes


# ---------------------------------------------------------------------------- list_trunks


class Chunked(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent in the given chunks, sync or async."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _listing(items: list[Any], chunk: int = 7) -> httpx.Response:
    body = json.dumps(items).encode()
    return httpx.Response(
        200,
        stream=Chunked([body[i : i + chunk] for i in range(0, len(body), chunk)]),
        headers={"content-type": "application/json"},
    )


ACCOUNT = [trunk_json(trunk_id=f"t{i}", name=f"cust-{i}") for i in range(1, 7)]


def test_names_or_ids_keep_the_union(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(side_effect=lambda request: _listing(ACCOUNT))
    kept = run(hook, "list_trunks", names=["cust-2", "cust-5"], ids=["t5", "t6"])
    assert sorted(t.id for t in kept) == ["t2", "t5", "t6"]
    assert [t.id for t in run(hook, "list_trunks", names=["cust-1"])] == ["t1"]
    assert [t.id for t in run(hook, "list_trunks", ids=["t3"])] == ["t3"]
    assert run(hook, "list_trunks", names=[], ids=[]) == []
    assert len(run(hook, "list_trunks")) == 6


def test_only_kept_items_are_validated(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    """Entries the caller did not ask for are dropped unread: one odd trunk elsewhere in a large
    account does not fail the look-up of ours."""
    odd = [{"name": "no id"}, 42, "text", None, {"id": "t9", "name": "cust-9", "gateways": "not a list"}]
    api.get(TRUNKS_PATH).mock(side_effect=lambda request: _listing([*odd, *ACCOUNT]))
    assert [t.id for t in run(hook, "list_trunks", names=["cust-3"])] == ["t3"]
    with pytest.raises(BolnaResponseError, match="unexpected shape"):
        run(hook, "list_trunks", names=["cust-9"])


def test_a_listing_broken_midway_is_a_response_error(
    hook: BolnaHook, api: respx.MockRouter, run: Runner
) -> None:
    body = json.dumps(ACCOUNT).encode()
    api.get(TRUNKS_PATH).mock(
        side_effect=lambda request: httpx.Response(
            200, stream=Chunked([body[:500], b"<html>proxy error</html>"])
        )
    )
    with pytest.raises(BolnaResponseError, match="not JSON") as info:
        run(hook, "list_trunks", names=["cust-1"])
    assert info.value.status_code == 200


def test_kept_trunks_are_oldest_first(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    items = [
        trunk_json(trunk_id="new", name="dup", created_at="2026-05-10T00:00:00Z"),
        trunk_json(trunk_id="old", name="dup", created_at="2026-05-01T00:00:00Z"),
    ]
    api.get(TRUNKS_PATH).mock(side_effect=lambda request: _listing(items))
    assert [t.id for t in run(hook, "list_trunks", names=["dup"])] == ["old", "new"]
