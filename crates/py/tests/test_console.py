"""The compliance console in a real browser (headless Chromium through chromedriver and
Selenium), against the devnet: log in, approve a payment the SDK is waiting on and see it
execute, deny another, read the decisions' reasons, verify an uploaded disclosure, diff two
policy versions, filter and export the payment ledger, create a named token, reach a
two-approver quorum, and see an unauthorized spend (both keys, without the service) raise a
banner on every page until an admin acknowledges it. A screenshot of each page goes to
target/console-screenshots/.

The console is served by the Rust server; these tests live beside the Python SDK's because the
agent side of each scenario (a pending payment, a disclosure) is the Python SDK, as it would be
for a Python agent's approver."""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chaperone
from chaperone import Recorder, Wallet, agent_address
from conftest import REPO, Running, disclose

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

VENDOR = "0x4242424242424242424242424242424242424242"
ETH = 10**18
SCREENSHOTS = REPO / "target/console-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail(
            "headless Chromium is missing: install the Debian packages chromium and "
            "chromium-driver (make test installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def wallet(devnet: Running) -> Wallet:
    info = devnet.info
    return Wallet(info.server_url, info.rpc_url, info.wallet, info.agent_key, approval_poll=0.2)


def shot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def submit(browser: WebDriver, button: str, until: str) -> None:
    """Clicks a form's button and waits for the page it leads to (its URL contains `until`).

    The old page must be gone first: the login page's own URL (`/login?next=/people`)
    already contains `/people`, so the URL alone would be read before the form is sent."""
    clicked = browser.find_element(By.CSS_SELECTOR, button)
    clicked.click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(clicked))
    WebDriverWait(browser, 20).until(lambda d: until in d.current_url)


def log_in(browser: WebDriver, devnet: Running, page: str = "/approvals") -> None:
    browser.get(devnet.info.server_url + page)
    if "/login" in browser.current_url:
        browser.find_element(By.NAME, "token").send_keys(devnet.info.admin_token)
        shot(browser, "login")
        submit(browser, "form.login button", page)
    assert page in browser.current_url, browser.current_url


def test_a_page_without_a_session_redirects_to_login(browser: WebDriver, devnet: Running) -> None:
    browser.delete_all_cookies()
    browser.get(devnet.info.server_url + "/decisions")
    assert "/login?next=/decisions" in browser.current_url
    browser.find_element(By.NAME, "token").send_keys("not-a-token")
    submit(browser, "form.login button", "failed=1")
    assert "That token is not valid" in browser.page_source
    log_in(browser, devnet, "/decisions")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Decisions"


def pending_payment(wallet: Wallet, amount: int) -> chaperone.Pending:
    with pytest.raises(chaperone.Pending) as pending:
        wallet.pay(VENDOR, amount)
    return pending.value


def waiting(wallet: Wallet, pending: chaperone.Pending) -> tuple[threading.Thread, dict[str, Any]]:
    """The SDK waiting for the approver in the background, as an agent would."""
    outcome: dict[str, Any] = {}

    def wait() -> None:
        try:
            outcome["executed"] = wallet.wait_for_approval(pending.pending, timeout=120)
        except chaperone.ChaperoneError as e:
            outcome["error"] = e

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, outcome


