"""The web page in a real headless Chromium (Selenium), against a real `mlflow server` and
`podium serve`: a trained version is requested for Production with a tag (MLflow's webhook
tells Podium), checked, and waits for a person. In the browser: the requests page, the
pending request; a person the policy does not allow sees nothing to click and is refused
when she posts anyway; a forged POST without the CSRF token is refused; a rejection
without a reason is refused; then the allowed person approves, the page follows the
request to `promoted` and MLflow's champion alias points at the version.

Screenshots of every page go to reports/ui/ (or UI_SCREENSHOT_DIR). Skipped, saying why,
without Chromium and its driver (Debian: chromium, chromium-driver; .ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.podium_runs import api
from tests.support.settings import API_TOKEN
from tests.support.signing import SECRET
from tests.support.waiting import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
SHOTS = Path(os.environ.get("UI_SCREENSHOT_DIR")
             or Path(__file__).resolve().parents[2] / "reports" / "ui")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    bool(MISSING), reason=f"no headless browser: {', '.join(MISSING)} missing (Debian "
                          "packages chromium and chromium-driver; .ci/run installs them)")]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[test]')")

MODEL = "churn-ui"
# strong tokens: `podium serve` refuses weak ones
TOKENS = {"ana": "tok-ana-7d1f0c-gBxfNyYSovPy1idt5mx5LoKApJAXRb3w",
          "eve": "tok-eve-93b2aa-hsBoNxy5MbemT3YebdfUk35wFbiBSDpe"}
POLICY = """\
people:
  ana: {ui: ana}
  eve: {ui: eve}
default:
  allow_run_holdout: true
  sandbox: preferred
  checks: {slice_roc_auc: 0.5, slice_gap: 0.5, latency_p95_ms: 2000, batch_1000_ms: 20000}
  approval: {targets: [Production], approvers: [ana]}
"""


@dataclass
class Site:
    url: str
    request_id: int
    version: str
    client: object  # MlflowClient


@pytest.fixture(scope="module")
def site(mlflow_server, tmp_path_factory):
    """Podium serving the page, and one request waiting for approval (made by a real
    webhook from a real tag on a trained version)."""
    from mlflow import MlflowClient

    from training.train import Dataset, TrainConfig, train
    from webhook_server.adapters.registry import Registry
    from webhook_server.dev.processes import start_podium

    work = tmp_path_factory.mktemp("ui")
    (work / "podium.yaml").write_text(POLICY)
    server = start_podium(work, {
        "PODIUM_DATABASE_URL": f"sqlite:///{work / 'podium.db'}",
        "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET, "PODIUM_API_TOKEN": API_TOKEN,
        "PODIUM_API_TOKENS": ",".join(f"{n}={t}" for n, t in TOKENS.items()),
        "PODIUM_UI_SECRET": "browser-test-secret", "MLFLOW_TRACKING_URI": mlflow_server.url,
        "PODIUM_POLICY": str(work / "podium.yaml"), "PODIUM_WORKER_POLL": "0.1",
        "PODIUM_JOB_BACKOFF": "0.2", "PODIUM_RECONCILE_INTERVAL": "3600",
        "PODIUM_SANDBOX_SPARES": "0"})  # one decision: it starts the sandbox it takes
    try:
        Registry(mlflow_server.url).register_webhook(f"{server.url}/webhooks/mlflow", SECRET,
                                                     name="podium-ui")
        params = {"num_leaves": 7, "learning_rate": 0.1, "n_estimators": 40,
                  "min_child_samples": 50}
        version = train(Dataset.synthetic(4000, 3), TrainConfig(model_name=MODEL,
                                                                params=params, seed=3),
                        tracking_uri=mlflow_server.url).version
        client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
        client.set_model_version_tag(MODEL, version, "transition_request", "Production")
        req = wait_for(lambda: [r for r in api(server, f"/requests?model={MODEL}")["requests"]
                                if r["state"] in ("awaiting_approval", "rejected", "failed")],
                       timeout=150, what="the request to wait for approval")[0]
        assert req["state"] == "awaiting_approval", (req, server.log_tail())
        yield Site(server.url, req["id"], version, client)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def by(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def shot(driver, name: str) -> None:
    """The whole page, as tall as its content."""
    driver.set_window_size(1280, 600)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height + 40, 600), 4000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def login(driver, site: Site, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{site.url}/ui/login")
    by(driver, "#token").send_keys(TOKENS[name])
    by(driver, "form button[type=submit]").click()
    assert text_of(driver, "#me") == f"ui:{name}"


def follow(driver, css: str, lands_on: str) -> None:
    """Click a link and wait until its page has loaded."""
    by(driver, css).click()
    wait_for(lambda: driver.current_url.endswith(lands_on) and driver.execute_script(
        "return document.readyState") == "complete", timeout=10, what=f"page {lands_on}")


def text_of(driver, css: str, timeout: float = 10) -> str:
    """The text of ``css`` once the page (perhaps still loading) has it."""
    from selenium.common.exceptions import WebDriverException

    def found():
        try:
            return by(driver, css).text or None
        except WebDriverException:
            return None

    return wait_for(found, timeout=timeout, what=f"{css} on {driver.current_url}")


def state(site: Site) -> tuple[str, str | None]:
    r = api(site, f"/requests/{site.request_id}")
    return r["state"], r["decided_by"]


def forge(driver, site: Site, action: str, with_token: bool) -> str:
    """Submit a hand-made form (as a forger would: with the request's current evidence
    digest, which anyone who may read finds) and return the answer's text."""
    driver.execute_script("""
        const [url, token, evidence] = arguments;
        const form = document.createElement('form');
        form.method = 'post'; form.action = url;
        for (const [name, value] of [['csrf_token', token], ['evidence', evidence]]) {
          if (!value) continue;
          const t = document.createElement('input'); t.type = 'hidden';
          t.name = name; t.value = value; form.appendChild(t); }
        document.body.appendChild(form); form.submit();""",
        f"{site.url}/ui/requests/{site.request_id}/{action}",
        by(driver, "meta[name=csrf-token]").get_attribute("content") if with_token else None,
        api(site, f"/requests/{site.request_id}")["evidence_sha256"])
    wait_for(lambda: driver.current_url.endswith(f"/{action}"), timeout=10, what="the answer")
    return text_of(driver, "#error-message")


