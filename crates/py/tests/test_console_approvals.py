"""The compliance console in a real browser (headless Chromium through chromedriver and
Selenium), against the devnet: payments. Approve a payment the SDK is waiting on and see it
execute, deny another, read the decisions' reasons, filter and export the payment ledger, and
reach a two-approver quorum. A screenshot of each page goes to target/console-screenshots/."""

from __future__ import annotations

import urllib.request

import pytest

import chaperone
from chaperone import Wallet
from conftest import Running
from console import (
    ETH,
    VENDOR,
    create_token,
    log_in,
    log_in_as,
    pending_payment,
    shot,
    submit,
    waiting,
)

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait


def decide(
    browser: WebDriver, section: WebElement, pending: chaperone.Pending, verdict: str, comment: str
) -> None:
    """Gives `verdict` (approve or deny) with `comment` in the inbox's `section` for `pending`,
    and waits until the request has left the inbox."""
    section.find_element(By.NAME, "comment").send_keys(comment)
    section.find_element(By.CSS_SELECTOR, f"button.{verdict}").click()
    WebDriverWait(browser, 20).until(
        lambda d: f"request-{pending.request_id}" not in d.page_source
    )


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
    decide(browser, section, pending, "approve", "invoice 42, checked")
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
    decide(browser, section, pending, "deny", "unknown vendor")
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
