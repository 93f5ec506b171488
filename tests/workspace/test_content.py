"""The workspace's content page: everyone sees the versions and what changed; admins preview,
publish and roll back, each audited; others are refused."""

from __future__ import annotations

import html
from pathlib import Path

from tests.publishing.conftest import edit, flows_copy
from tests.workspace.conftest import Start, agency, fake

__all__ = ["agency", "fake", "flows_copy"]


async def test_admins_preview_publish_and_roll_back_and_others_only_read(
    agency: Start, flows_copy: Path
) -> None:
    ag = await agency(KVISA_FLOWS_DIR=str(flows_copy))
    await ag.store(70001, birth_date="1994-06-01")
    ada, vera = await ag.staffer("ada"), await ag.staffer("vera")

    await ada.post("/agency/content/publish", {"note": "baseline"})
    assert ada.status == 200 and "baseline" in ada.last  # followed the redirect to the page
    edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")
    await ada.post("/agency/content/preview")
    preview = html.unescape(ada.last)
    await ada.post("/agency/content/publish", {"note": "proof from 30"})
    await ada.get("/agency/content?a=1&b=2")
    compared = html.unescape(ada.last)
    await ada.post("/agency/content/1/rollback", {"note": "too early"})
    listed = html.unescape(ada.last)
    await vera.get("/agency/content")
    await vera.post("/agency/content/publish", {"note": "viewer"})
    refused = vera.status

    assert "Age practice: extra proof needed above the age of: 35 → 30" in preview
    assert "affected" in preview
    assert "35 → 30" in compared
    assert "content of version 1" in listed and "too early" in listed
    assert refused == 403
    actions = [e["action"] for e in await ag.audit()]
    assert actions.count("content-publish") == 2 and actions.count("content-rollback") == 1
    assert "content-dry-run" in actions
    versions = await ag.storage.content_versions()
    assert [(v.id, v.author) for v in versions] == [
        (1, "staff:ada"),
        (2, "staff:ada"),
        (3, "staff:ada"),
    ]
