"""The request page's Verify link and the page it opens (the bundle on disk: no MLflow)."""

from __future__ import annotations

from tests.support.bundles import decided_on_disk


def test_the_request_page_links_to_verify_and_the_verify_page_says_verified(
        usvc, as_person, tmp_path):
    rid = decided_on_disk(usvc, tmp_path / "b")
    page = as_person("ana")
    assert f'href="/ui/requests/{rid}/verify">Verify</a>' in page.text(f"/ui/requests/{rid}")
    shown = page.text(f"/ui/requests/{rid}/verify")
    assert f"Request {rid}: verified" in shown and "latency_p95" in shown
