"""The compliance console in a real browser (headless Chromium through chromedriver and
Selenium), against the devnet: who gets in. A page without a session goes to the login, an
admin registers an agent (which may then log) and creates a named token, a copied session
cookie opens nothing after logout, and a form without its CSRF token is refused. A screenshot
of each page goes to target/console-screenshots/.

The console is served by the Rust server; these tests live beside the Python SDK's because the
agent side of each scenario (a pending payment, a disclosure) is the Python SDK, as it would be
for a Python agent's approver."""

from __future__ import annotations

import http.client
import secrets
import urllib.parse
import urllib.request
from pathlib import Path

from chaperone import Recorder, Wallet, agent_address
from conftest import Running, status_of
from console import ETH, create_token, log_in, log_in_as, pending_payment, shot, submit

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver


def test_a_page_without_a_session_redirects_to_login(browser: WebDriver, devnet: Running) -> None:
    browser.delete_all_cookies()
    browser.get(devnet.info.server_url + "/decisions")
    assert "/login?next=/decisions" in browser.current_url
    browser.find_element(By.NAME, "token").send_keys("not-a-token")
    submit(browser, "form.login button", "failed=1")
    assert "That token is not valid" in browser.page_source
    log_in(browser, devnet, "/decisions")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Decisions"


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
    return status_of(urllib.request.Request(url, headers={"Cookie": cookie}))


def post(url: str, body: bytes, cookie: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    return status_of(request)


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
