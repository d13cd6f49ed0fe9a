"""A real headless Chromium (Debian's package) driven by Selenium, for the operator's pages.

Browser downloads by pip packages do not work on this network, so Selenium is pointed at the
system's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``scripts/install.sh`` installs
both where it can). Outside CI a machine without them skips these tests, saying why; in CI
(``CI`` set) a missing browser fails them, so a broken install can never pass silently.
Screenshots go to ``test-artifacts/`` (or ``$BREMEN_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("BREMEN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BREMEN_CHROMEDRIVER", "/usr/bin/chromedriver")


def _missing_reason() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} not found: apt-get install chromium chromium-driver (install.sh does it as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots are saved as test artifacts (kept after the run)."""
    default = Path(__file__).resolve().parents[2] / "test-artifacts"
    root = Path(os.environ.get("BREMEN_TEST_ARTIFACTS", default))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def browser() -> Iterator[Any]:
    """A fresh headless Chromium per test, with its console log readable via ``get_log('browser')``."""
    reason = _missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="bremen-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # The closed network refuses Chromium's background connections; these flags keep it quiet
    # and offline. --no-sandbox because CI runs as root.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """The page's console messages at SEVERE level (JS errors, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
