"""The browser the page tests drive: Debian's headless Chromium through its ChromeDriver
(installed by scripts/test-deps.sh), with the network closed to anything but 127.0.0.1,
and the helpers the page tests share. Fixtures: `browser` (one per module) and `shots`.

Screenshots: every test's go to pytest's temporary folder (the path is printed: `pytest -s`
shows it); those the docs show (`docs/ui.md`) go to the folder `STATEWRITER_SCREENSHOTS`
names instead, when it is set, so that

    STATEWRITER_SCREENSHOTS=docs/images python -m pytest tests/test_ui_delivery.py

retakes them, and a plain test run changes no tracked file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[1]
WAIT = 15.0  # seconds a page may take to show what is waited for
WIDTH, HEIGHT = 1366, 900  # the window the tests browse in
DOC_WIDTH, DOC_HEIGHT = 1280, 800  # the docs' screenshots: one screen, not the whole page


@dataclass(frozen=True)
class Shots:
    folder: Path  # every screenshot
    docs: Path  # the screenshots docs/ui.md shows


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    folder = tmp_path_factory.mktemp("ui-screenshots")
    chosen = os.environ.get("STATEWRITER_SCREENSHOTS")
    docs = (ROOT / chosen if not Path(chosen).is_absolute() else Path(chosen)) if chosen else folder
    docs.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the web pages: {folder} (the docs' in {docs})")
    return Shots(folder, docs)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium that can reach 127.0.0.1 only: names resolve to nothing and every
    other address goes to a proxy that is not there."""
    for program in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(program), f"{program} is missing: run scripts/test-deps.sh"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--window-size={WIDTH},{HEIGHT}", "--lang=en-US",
                 "--hide-scrollbars", "--force-device-scale-factor=1",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT)


def heading(driver: WebDriver, text: str) -> WebElement:
    """The page's h1 once it reads `text` (after a click, the next page's)."""
    wait(driver).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))
    return driver.find_element(By.TAG_NAME, "h1")


def shoot(driver: WebDriver, folder: Path, name: str) -> Path:
    """The whole page (the window grown to its height), then the window as it was."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, min(max(HEIGHT, height), 8000))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, HEIGHT)
    return path


def shoot_for_docs(driver: WebDriver, shots: Shots, name: str) -> Path:
    """One screen of the page as docs/ui.md shows it (`ui-<name>.png`, 1280 px wide)."""
    driver.set_window_size(DOC_WIDTH, DOC_HEIGHT)
    try:
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        # the window's frame, if any, is not the page's: grow it until the page is 1280x800
        driver.set_window_size(2 * DOC_WIDTH - int(inner[0]), 2 * DOC_HEIGHT - int(inner[1]))
        path = shots.docs / f"ui-{name}.png"
        assert driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(WIDTH, HEIGHT)
    return path


def sign_in(driver: WebDriver, url: str, token: str) -> None:
    """At /ui, signed in (through the form when the browser is not yet)."""
    driver.get(f"{url}/ui")
    if driver.find_element(By.TAG_NAME, "h1").text != "Sign in":
        return
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    heading(driver, "Destinations")


def row_of(table: WebElement, text: str) -> WebElement:
    rows = [row for row in table.find_elements(By.CSS_SELECTOR, "tbody tr") if text in row.text]
    assert rows, f"no row with {text!r} in:\n{table.text}"
    return rows[0]


def overflowing(driver: WebDriver, selector: str) -> list[str]:
    """The cells matching `selector` whose content runs past their own right edge (into
    the next column), as their text."""
    found: list[str] = driver.execute_script("""
        const found = [];
        for (const cell of document.querySelectorAll(arguments[0])) {
          const edge = cell.getBoundingClientRect().right;
          for (const part of cell.children) {
            if (part.getBoundingClientRect().right > edge + 0.5) { found.push(cell.innerText); break; }
          }
        }
        return found;""", selector)
    return found
