"""Fixtures of the API tests: seeded DynamoDB Local settings, and a fast in-memory store for the
tests of what happens around a request (headers, keys, logs), where the data does not matter."""

from __future__ import annotations

import json
import shutil

import pytest

from recommender.api import create_app
from recommender.api.http.logs import configure_logging
from recommender.config import ApiSettings
from recommender.models.registry import MODEL_HANDLES as MODELS
from recommender.store.control import Pointer
from recommender.store.items import StoredItem

NEIGHBOURS = [901, 6871, 686, 2429, 3212, 4889, 8467, 4651, 8989, 2471]
SCORES = [round(0.9 - i / 100, 6) for i in range(10)]


def seed_for(users=(999,)) -> list[StoredItem]:
    """Ten neighbours for each user and model (user 999 is what the Postman collection asks about)."""
    return [
        StoredItem.of(user, model, zip(NEIGHBOURS, SCORES), run_id="r1", generated_at="2026-11-28T00:00:00Z")
        for user in users
        for model in MODELS
    ]


class MemoryStore:
    """A :class:`recommender.api.store.ReadStore` from a list of items."""

    def __init__(self, items: list[StoredItem] | None = None, healthy: bool = True):
        self.items = {(i.user_handle, i.model_handle): i for i in (items or [])}
        self.healthy = healthy

    def get(self, user_handle: int, model_handle: str) -> StoredItem | None:
        return self.items.get((user_handle, model_handle))

    def pointers(self) -> list[Pointer]:
        models = sorted({m for _, m in self.items})
        return [Pointer(m, "r1", "memory", sum(1 for _, x in self.items if x == m), 0) for m in models]

    def ping(self) -> bool:
        return self.healthy

    def unavailable_runs(self) -> list[Pointer]:
        return []


@pytest.fixture
def seeded_settings(local_settings, seed_items):
    """DynamoDB Local settings whose table answers for users 999 and 1 (all three models)."""
    seed_items(seed_for((999, 1)))
    return local_settings


@pytest.fixture
def memory_app():
    """``memory_app(api_keys=("k",), log_format="json")``: an app on a MemoryStore seeded with user 999."""

    def build(**settings):
        return create_app(ApiSettings(**settings), store=MemoryStore(seed_for()))

    yield build
    configure_logging("INFO", "text")  # the logging set-up is process-wide: back to the default


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no Chromium + ChromeDriver on this machine (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
