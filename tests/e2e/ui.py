"""Playwright helpers for Airflow 3.3's React UI (selectors checked against 3.3.2).

Only stable hooks are used: ARIA roles and labels, visible texts, and the ``data-testid``
attributes the Airflow UI ships (``grid-<run_id>-<task_id>``, ``state-badge``...).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER

#: How long to wait for a UI element (ms) on this small, busy machine.
UI_TIMEOUT_MS = 30_000


def login(
    page: Any, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, screenshot: Path | None = None
) -> None:
    """Sign in through SimpleAuthManager's login form (``/auth/login``)."""
    page.goto("/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=UI_TIMEOUT_MS)
    page.get_by_test_id("nav-sidebar").wait_for(timeout=UI_TIMEOUT_MS)


def settle(page: Any, ms: int = 500) -> None:
    """Wait until the page has no network traffic, then a little more for React to paint."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(ms)


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def ti_path(dag_id: str, run_id: str, task_id: str, map_index: int = -1, tab: str = "") -> str:
    """The task instance page (``tab``: ``""`` = Logs, ``"details"``, ``"rendered_templates"``...)."""
    path = f"{run_path(dag_id, run_id)}/tasks/{task_id}"
    if map_index >= 0:
        path += f"/mapped/{map_index}"
    return f"{path}/{tab}" if tab else path


def grid_cell(page: Any, run_id: str, task_id: str) -> Any:
    """The grid cell of one task (the whole mapped task for a mapped one) in one run."""
    return page.get_by_test_id(f"grid-{run_id}-{task_id}")


def grid_task_state(page: Any, run_id: str, task_id: str) -> str:
    """The state the grid shows for a task, read from the cell's tooltip ("State: Success")."""
    cell = grid_cell(page, run_id, task_id)
    cell.scroll_into_view_if_needed()
    cell.hover()
    tooltip = page.get_by_text(re.compile(r"^State: ")).filter(visible=True).first
    tooltip.wait_for(timeout=10_000)
    state = tooltip.inner_text().split(":", 1)[1].strip()
    page.mouse.move(0, 0)  # close the tooltip before the next hover
    page.wait_for_timeout(150)
    return state


def open_new_connection_form(page: Any, conn_type_label: str) -> Any:
    """Admin → Connections → "Add Connection", choose the type; returns the dialog."""
    page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").click()
    page.keyboard.type(conn_type_label)
    page.get_by_role("option", name=conn_type_label, exact=True).click()
    dialog.get_by_text("Standard Fields").wait_for()
    return dialog


def toast_text(page: Any, pattern: str) -> str:
    """Wait for a toast (``role=status``/alert region) whose text matches ``pattern``; return it."""
    toast = page.get_by_text(re.compile(pattern)).filter(visible=True).first
    toast.wait_for(timeout=UI_TIMEOUT_MS)
    return str(toast.inner_text())


def annotate(page: Any, text: str) -> None:
    """Pin a clearly marked caption to the bottom of the page (e.g. a link's URL, which a
    headless screenshot cannot show) before taking a screenshot for humans to review."""
    page.evaluate(
        """(text) => {
            const note = document.createElement('div');
            note.textContent = 'e2e annotation: ' + text;
            note.setAttribute('data-testid', 'e2e-annotation');
            note.style.cssText = 'position:fixed;left:80px;right:16px;bottom:12px;z-index:99999;'
              + 'padding:8px 12px;background:#fff8c5;border:2px dashed #9a6700;color:#1f2328;'
              + 'font:14px monospace;border-radius:6px';
            document.body.appendChild(note);
        }""",
        text,
    )
