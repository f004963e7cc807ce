"""``BolnaBaseOperator``: what every Bolna operator shares (the hook, the trunk link XComs)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.links import push_trunk

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["BolnaBaseOperator", "BolnaNumberOperator", "trunk_id_of"]


class BolnaBaseOperator(BaseOperator):
    """Shared plumbing: the hook, error policy, trunk URL/id XComs.

    :param bolna_conn_id: Airflow connection of type ``bolna`` (templated).
    """

    template_fields: Sequence[str] = ("bolna_conn_id",)
    ui_color = "#e8f0fe"

    def __init__(self, *, bolna_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bolna_conn_id = bolna_conn_id

    @cached_property
    def hook(self) -> BolnaHook:
        """The Bolna hook for :attr:`bolna_conn_id` (created after templates are rendered)."""
        return BolnaHook(bolna_conn_id=self.bolna_conn_id)

    def _close_hook(self) -> None:
        if "hook" in self.__dict__:
            self.hook.close()

    def _push_trunk(self, context: Context, trunk_id: str | None) -> None:
        """Push XCom ``trunk_id`` and ``bolna_trunk_url`` (blank while the trunk is unknown)."""
        push_trunk(context, self.hook, trunk_id, self.log)


class BolnaNumberOperator(BolnaBaseOperator):
    """Base of operators acting on one phone number of a trunk, given by number and/or id.

    :param trunk_id: the trunk holding the number (templated).
    :param phone_number: the number (templated).
    :param phone_number_id: the number's id on the trunk (templated).
    :param bolna_conn_id: the Bolna connection (templated).
    """

    template_fields: Sequence[str] = ("trunk_id", "phone_number", "phone_number_id", "bolna_conn_id")

    def __init__(
        self,
        *,
        trunk_id: str,
        phone_number: str | None = None,
        phone_number_id: str | None = None,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.trunk_id = trunk_id
        self.phone_number = phone_number
        self.phone_number_id = phone_number_id


def trunk_id_of(value: Any) -> str:
    """The rendered ``trunk_id`` argument, or fail the task when it is empty."""
    if value is None or not str(value).strip():
        raise AirflowFailException("trunk_id is empty (did the upstream task push it?)")
    return str(value).strip()