def test_reading_the_requests_model_and_operations_pages(browser, site):
    browser.get(f"{site.url}/ui/")
    assert "Log in to Podium" in browser.page_source  # no identity: the login form
    shot(browser, "login")
    login(browser, site, "eve")
    pending = text_of(browser, "#pending")
    assert f"v{site.version}" in pending and "awaiting_approval" in pending
    shot(browser, "requests")
    follow(browser, f"#pending a[href='/ui/requests/{site.request_id}']",
           f"/ui/requests/{site.request_id}")
    assert text_of(browser, "#state") == "awaiting_approval"
    checks = text_of(browser, "#checks")
    assert "roc_auc" in checks and " pass " in checks and "FAIL" not in checks
    follow(browser, f"h1 a[href='/ui/models/{MODEL}']", f"/ui/models/{MODEL}")
    assert text_of(browser, "h1") == f"Model {MODEL}"
    live = by(browser, "#live-chart svg")  # each shadow's live gain: none logged here
    assert live.get_attribute("aria-label").startswith(f"{MODEL}: live ROC AUC gain")
    assert live.size["width"] > 0 and "no data yet" in live.text
    shot(browser, "model")
    browser.get(f"{site.url}/ui/operations")
    assert f"#{site.request_id}" in text_of(browser, "#deliveries")
    shot(browser, "operations")


def test_refusals_change_nothing(browser, site):
    login(browser, site, "eve")  # not an approver
    browser.get(f"{site.url}/ui/requests/{site.request_id}")
    assert "may not decide this request. Who may decide: ana." in text_of(browser, "#who-may")
    assert not browser.find_elements("css selector", "#approve")
    shot(browser, "request-not-allowed")
    refused = forge(browser, site, "approve", with_token=True)
    assert "ui:eve is not an approver of churn-ui" in refused
    shot(browser, "refused-not-allowed")

    login(browser, site, "ana")
    browser.get(f"{site.url}/ui/requests/{site.request_id}")
    assert "no valid CSRF token" in forge(browser, site, "approve", with_token=False)
    shot(browser, "refused-csrf")

    browser.get(f"{site.url}/ui/requests/{site.request_id}")
    by(browser, "#reject").click()  # the browser itself asks for the reason first
    assert by(browser, "#reason-box").get_property("validationMessage")
    assert browser.current_url.endswith(f"/ui/requests/{site.request_id}")
    browser.execute_script("document.getElementById('reason-box').removeAttribute('required')")
    by(browser, "#reason-box").send_keys("   ")
    by(browser, "#reject").click()
    wait_for(lambda: browser.current_url.endswith("/reject"), timeout=10, what="the answer")
    assert "a rejection needs a reason" in text_of(browser, "#error-message")
    shot(browser, "refused-no-reason")
    assert state(site) == ("awaiting_approval", None)
    assert site.client.get_registered_model(MODEL).aliases.get("champion") is None


def test_approving_moves_the_request_and_the_champion_in_mlflow(browser, site):
    login(browser, site, "ana")
    browser.get(f"{site.url}/ui/requests/{site.request_id}")
    shot(browser, "request-pending")
    by(browser, "#note").send_keys("checked the slices, fine")
    by(browser, "#approve").click()
    assert "approved as ui:ana" in text_of(browser, "p.flash[role=status]")
    started = time.monotonic()  # the page follows the request by itself (polling)
    wait_for(lambda: text_of(browser, "#state") == "promoted", timeout=60,
             what="the page to show promoted")
    assert text_of(browser, "#decided-by") == "ui:ana"
    shot(browser, "request-promoted")
    assert state(site) == ("promoted", "ui:ana")
    champion = site.client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == site.version, time.monotonic() - started
