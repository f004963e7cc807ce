"""Provider metadata for Airflow's provider discovery.

Pure data, no Airflow imports: Airflow calls this while it starts, before it is ready to
import operators (entry point ``apache_airflow_provider``).
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_bolna"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its hook, connection type and form, operators, sensor, trigger, link."""
    from airflow_provider_bolna import __version__

    return {
        "package-name": "airflow-provider-bolna",
        "name": "Bolna",
        "description": "Provision [Bolna](https://www.bolna.ai) voice-agent SIP trunks and phone numbers "
        "on your own carriers, one at a time or in bulk from a customer database.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Bolna",
                "external-doc-url": "https://www.bolna.ai/docs/api-reference/sip-trunks/overview",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Bolna", "python-modules": [f"{PACKAGE}.hooks.bolna"]}],
        "operators": [
            {
                "integration-name": "Bolna",
                "python-modules": [f"{PACKAGE}.operators.sip_trunk", f"{PACKAGE}.operators.provisioning"],
            }
        ],
        "sensors": [{"integration-name": "Bolna", "python-modules": [f"{PACKAGE}.sensors.sip_trunk"]}],
        "triggers": [{"integration-name": "Bolna", "python-modules": [f"{PACKAGE}.triggers.sip_trunk"]}],
        "extra-links": [f"{PACKAGE}.links.BolnaSIPTrunkLink"],
        "connection-types": [
            {
                "connection-type": "bolna",
                "hook-class-name": f"{PACKAGE}.hooks.bolna.BolnaHook",
                "hook-name": "Bolna",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "API base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.bolna.ai",
                        "password": "your Bolna API key (Developers → API Keys)",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 5},
                    },
                    "requests_per_minute": {
                        "label": "Rate budget (requests per minute)",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 1000},
                    },
                    "dashboard_url": {
                        "label": "Dashboard URL (for links)",
                        "schema": {"type": ["string", "null"], "format": "url", "default": "https://platform.bolna.ai"},
                    },
                },
            }
        ],
    }
