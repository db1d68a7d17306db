"""The demo's web app in a real headless Chromium (Debian's chromium and chromium-driver),
driven with selenium, against a real `twin serve --demo` process on loopback.

Rules: loopback only; every wait is bounded (WebDriverWait polls a condition); each test has
its own browser and profile; the hub process is stopped with SIGTERM. Each screen is saved
as a PNG under the test's tmp folder. Skipped, saying why, only when the binaries are absent.
"""

from __future__ import annotations

import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)",
)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`twin serve --demo` on a free loopback port; the URL of its web app."""
    port = _free_port()
    data = tmp_path_factory.mktemp("hub") / "hub.sqlite3"
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port), "--data", str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    printed: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [printed.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 30
    while not lines or "listening on" not in lines[-1]:
        try:
            lines.append(printed.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            proc.kill()
            raise AssertionError("twin serve did not start:\n" + "".join(lines)) from None
    url = next(line.split("web app: ", 1)[1].strip() for line in lines if line.startswith("web app: "))
    assert url == f"http://127.0.0.1:{port}/app/"
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)  # it ends at the pipe's end of file
        proc.stdout.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not severe, f"the page logged errors: {severe}"
    finally:
        driver.quit()


def _wait(driver: WebDriver, timeout: float = 5.0) -> WebDriverWait:  # type: ignore[type-arg]
    # the page re-renders parts as pushes arrive: an element found a moment ago may be replaced
    return WebDriverWait(driver, timeout, poll_frequency=0.02, ignored_exceptions=(StaleElementReferenceException,))


def _shot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _log_in(driver: WebDriver, url: str, email: str, car: str) -> None:
    driver.get(url)
    _wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#email option[value='{email}']")))
    Select(driver.find_element(By.ID, "email")).select_by_value(email)
    driver.find_element(By.ID, "login").click()
    _wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"#garage li[data-car='{car}']"))).click()
    _wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#readings tr[data-reading='Locked']")))


def _reading(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"#readings tr[data-reading='{name}'] td.value").text


def test_log_in_and_lock_a_car(browser: WebDriver, app_url: str, tmp_path: Path) -> None:
    browser.get(app_url)
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#email option")))
    _shot(browser, tmp_path, "1-login")
    _log_in(browser, app_url, "alice@example.com", "car:demo-1")
    def badges(driver: WebDriver) -> dict[str | None, str]:
        return {li.get_attribute("data-car"): li.find_element(By.CLASS_NAME, "badge").text for li in driver.find_elements(By.CSS_SELECTOR, "#garage li")}

    _wait(browser).until(lambda d: badges(d) == {"car:demo-1": "owner", "car:demo-2": "owner", "car:demo-7": "owner"})
    _shot(browser, tmp_path, "2-garage")
    browser.find_element(By.ID, "unlock").click()
    _wait(browser).until(lambda d: _reading(d, "Locked") == "no")
    browser.find_element(By.ID, "lock").click()
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#progress [data-outcome='done']")))
    assert browser.find_element(By.ID, "progress").text == "lock: done (locked)"
    assert _reading(browser, "Locked") == "yes"
    _shot(browser, tmp_path, "3-locked")


def test_the_car_panel_sounds_the_alarm_and_the_alert_appears_within_a_second(browser: WebDriver, app_url: str, tmp_path: Path) -> None:
    _log_in(browser, app_url, "alice@example.com", "car:demo-1")
    Select(browser.find_element(By.ID, "unit-car")).select_by_value("demo-1")
    browser.find_element(By.ID, "unit-connect").click()
    alarm = _wait(browser).until(EC.element_to_be_clickable((By.ID, "unit-alarm")))
    assert browser.find_element(By.ID, "unit-status").text == "linked as unit:demo-1"
    started = time.monotonic()
    alarm.click()
    _wait(browser, 1.0).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#alerts li[data-kind='alarm']")))
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the alert took {elapsed:.2f} s"
    assert "demo-1" in browser.find_element(By.CSS_SELECTOR, "#alerts li[data-kind='alarm']").text
    _shot(browser, tmp_path, "4-alarm-alert")


def test_a_sharees_unlock_is_refused_with_its_reason(browser: WebDriver, app_url: str, tmp_path: Path) -> None:
    _log_in(browser, app_url, "bob@example.com", "car:demo-1")
    _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#garage li[data-car='car:demo-1'] .badge").text == "sharee")
    browser.find_element(By.ID, "unlock").click()
    refused = _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#progress [data-outcome='refused']")))
    text = browser.find_element(By.ID, "progress").text
    assert text.startswith("unlock: refused: ") and text.endswith("(not_authorized)"), text
    assert len(refused.text) > len("refused: ") + 10, "no reason shown"
    _shot(browser, tmp_path, "5-sharee-refused")


def test_a_linked_car_comes_online_with_the_car_panel_and_goes_offline_again(browser: WebDriver, app_url: str, tmp_path: Path) -> None:
    _log_in(browser, app_url, "alice@example.com", "car:demo-7")
    _wait(browser).until(lambda d: _reading(d, "Telematics") == "offline")
    browser.find_element(By.ID, "lock").click()
    refused = _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#progress [data-outcome='refused']")))
    assert "is offline" in refused.text and "last report" in refused.text
    _shot(browser, tmp_path, "6-linked-offline")
    Select(browser.find_element(By.ID, "unit-car")).select_by_value("demo-7")
    browser.find_element(By.ID, "unit-connect").click()
    _wait(browser).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#readings tr[data-reading='Telematics']"))
    browser.find_element(By.ID, "lock").click()  # carried out by the panel's unit, then applied
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#progress [data-outcome='done']")))
    assert _reading(browser, "Locked") == "yes"
    browser.find_element(By.ID, "unit-coverage").click()  # lose coverage: the link closes
    _wait(browser).until(lambda d: _reading(d, "Telematics") == "offline")
    _shot(browser, tmp_path, "7-linked-back-offline")
