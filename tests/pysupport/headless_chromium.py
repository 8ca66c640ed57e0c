"""Debian's headless Chromium through chromedriver, driven by Selenium: the browser of the
console's tests (crates/py/tests/test_console_*.py, tests/mcp/test_tool_decisions.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.remote.webdriver import WebDriver


@contextmanager
def headless_chromium(screenshots: Path) -> Iterator[WebDriver]:
    """A browser for the block, 1280×1000; `screenshots` (where the tests save each page) is
    made first. Fails, saying what to install, without Chromium and chromedriver."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail(
            "headless Chromium is missing: install the Debian packages chromium and "
            "chromium-driver (scripts/test-py.sh installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
    screenshots.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
