"""In-memory request, fault and write counters served by ``GET /__sandbox__/counters``."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

FAULT_KINDS = (
    "fail_before",
    "drop_after_commit_502",
    "drop_after_commit_conn",
    "rate_limited",
    "agent_rate_limited",
    "latency_spikes",
)
#: writes of the /sip-trunks API (``writes``) and of agent binding (``binding_writes``)
TRUNK_WRITE_KINDS = ("create_trunk", "update_trunk", "delete_trunk", "add_number", "remove_number")
BINDING_WRITE_KINDS = ("update_agent", "inbound_setup", "inbound_unlink")
WRITE_KINDS = TRUNK_WRITE_KINDS + BINDING_WRITE_KINDS
DROPPED = "dropped"
"""Status key recorded for a response lost by an abruptly closed connection."""


class Counters:
    """Counts every API request by route template and final status; ``writes`` (trunk API) and
    ``binding_writes`` (agent binding) count committed writes, ``write_attempts`` every write
    request received, of both kinds (whatever its fate).

    ``writes`` keeps the five trunk kinds it always had, so tests comparing it whole still hold.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero everything."""
        self.requests: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.writes = dict.fromkeys(TRUNK_WRITE_KINDS, 0)
        self.binding_writes = dict.fromkeys(BINDING_WRITE_KINDS, 0)
        self.write_attempts = dict.fromkeys(WRITE_KINDS, 0)
        self.duplicate_names_attempted = 0
        self.total_requests = 0
        #: epoch second -> [requests, of which 429] (a rate measured from the server's side)
        self.per_second: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])

    def record(self, endpoint: str, status: int | str) -> None:
        """One finished request: ``endpoint`` like ``"GET /sip-trunks/trunks/{trunk_id}"``."""
        self.requests[endpoint][str(status)] += 1
        self.total_requests += 1
        second = self.per_second[int(time.time())]
        second[0] += 1
        second[1] += status == 429

    def committed(self, kind: str) -> None:
        """One committed write of ``kind`` (a key of WRITE_KINDS)."""
        (self.writes if kind in self.writes else self.binding_writes)[kind] += 1

    def snapshot(self, trunks: int, numbers: int) -> dict[str, Any]:
        """The JSON shape of ``GET /__sandbox__/counters``."""
        return {
            "requests": {ep: dict(statuses) for ep, statuses in self.requests.items()},
            "faults": dict(self.faults),
            "trunks": trunks,
            "numbers": numbers,
            "duplicate_names_attempted": self.duplicate_names_attempted,
            "writes": dict(self.writes),
            "binding_writes": dict(self.binding_writes),
            "write_attempts": dict(self.write_attempts),
            "total_requests": self.total_requests,
            "per_second": {str(sec): list(counts) for sec, counts in sorted(self.per_second.items())},
        }
