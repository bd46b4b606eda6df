"""``/docs`` in a real headless Chromium against a live gunicorn, with nothing allowed off this host.

Swagger UI must render from the service's own files: the test reads every request the browser
made (Chrome DevTools' network log) and fails on any that left 127.0.0.1, and checks that the
page shows the ``POST /similar-users/`` operation.  With API keys configured the page still
renders without a key (the docs hold no data).  It skips only where no Chromium and ChromeDriver
are installed (``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import requested_urls
from tests.live import gunicorn_server

pytestmark = pytest.mark.dynamodb

def render(driver, base: str, screenshot: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/docs")
    operation = WebDriverWait(driver, 30).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".opblock-post .opblock-summary-path[data-path='/similar-users/']")))
    assert operation.text.strip().startswith("/similar-users/")
    method = driver.find_element(By.CSS_SELECTOR, ".opblock-post .opblock-summary-method")
    assert method.text.strip() == "POST"
    driver.save_screenshot(str(screenshot))
    urls = requested_urls(driver)
    assert f"{base}/docs/assets/swagger-ui-bundle.js" in urls and f"{base}/openapi.json" in urls
    # Network requests only (chrome:// pages are the browser's own new-tab page, not the network).
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    offsite = [u for u in network if urlsplit(u).hostname != "127.0.0.1"]
    assert offsite == [], f"requests left 127.0.0.1: {offsite}"


def test_docs_render_offline_in_a_real_browser(browser, seeded_settings, tmp_path):
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log") as base:
        render(browser, base, tmp_path / "docs.png")


def test_docs_render_without_a_key_when_keys_are_set(browser, seeded_settings, tmp_path):
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env={"API_KEYS": "k-secret"}) as base:
        render(browser, base, tmp_path / "docs.png")
