"""README's curl walk-through works as printed, against a stack started like ``make run``."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import httpx

from tests.e2e.stack import StackFactory
from tests.e2e.traffic import read_own_write

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- walkthrough: run verbatim by tests/e2e/test_readme.py -->"


def walkthrough() -> str:
    text = README.read_text()
    assert MARKER in text, "README lost its walk-through marker"
    block = re.search(r"```bash\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    assert block is not None
    return block.group(1)


async def test_the_readme_walkthrough_runs_as_printed(stacks: StackFactory) -> None:
    stack = stacks()
    await stack.wait_ready()
    script = walkthrough().replace("http://localhost:8000", stack.api_url)

    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "stale If-Match: 412" in out
    assert '"rule":"cancel_after_shipping"' in out
    assert '"status":"paid"' in out and '"outstanding":0' in out
    created = re.search(r'\{"order_id":"([0-9a-f-]{36})","version":1,"position":\d+\}', out)
    assert created is not None, out
    assert out.count(created.group(0)) == 2  # the idempotent repeat returned the same body
    assert re.search(r"(?im)^etag: \"2\"", out) and re.search(r"(?im)^x-consistency-token: ", out)
    shipped = re.search(r'"version":5,"position":(\d+)\}', out)
    assert shipped is not None, out
    # Read the shipped order with the ship command's consistency token: a plain GET may come
    # before the projector applied it (that read flaked on slow machines).
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30.0) as api:
        order = await read_own_write(api, f"/orders/{created.group(1)}", int(shipped.group(1)))
    assert (order["status"], order["total"], order["amount_paid"]) == ("shipped", 4900, 4900)
    assert stack.interrupt() in (0, 130)
