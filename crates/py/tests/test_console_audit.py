"""The compliance console in a real browser (headless Chromium through chromedriver and
Selenium), against the devnet: what an auditor reads. Verify an uploaded disclosure, open the
evidence report, read spend and diff two policy versions, and see an unauthorized spend (both
keys, without the service) raise a banner on every page until an admin acknowledges it. A
screenshot of each page goes to target/console-screenshots/."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from chaperone import Recorder
from conftest import REPO, Running, disclose
from console import VENDOR, log_in, log_in_as, shot

from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait


def test_an_uploaded_disclosure_verifies(
    browser: WebDriver, devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        recorded = recorder.record("gpt-4o", "What is 2+2?", "4")
        recorder.sync()
        disclosure = disclose(recorder, recorded.leaf_hash, ("input", "output"))
    path = tmp_path / "disclosure.json"
    disclosure.write(path)
    log_in(browser, devnet, "/audit/verify")
    browser.find_element(By.NAME, "disclosure").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "form.verify button").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.valid"))
    assert "VALID" in browser.find_element(By.CSS_SELECTOR, "p.valid").text
    assert recorded.leaf_hash in browser.page_source
    # What the disclosure opened, as the CLI prints it.
    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "section.disclosed pre")]
    assert shown == ["What is 2+2?", "4"], shown
    shot(browser, "verify")

    doctored = disclosure.to_json().replace('"model":"gpt-4o"', '"model":"gpt-5"')
    forged = tmp_path / "forged.json"
    forged.write_text(doctored)
    browser.find_element(By.NAME, "disclosure").send_keys(str(forged))
    browser.find_element(By.CSS_SELECTOR, "form.verify button").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.invalid"))
    assert "INVALID" in browser.find_element(By.CSS_SELECTOR, "p.invalid").text

    browser.get(devnet.info.server_url + "/audit")
    shot(browser, "audit")
    browser.get(devnet.info.server_url + f"/audit/agents/{recorder.agent}")
    assert "anchored in block" in browser.page_source
    shot(browser, "audit-agent")


def test_the_audit_page_offers_the_evidence_report(browser: WebDriver, devnet: Running) -> None:
    log_in(browser, devnet, "/audit")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Report, last 7 days").click()
    WebDriverWait(browser, 20).until(lambda d: "/v1/evidence/report" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Chaperone evidence report"
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg line.axis")
    assert "Article 12" in browser.page_source
    assert not browser.find_elements(By.TAG_NAME, "script")
    shot(browser, "evidence-report")


def test_spend_and_policies_with_a_diff(browser: WebDriver, devnet: Running) -> None:
    wallet = devnet.info.wallet
    current = devnet.admin("GET", f"/v1/admin/wallets/{wallet}/policy")
    raised = {**current, "version": current["version"] + 1}
    raised["rate_limit"] = {**current["rate_limit"], "max_requests": 900}
    devnet.admin("PUT", f"/v1/admin/wallets/{wallet}/policy", raised)
    log_in(browser, devnet, "/spend")
    assert "On-chain backstop" in browser.page_source
    chart = browser.find_element(By.CSS_SELECTOR, "svg.chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "line.axis")) == 2, "two axes"
    assert chart.find_elements(By.CSS_SELECTOR, "polyline.running"), "a running total"
    legend = " ".join(t.text for t in chart.find_elements(By.CSS_SELECTOR, "text.legend"))
    assert "committed per hour" in legend and "running total" in legend, legend
    assert "policy cap, 24 h window" in legend, legend  # the demo policy has a 24 h window
    shot(browser, "spend")
    browser.find_element(By.LINK_TEXT, "7 d").click()
    assert "span=7d" in browser.current_url
    legend = " ".join(t.text for t in browser.find_elements(By.CSS_SELECTOR, "text.legend"))
    assert "committed per 6 hours" in legend and "no 7 d window in the policy" in legend, legend
    shot(browser, "spend-7d")
    browser.get(devnet.info.server_url + "/spend?span=1y")
    assert "is not one of 24h, 7d, 30d" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    browser.get(devnet.info.server_url + "/policies")
    shot(browser, "policies")
    browser.get(devnet.info.server_url + f"/policies/{wallet}")
    diff = browser.find_element(By.CSS_SELECTOR, "pre.diff").text
    assert "- max_requests = 600" in diff and "+ max_requests = 900" in diff
    shot(browser, "policy-diff")
    browser.get(devnet.info.server_url + "/webhooks")
    assert "No webhook is configured" in browser.page_source  # `chaperone up` sets none
    shot(browser, "webhooks")


CAST = REPO / "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
# Every console page an admin opens (the navigation's, and the freeze instructions).
ADMIN_PAGES = ["/approvals", "/decisions", "/payments", "/spend", "/audit", "/policies",
               "/agents", "/webhooks", "/alerts", "/alerts/freeze", "/people", "/actions"]


def cast(*args: str) -> str:
    if not CAST.exists():
        pytest.fail(f"{CAST} is missing: run `npm ci` at the repository root (Foundry's cast)")
    done = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"cast {args[0]} failed: {done.stderr}"
    return done.stdout.strip()


def spend_without_the_service(devnet: Running) -> str:
    """Attacker B: the agent key and the stolen co-signer key execute a payment the service
    never saw (a fresh nonce key, 1000 wei to VENDOR). Returns the transaction hash."""
    info = devnet.info
    cosigner_key = json.loads((devnet.dir / "state.json").read_text())["cosigner_key"]
    calls = f"[({VENDOR},1000,0x)]"
    nonce = str(secrets.randbits(128) << 64)
    valid_until = str(int(time.time()) + 300)
    digest = cast("call", info.wallet,
                  "executeDigest((address,uint256,bytes)[],uint256,uint64)(bytes32)",
                  calls, nonce, valid_until, "--rpc-url", info.rpc_url)
    signature = cast("wallet", "sign", "--no-hash", "--private-key", cosigner_key, digest)
    sent = cast("send", "--json", info.wallet,
                "executeAsAgent((address,uint256,bytes)[],uint256,uint64,bytes)",
                calls, nonce, valid_until, signature,
                "--private-key", info.agent_key, "--rpc-url", info.rpc_url)
    receipt = json.loads(sent)
    assert receipt["status"] in ("0x1", 1, "1"), receipt
    return str(receipt["transactionHash"])


def banner_on(browser: WebDriver, devnet: Running, page: str) -> bool:
    browser.get(devnet.info.server_url + page)
    assert "/login" not in browser.current_url, f"{page} asked for a login"
    banners = browser.find_elements(By.CSS_SELECTOR, "div.alert-banner")
    if banners:
        link = banners[0].find_element(By.TAG_NAME, "a")
        assert link.get_attribute("href").endswith("/alerts/freeze"), page
    return bool(banners)


def test_an_unauthorized_spend_raises_a_banner_on_every_page_until_acknowledged(
    browser: WebDriver, devnet: Running
) -> None:
    tx = spend_without_the_service(devnet)
    # The indexer finds it within a pass or two.
    deadline = time.time() + 60
    while True:
        spends = devnet.admin("GET", "/v1/unauthorized-spends")
        mine = [s for s in spends["items"] if s.get("tx_hash") == tx]
        if mine:
            break
        assert time.time() < deadline, f"no alert for {tx}: {spends}"
        time.sleep(0.5)
    spend_id = mine[0]["id"]

    # An admin whose name is markup (an insider's attempt on the auditor's browser).
    hostile = '<img src=x onerror=alert(1)> & "ops"'
    issued = devnet.admin("POST", "/v1/admin/tokens", {"name": hostile, "role": "admin"})
    assert issued["name"] == hostile, issued
    log_in_as(browser, devnet, issued["token"], "/alerts")
    for page in ADMIN_PAGES:
        assert banner_on(browser, devnet, page), f"no banner on {page}"
        assert not browser.find_elements(By.CSS_SELECTOR, "nav img"), f"{page} runs the name"
        assert hostile in browser.find_element(By.CSS_SELECTOR, "nav .who").text, page
    browser.get(devnet.info.server_url + "/alerts/freeze")
    section = browser.find_element(By.ID, f"wallet-{devnet.info.wallet}")
    assert "freeze()" in section.text and "setCosigner(address)" in section.text
    shot(browser, "alerts-freeze")

    browser.get(devnet.info.server_url + "/alerts")
    row = browser.find_element(By.ID, f"spend-{spend_id}")
    assert "execute" in row.text and tx[:8] in row.text, row.text
    shot(browser, "alerts")
    row.find_element(By.CSS_SELECTOR, "button").click()
    # The form posts and the page comes back: the old row goes stale on the way.
    WebDriverWait(
        browser, 20, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    ).until(
        lambda d: "acknowledged" in (d.find_element(By.ID, f"spend-{spend_id}")
                                     .get_attribute("class") or "")
    )
    row = browser.find_element(By.ID, f"spend-{spend_id}")
    # The acknowledger's name is text: no element, no script ran.
    assert hostile in row.text, row.text
    assert not row.find_elements(By.TAG_NAME, "img"), row.get_attribute("innerHTML")
    try:
        browser.switch_to.alert
        raise AssertionError("a script from the name ran")
    except NoAlertPresentException:
        pass
    shot(browser, "alerts-acknowledged")
    open_spends = [s for s in devnet.admin("GET", "/v1/unauthorized-spends")["items"]
                   if s.get("acknowledged_by") is None]
    assert not open_spends, open_spends
    for page in ADMIN_PAGES:
        assert not banner_on(browser, devnet, page), f"the banner stays on {page}"
    devnet.admin("DELETE", "/v1/admin/tokens/" + urllib.parse.quote(hostile, safe=""))
