"""``bolna-sandbox`` / ``python -m airflow_provider_bolna.sandbox``: serve the sandbox."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import DEFAULT_API_KEY
from .config import CHOICES, SandboxConfig

#: knob → (type, help) for every knob of SandboxConfig; switches get ``--x`` / ``--no-x``
_KNOB_FLAGS: dict[str, tuple[type, str]] = {
    "latency_ms": (float, "base latency added to every API request (ms)"),
    "jitter_ms": (float, "uniform jitter +/- around the latency (ms)"),
    "latency_spike_rate": (float, "fraction of requests delayed by an extra --latency-spike-ms"),
    "latency_spike_ms": (float, "size of a latency spike (ms)"),
    "rate_limit_per_min": (float, "token-bucket rate limit per minute, 0 = off"),
    "agent_rate_limit_per_min": (
        float,
        "rate limit of PATCH /v2/agent/{agent_id} per minute " + "(its own bucket), 0 = off",
    ),
    "retry_after": (bool, "send a Retry-After header (whole seconds) on 429"),
    "fail_rate": (float, "fraction of requests answered 500/502/503 before doing anything"),
    "drop_after_commit_rate": (
        float,
        "fraction of committed writes whose response is lost " + "(502 or broken connection)",
    ),
    "number_visibility_delay_s": (float, "seconds a new number stays invisible to reads/removal"),
    "seed": (int, "seed of every random fault stream"),
    "api_key": (str, f"the bearer key clients must send (default {DEFAULT_API_KEY!r})"),
    "unique_names": (bool, "refuse a duplicate trunk name with 409 (--no-unique-names stores it)"),
    "unique_numbers": (
        bool,
        "refuse a number already on another trunk with 409 " + "(--no-unique-numbers stores it)",
    ),
    "number_list_shows_agent_id": (bool, "numbers in list-numbers and trunk bodies carry agent_id"),
    "phone_numbers_all_includes_sip": (bool, "GET /phone-numbers/all lists SIP-trunk numbers"),
    "inbound_setup_response": (str, "200 body of /inbound/setup and /inbound/unlink"),
    "user_me_available": (bool, "GET /user/me exists (--no-user-me-available: 404, to test a fallback)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one flag per knob)."""
    parser = argparse.ArgumentParser(
        prog="bolna-sandbox",
        description="Local, fault-injecting stand-in of Bolna's SIP-trunk and agent-binding API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    parser.add_argument(
        "--db", default=":memory:", help="SQLite file (created if missing) or :memory: (the default)"
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug", "trace"]
    )
    defaults = SandboxConfig()
    for knob in SandboxConfig.knob_names():
        kind, help_text = _KNOB_FLAGS[knob]
        flag, default = f"--{knob.replace('_', '-')}", getattr(defaults, knob)
        if kind is bool:
            parser.add_argument(
                flag, dest=knob, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=knob, type=kind, default=default, choices=CHOICES.get(knob), help=help_text
            )
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Validated knobs from parsed arguments (exits with a usage error on a bad value)."""
    config = SandboxConfig()
    from .errors import ApiError

    try:
        config.update({name: getattr(args, name) for name in SandboxConfig.knob_names()})
    except ApiError as error:
        raise SystemExit(f"bolna-sandbox: error: {error.message}") from None
    return config


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args)

    import uvicorn

    from .app import SandboxApp
    from .asgi import IntentionalDropFilter
    from .store import Store

    app = SandboxApp(Store(args.db), config)
    server_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        loop="auto",
        http="auto",
        ws="none",
        proxy_headers=False,
    )  # uvloop + httptools when installed; no websockets, no proxy middleware
    logging.getLogger("uvicorn.error").addFilter(IntentionalDropFilter())
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"bolna-sandbox: warning: listening on {args.host}; the admin API still only "
            "answers loopback peers",
            file=sys.stderr,
        )
    uvicorn.Server(server_config).run()


if __name__ == "__main__":  # pragma: no cover
    main()