def test_approve_in_the_browser_and_the_payment_executes(
    browser: WebDriver, devnet: Running, wallet: Wallet
) -> None:
    pending = pending_payment(wallet, 7 * ETH // 100)
    thread, outcome = waiting(wallet, pending)
    log_in(browser, devnet)
    section = browser.find_element(By.ID, f"request-{pending.request_id}")
    text = section.text
    assert "0.07 ETH to" in text
    assert "0.07 ETH is above the approval threshold of 0.05 ETH" in text
    shot(browser, "approvals")
    section.find_element(By.NAME, "comment").send_keys("invoice 42, checked")
    section.find_element(By.CSS_SELECTOR, "button.approve").click()
    WebDriverWait(browser, 20).until(
        lambda d: f"request-{pending.request_id}" not in d.page_source
    )
    thread.join(timeout=120)
    executed = outcome.get("executed")
    assert executed is not None, f"the SDK did not get the approval: {outcome}"
    assert executed.request_id == pending.request_id and executed.block_number > 0

    browser.get(devnet.info.server_url + "/decisions?outcome=approved")
    assert "approved by bootstrap" in browser.page_source
    assert "invoice 42, checked" in browser.page_source


def test_deny_in_the_browser_and_the_sdk_is_told(
    browser: WebDriver, devnet: Running, wallet: Wallet
) -> None:
    pending = pending_payment(wallet, 6 * ETH // 100)
    thread, outcome = waiting(wallet, pending)
    log_in(browser, devnet)
    section = browser.find_element(By.ID, f"request-{pending.request_id}")
    section.find_element(By.NAME, "comment").send_keys("unknown vendor")
    section.find_element(By.CSS_SELECTOR, "button.deny").click()
    WebDriverWait(browser, 20).until(
        lambda d: f"request-{pending.request_id}" not in d.page_source
    )
    thread.join(timeout=120)
    assert isinstance(outcome.get("error"), chaperone.Denied), outcome


def test_the_decisions_read_in_words(browser: WebDriver, devnet: Running, wallet: Wallet) -> None:
    with pytest.raises(chaperone.Denied):
        wallet.pay(VENDOR, ETH // 2)
    log_in(browser, devnet, "/decisions?outcome=denied")
    assert "0.5 ETH is over the per-payment cap of 0.1 ETH" in browser.page_source
    browser.get(devnet.info.server_url + "/decisions?reason=per_transaction_cap")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.decisions tbody tr")
    assert rows and all("per-payment cap" in row.text for row in rows)
    browser.get(devnet.info.server_url + "/decisions")
    shot(browser, "decisions")


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


def test_an_admin_registers_an_agent_in_the_browser_and_it_may_log(
    browser: WebDriver, devnet: Running, tmp_path: Path
) -> None:
    key = "0x" + secrets.token_hex(32)
    address = agent_address(key)
    log_in(browser, devnet, "/agents")
    browser.find_element(By.NAME, "address").send_keys(address)
    browser.find_element(By.NAME, "label").send_keys("<b>support</b> bot")
    submit(browser, "form.register button", "/agents")
    assert address in browser.page_source
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if address in r.text
    )
    assert row.find_element(By.CSS_SELECTOR, "td.label").text == "<b>support</b> bot"
    assert "none yet" in row.text, "it has logged nothing yet"
    shot(browser, "agents")
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", key) as recorder:
        recorder.record("gpt-4o", "registered in the console", "logged")
        recorder.sync()
    assert devnet.logged_sequences(address) == [0]


def session_cookie(devnet: Running) -> str:
    """Logs in as the login form does, without following the redirect: the session cookie."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(devnet.info.server_url).netloc)
    connection.request(
        "POST",
        "/login",
        body=f"token={devnet.info.admin_token}&csrf=ab",
        headers={
            "Cookie": "chaperone_login=ab",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    response = connection.getresponse()
    cookie = response.getheader("Set-Cookie") or ""
    connection.close()
    assert cookie.startswith("chaperone_session="), cookie
    assert devnet.info.admin_token not in cookie, "the cookie is the bearer token"
    return cookie.split(";")[0]


def test_a_copied_session_cookie_opens_nothing_after_logout(
    browser: WebDriver, devnet: Running
) -> None:
    log_in(browser, devnet, "/decisions")
    copied = browser.get_cookie("chaperone_session")
    assert copied is not None and copied["httpOnly"], copied
    cookie = f"chaperone_session={copied['value']}"
    assert get_status(f"{devnet.info.server_url}/v1/decisions", cookie) == 200
    submit(browser, "nav form button", "/login")
    assert get_status(f"{devnet.info.server_url}/v1/decisions", cookie) == 401
    browser.get(devnet.info.server_url + "/decisions")
    assert "/login" in browser.current_url


def get_status(url: str, cookie: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def post(url: str, body: bytes, cookie: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    devnet: Running, wallet: Wallet
) -> None:
    pending = pending_payment(wallet, 6 * ETH // 100)
    cookie = session_cookie(devnet)
    url = f"{devnet.info.server_url}/approvals/{pending.request_id}"
    assert post(url, b"verdict=approve", cookie) == 403
    assert post(url, b"verdict=approve&csrf=" + b"0" * 64, cookie) == 403
    assert pending.request_id in str(devnet.admin("GET", "/v1/admin/approvals")), "still pending"
    # The API's writes never take the session cookie (a cross-site form would send it).
    api = f"{devnet.info.server_url}/v1/admin/approvals/{pending.request_id}/approve"
    assert post(api, b"", cookie) == 401
    devnet.admin("POST", f"/v1/admin/approvals/{pending.request_id}/deny", {})
    # The login form carries its own CSRF token (a cookie and a field that must match).
    login = f"{devnet.info.server_url}/login"
    token = f"token={devnet.info.admin_token}".encode()
    assert post(login, token, "") == 403
    assert post(login, token + b"&csrf=ab", "chaperone_login=cd") == 403
    assert post(login, token + b"&csrf=ab", "chaperone_login=ab") == 200  # logged in, redirected


def test_the_payment_ledger_filters_exports_and_shows_the_settlement(
    browser: WebDriver, devnet: Running, wallet: Wallet
) -> None:
    executed = wallet.pay(VENDOR, 3 * ETH // 100)
    log_in(browser, devnet, f"/payments?recipient={VENDOR}")
    row_of_payment = f"//tr[.//code[@title='{executed.request_id}']]"

    def settled(driver: WebDriver) -> bool:
        # The indexer settles the payment from the confirmed block (a pass every 2 s).
        driver.refresh()
        rows = driver.find_elements(By.XPATH, row_of_payment)
        return bool(rows) and "settled" in rows[0].text

    WebDriverWait(browser, 30, poll_frequency=1).until(settled)
    row = browser.find_element(By.XPATH, row_of_payment).text
    assert "0.03 ETH" in row and "execute" in row, row
    assert "tx " + executed.tx_hash[:8] in row, row
    shot(browser, "payments")

    # The filter form: settled payments of at least 0.03 ETH, in base units.
    browser.get(devnet.info.server_url + "/payments")
    browser.find_element(By.NAME, "recipient").send_keys(VENDOR)
    browser.find_element(By.NAME, "min_amount").send_keys(str(3 * ETH // 100))
    browser.find_element(By.CSS_SELECTOR, "select[name=status] option[value=settled]").click()
    submit(browser, "form.filters button", "status=settled")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.payments tbody tr")
    assert rows and all("settled" in r.text for r in rows)
    assert any(executed.request_id in (r.get_attribute("innerHTML") or "") for r in rows)
    shot(browser, "payments-filtered")

    # The export link carries the filters; the browser's session opens it.
    link = browser.find_element(By.LINK_TEXT, "CSV").get_attribute("href") or ""
    assert "status=settled" in link and "format=csv" in link, link
    session = browser.get_cookie("chaperone_session")
    assert session is not None
    cookie = f"chaperone_session={session['value']}"
    request = urllib.request.Request(link, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:
        csv = response.read().decode()
    header, *lines = csv.splitlines()
    assert header.startswith("created_at_iso,created_at,wallet,agent,method,token_symbol"), header
    mine = [line for line in lines if executed.request_id in line]
    assert mine and executed.tx_hash in mine[0] and ",settled," in mine[0], csv

    # A bad filter value: the page, a message, no rows.
    browser.get(devnet.info.server_url + "/payments?min_amount=lots")
    assert "This filter cannot be applied" in browser.page_source
    assert "min_amount=lots" in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, "table.payments tbody tr")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Payments"
    shot(browser, "payments-bad-filter")
    browser.get(devnet.info.server_url + "/decisions?wallet=0x12")
    assert "This filter cannot be applied" in browser.page_source
    assert browser.find_element(By.TAG_NAME, "h1").text == "Decisions"
def log_in_as(browser: WebDriver, devnet: Running, token: str, page: str = "/approvals") -> None:
    """Ends the browser's session and logs in with `token` (another person's)."""
    browser.delete_all_cookies()
    browser.get(devnet.info.server_url + page)
    browser.find_element(By.NAME, "token").send_keys(token)
    submit(browser, "form.login button", page)
    assert page in browser.current_url, browser.current_url


def create_token(browser: WebDriver, devnet: Running, name: str, role: str) -> str:
    """Creates a token on the People page as the admin: the token, shown this once."""
    log_in_as(browser, devnet, devnet.info.admin_token, "/people")
    form = browser.find_element(By.CSS_SELECTOR, "form.create")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.CSS_SELECTOR, f"select[name=role] option[value={role}]").click()
    form.find_element(By.CSS_SELECTOR, "button").click()
    token = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "issued-token")
    ).text
    assert token.startswith("chp_"), token
    return token


def test_an_admin_creates_a_named_token_in_the_console(
    browser: WebDriver, devnet: Running
) -> None:
    token = create_token(browser, devnet, "treasury-desk", "approver")
    assert "shown this once" in browser.page_source
    shot(browser, "people-token-created")
    # The list names who created it; the token itself is never shown again.
    browser.get(devnet.info.server_url + "/people")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "table.people tbody tr")
        if r.find_element(By.CSS_SELECTOR, "td.name").text == "treasury-desk"
    )
    assert "approver" in row.text and "bootstrap" in row.text, row.text
    assert token not in browser.page_source
    shot(browser, "people")
    # It works as an approver's login: the inbox, not the People page.
    log_in_as(browser, devnet, token)
    assert "People" not in browser.find_element(By.TAG_NAME, "nav").text
    browser.get(devnet.info.server_url + "/actions")
    assert "needs role" in browser.page_source
    # The creation is on the record, for the auditor.
    log_in_as(browser, devnet, devnet.info.admin_token, "/actions")
    first = browser.find_element(By.CSS_SELECTOR, "table.actions tbody tr").text
    assert "token.create" in first and "bootstrap" in first, first
    shot(browser, "actions")


def test_two_approvers_reach_a_quorum_in_the_browser(
    browser: WebDriver, devnet: Running, wallet: Wallet
) -> None:
    address = devnet.info.wallet
    before = devnet.admin("GET", f"/v1/admin/wallets/{address}/policy")
    quorum = {**before, "version": before["version"] + 1}
    quorum["approval"] = {
        **before["approval"],
        "quorum": {"approvers": 2, "above": [{"token": "native", "amount": str(8 * ETH // 100)}]},
    }
    devnet.admin("PUT", f"/v1/admin/wallets/{address}/policy", quorum)
    try:
        first = create_token(browser, devnet, "desk-one", "approver")
        second = create_token(browser, devnet, "desk-two", "approver")
        pending = pending_payment(wallet, 9 * ETH // 100)
        thread, outcome = waiting(wallet, pending)

        log_in_as(browser, devnet, first)
        section = browser.find_element(By.ID, f"request-{pending.request_id}")
        assert "0 of 2 approved" in section.text, section.text
        section.find_element(By.CSS_SELECTOR, "button.approve").click()
        WebDriverWait(browser, 20).until(lambda d: "done=" in d.current_url)
        assert "1 of 2 approvers so far, 1 more needed" in browser.page_source
        section = browser.find_element(By.ID, f"request-{pending.request_id}")
        # Each approver is shown with the chain of admins that issued the token that voted,
        # back to the configuration (red-team F8, and the fourth issue-29 review's C).
        assert (
            "1 of 2 approved (desk-one (token issued by bootstrap, issued by the configuration))"
            in section.text
        ), section.text
        shot(browser, "approvals-quorum")
        thread.join(timeout=2)
        assert thread.is_alive() and not outcome, f"co-signed before the quorum: {outcome}"

        log_in_as(browser, devnet, second)
        section = browser.find_element(By.ID, f"request-{pending.request_id}")
        section.find_element(By.CSS_SELECTOR, "button.approve").click()
        WebDriverWait(browser, 20).until(lambda d: "done=" in d.current_url)
        assert "Approved by desk-one, desk-two" in browser.page_source
        assert f"request-{pending.request_id}" not in browser.page_source
        shot(browser, "approvals-quorum-reached")
        thread.join(timeout=120)
        executed = outcome.get("executed")
        assert executed is not None, f"the SDK did not get the quorum's approval: {outcome}"
        assert executed.request_id == pending.request_id
    finally:
        restored = {**before, "version": before["version"] + 2}
        devnet.admin("PUT", f"/v1/admin/wallets/{address}/policy", restored)


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
