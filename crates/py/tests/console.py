"""What the console's browser tests (test_console_*.py) share: headless Chromium, the demo
agent's wallet, and the steps of a person at the console (log in, submit a form, create a
token) or of an agent waiting on one (a payment held for approval). Registered as a plugin by
conftest.py, so its fixtures reach every test module (each module gets its own browser)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import chaperone
from chaperone import Wallet
from conftest import REPO, Running
from headless_chromium import headless_chromium

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

VENDOR = "0x4242424242424242424242424242424242424242"
ETH = 10**18
SCREENSHOTS = REPO / "target/console-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium(SCREENSHOTS) as driver:
        yield driver


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
