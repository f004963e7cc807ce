"""Provider metadata for Airflow's provider discovery.

Pure data, no Airflow imports: Airflow calls this while it starts, before it is ready to
import operators (entry point ``apache_airflow_provider``).
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_bolna"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its hook, connection type and form, operators, sensor, trigger, link, and
    the ``[bolna]`` configuration section (the provisioning page's deployments)."""
    from airflow_provider_bolna import __version__

    return {
        "package-name": "airflow-provider-bolna",
        "name": "Bolna",
        "description": "Provision [Bolna](https://www.bolna.ai) voice-agent SIP trunks and phone numbers "
        "on your own carriers and bind them to voice agents, one at a time or in bulk from a customer database.",
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
                # operators.provisioning holds task callables for the DAGs, not operators
                "python-modules": [
                    f"{PACKAGE}.operators.sip_trunk",
                    f"{PACKAGE}.operators.phone_numbers",
                    f"{PACKAGE}.operators.agents",
                ],
            }
        ],
        "sensors": [{"integration-name": "Bolna", "python-modules": [f"{PACKAGE}.sensors.sip_trunk"]}],
        "triggers": [{"integration-name": "Bolna", "python-modules": [f"{PACKAGE}.triggers.sip_trunk"]}],
        "extra-links": [f"{PACKAGE}.links.BolnaSIPTrunkLink"],
        "config": {
            "bolna": {
                "description": "The Bolna provider's Airflow-wide settings.",
                "options": {
                    "ui_deployments": {
                        "description": "The deployments the 'Bolna provisioning' page (the provider's plugin, "
                        "under /bolna/ on the API server) shows: a JSON list of objects with dag_id (the bulk "
                        "DAG), scope, state_conn_id, state_table and, optionally, bolna_conn_id and "
                        "signup_dag_id. A user sees a deployment only if they may read its DAGs. Empty: the "
                        "page shows nothing. See docs/ui.md.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": '[{"dag_id": "bolna_bulk_provision", "signup_dag_id": "bolna_customer_signup", '
                        '"scope": "bolna", "state_conn_id": "bolna_customers", '
                        '"state_table": "bolna_provisioning_state"}]',
                        "default": "",
                    }
                },
            }
        },
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
                    "timeout": _field("Request timeout (seconds)", "number", 30, minimum=1),
                    "max_retries": _field("Max retries", "integer", 5, minimum=0),
                    "max_retry_seconds": _field(
                        "Retry budget of one call (seconds)", "number", 120, minimum=0
                    ),
                    "requests_per_minute": _field(
                        "Rate budget (requests per minute)", "number", 1000, minimum=0
                    ),
                    "agent_requests_per_minute": _field(
                        "Rate budget of the agent endpoint (requests per minute)", "number", 500, minimum=0
                    ),
                    "late_commit_grace": _field(
                        "After a create got no answer, seconds to let it land before looking it up "
                        "(empty: the request timeout)",
                        "number",
                        None,
                        minimum=0,
                    ),
                    "dashboard_url": _field(
                        "Dashboard URL (for links)", "string", "https://platform.bolna.ai", format="url"
                    ),
                    "allow_insecure_http": _field(
                        "Allow plain http:// to a non-loopback host (sends the key in clear text)",
                        "boolean",
                        False,
                    ),
                },
            }
        ],
    }


def _field(label: str, kind: str, default: Any, **schema: Any) -> dict[str, Any]:
    """One connection-form field: a nullable ``kind`` with its default (and other schema keys)."""
    return {"label": label, "schema": {"type": [kind, "null"], **schema, "default": default}}
