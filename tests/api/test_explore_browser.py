"""``/explore`` in a real headless Chromium against a live gunicorn and DynamoDB Local.

The oracle is the JSON API of the same server: the page must show, for every model, exactly the
neighbours (and reasons) ``POST /similar-users/`` serves, the runs ``GET /models`` lists, and for
the demo experiment the figures :mod:`recommender.experiments.report` computes from the stored
records.  With API keys the page must show nothing without the key and work once it is entered.
Nothing the browser asks for may leave 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests

from recommender.models.registry import MODEL_HANDLES
from recommender.store.items import Neighbour, Reason, StoredItem
from tests.api.conftest import CHROMIUM, requested_urls
from tests.live import gunicorn_server

pytestmark = pytest.mark.dynamodb

USER = 42
SHARED = (7, 8)  # every model lists these two: the page must mark them
KINDS = {"tfidf_user_interest": "tag", "knn_collab_filtering_user_course_view": "course",
         "dnn_collab_filtering_user_course_level": "level", "als_collab_filtering_user_course_view": "course",
         "knn_collab_filtering_user_assessment_score": "assessment", "ensemble_user_similarity": "model"}


def six_model_items() -> list[StoredItem]:
    """User 42 with different neighbours (and reasons) per model, two of them shared by all;
    user 7 too, so that a neighbour can be explored."""
    items = []
    for m, model in enumerate(MODEL_HANDLES):
        own = [1000 + 10 * m + j for j in range(6)]
        handles = [own[0], SHARED[0], *own[1:4], SHARED[1], *own[4:]]
        for user in (USER, SHARED[0]):
            neighbours = tuple(
                Neighbour(h, round(0.95 - 0.07 * r - 0.01 * m, 6),
                          tuple(Reason(KINDS[model], f"{KINDS[model]}-{h % 5}-{k}", round(0.3 - 0.1 * k, 3)) for k in range(r % 3 + 1)))
                for r, h in enumerate(handles if user == USER else [USER, *own]))
            items.append(StoredItem(user, model, neighbours, "r", "2026-12-01T00:00:00Z"))
    return items


@pytest.fixture
def six_models(local_settings, seed_items):
    seed_items(six_model_items())
    return local_settings


def api_answers(base: str, headers: dict | None = None) -> dict[str, list[dict]]:
    """Each model's neighbours of USER, with reasons, from POST /similar-users/."""
    answers = {}
    for model in MODEL_HANDLES:
        response = requests.post(f"{base}/similar-users/", json={"user_handle": USER, "model_handle": model, "explain": True},
                                 headers=headers or {}, timeout=10)
        assert response.status_code == 200, response.text
        answers[model] = response.json()[0]["neighbours"]
    return answers


def wait_for(driver, css: str, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def shown_models(driver) -> dict[str, list[tuple[int, list[str], bool]]]:
    """What the page shows: per model column, (neighbour, reason texts, marked as agreed)."""
    from selenium.webdriver.common.by import By

    shown = {}
    for section in driver.find_elements(By.CSS_SELECTOR, "section.model"):
        rows = []
        for li in section.find_elements(By.CSS_SELECTOR, "li.neighbour"):
            reasons = [r.text for r in li.find_elements(By.CSS_SELECTOR, "li.reason")]
            rows.append((int(li.find_element(By.CSS_SELECTOR, "a.handle").text), reasons, "agreed" in li.get_attribute("class")))
        shown[section.get_attribute("data-model-handle")] = rows
    return shown


def check_against_api(driver, answers: dict[str, list[dict]]) -> None:
    shown = shown_models(driver)
    assert list(shown) == list(MODEL_HANDLES)  # all six, in registry order
    listed_by = {}
    for neighbours in answers.values():
        for n in neighbours:
            listed_by[n["user_handle"]] = listed_by.get(n["user_handle"], 0) + 1
    for model, neighbours in answers.items():
        expected = [(n["user_handle"], [r["text"] for r in n["reasons"]], listed_by[n["user_handle"]] > 1) for n in neighbours]
        assert shown[model] == expected, model


def assert_offline(driver, base: str) -> None:
    network = [u for u in requested_urls(driver) if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    assert network and all(urlsplit(u).hostname == "127.0.0.1" for u in network), network


def test_every_model_shows_the_neighbours_the_api_serves(browser, six_models, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with gunicorn_server(six_models, tmp_path / "gunicorn.log") as base:
        answers = api_answers(base)
        models = {m["model_handle"]: m for m in requests.get(f"{base}/models", timeout=10).json()["models"]}
        browser.get(f"{base}/explore?user_handle={USER}")
        wait_for(browser, "section.model")
        check_against_api(browser, answers)
        assert browser.find_elements(By.CSS_SELECTOR, "li.agreed a.handle")  # the shared ones are marked
        for model, entry in models.items():  # each column shows its run
            run = browser.find_element(By.CSS_SELECTOR, f"section.model[data-model-handle='{model}'] dl.run").text
            assert entry["run_id"] in run and f"{entry['users_covered']:,}" in run
        assert_offline(browser, base)
        assert browser.get_cookies() == []

        # Keyboard: the neighbour links are reachable and following one explores that user.
        link = browser.find_element(By.CSS_SELECTOR, f"section.model li.neighbour[data-user-handle='{SHARED[0]}'] a.handle")
        link.send_keys(Keys.ENTER)
        wait_for(browser, "h2 .subject")
        assert browser.find_element(By.CSS_SELECTOR, "h2 .subject").text == str(SHARED[0])
        assert USER in [row[0] for row in shown_models(browser)[MODEL_HANDLES[0]]]

        # 360 px wide: the columns become rows, nothing scrolls sideways.
        browser.set_window_size(360, 900)
        browser.get(f"{base}/explore?user_handle={USER}")
        wait_for(browser, "section.model")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        lefts = {s.location["x"] for s in browser.find_elements(By.CSS_SELECTOR, "section.model")}
        assert len(lefts) == 1

        # The done criterion, literally: Chromium's --dump-dom of the page names every model and
        # every neighbour the default model serves.
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              f"--user-data-dir={tmp_path / 'dump-profile'}", "--dump-dom", f"{base}/explore?user_handle={USER}"],
                             capture_output=True, text=True, timeout=90).stdout
        default = requests.post(f"{base}/similar-users/", json={"user_handle": USER}, timeout=10).json()[0]["similar_users"]
        assert all(f'data-model-handle="{m}"' in dom for m in MODEL_HANDLES)
        assert all(f'data-user-handle="{u}"' in dom for u in default) and len(default) == 8


def test_with_api_keys_nothing_shows_without_the_key(browser, six_models, tmp_path):
    from selenium.webdriver.common.by import By

    key = "k-explorer-secret"
    log = tmp_path / "gunicorn.log"
    with gunicorn_server(six_models, log, env={"API_KEYS": key}) as base:
        page = requests.get(f"{base}/explore?user_handle={USER}", timeout=10)
        assert page.status_code == 200 and "li class=\"neighbour" not in page.text  # the shell holds no data
        assert requests.get(f"{base}/explore/panel?user_handle={USER}", timeout=10).status_code == 401

        browser.get(f"{base}/explore?user_handle={USER}")
        field = wait_for(browser, "#api-key")
        assert browser.find_elements(By.CSS_SELECTOR, "li.neighbour") == []
        field.send_keys("wrong-key\n")
        assert "refused" in wait_for(browser, "#key-message").text
        assert browser.find_elements(By.CSS_SELECTOR, "li.neighbour") == []

        wait_for(browser, "#api-key").send_keys(key + "\n")
        wait_for(browser, "section.model li.neighbour")
        check_against_api(browser, api_answers(base, {"X-API-Key": key}))
        assert key not in browser.current_url
        assert browser.execute_script("return window.sessionStorage.getItem('similar-users-explorer-api-key')") == key

        # Another page of the explorer uses the key of the tab without asking again.
        browser.get(f"{base}/explore/experiments")
        assert "experiments file" in wait_for(browser, "#panel .hint").text
        assert not browser.find_element(By.ID, "key-section").is_displayed()
        assert_offline(browser, base)
    assert key not in log.read_text()


def test_an_unknown_user_gets_a_plain_message(browser, six_models, tmp_path):
    with gunicorn_server(six_models, tmp_path / "gunicorn.log") as base:
        assert requests.get(f"{base}/explore?user_handle=424242", timeout=10).status_code == 404
        browser.get(f"{base}/explore?user_handle=424242")
        message = wait_for(browser, "#panel [role=alert]").text
        assert message == "User 424242 is unknown: no published model has similar users for them."
        assert "Traceback" not in browser.page_source


def test_the_experiments_view_shows_the_demo_experiment(browser, seeded_settings, tmp_path):
    """The demo's experiment (``similar-users-ab-demo``'s definition), with exposures and events
    stored by the service's own writer; the page must show the report computed from them."""
    from selenium.webdriver.common.by import By

    from recommender_tools.ab_demo import CONTROL, EXPERIMENT_FILE, TREATMENT
    from recommender.experiments import definitions, reading, report
    from recommender.experiments.assignment import assign
    from recommender.experiments.exposures import Event, Exposure, ExposureLog, writer_store

    now = datetime.now(timezone.utc).replace(microsecond=0)
    path = tmp_path / "experiments.toml"
    path.write_text(EXPERIMENT_FILE.format(
        name="demo-interest-vs-views", salt="demo-salt", control=CONTROL, treatment=TREATMENT,
        start=(now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        end=(now + timedelta(days=1)).isoformat().replace("+00:00", "Z")))
    experiment = definitions.load(path).get("demo-interest-vs-views")
    log = ExposureLog(writer_store(seeded_settings))
    for user in range(1, 301):
        arm = assign(experiment, user)
        exposure = Exposure(f"req-{user}", user, experiment.name, arm.name, arm.name, arm.model, (901, 6871, 686))
        log.record(exposure)
        if user % (3 if arm.name == "views" else 5) == 0:
            log.record(Event(exposure, 901, "click"))
        if user % 7 == 0:
            log.record(Event(exposure, 686, "dismiss"))
    assert log.flush(30)
    log.close()
    expected = report.build(experiment, *reading.read(writer_store(seeded_settings), experiment.name))

    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env={"EXPERIMENTS_FILE": str(path)}) as base:
        browser.get(f"{base}/explore/experiments")
        section = wait_for(browser, "section.experiment[data-experiment='demo-interest-vs-views']")
        assert "running, taking traffic" in section.text
        for f in expected.variants:
            row = section.find_element(By.CSS_SELECTOR, f"table.figures tr[data-variant='{f.variant}']")
            cell = lambda name: row.find_element(By.CSS_SELECTOR, f"td.{name}").text  # noqa: E731
            assert (cell("exposures"), cell("impressions"), cell("clicks"), cell("dismissals"), cell("ctr")) == (
                f"{f.exposures:,}", f"{f.impressions:,}", f"{f.events['click']:,}", f"{f.events['dismiss']:,}", f"{f.ctr:.4f}")
            assert cell("p-value") == (f"{f.p_value:.2g}" if f.p_value is not None else "–")
            split = section.find_element(By.CSS_SELECTOR, f"table.split tr[data-variant='{f.variant}']").text
            assert "50.0%" in split
        assert expected.verdict in section.find_element(By.CSS_SELECTOR, ".verdict").text
        assert section.find_element(By.CSS_SELECTOR, ".srm-state").text == ("ok" if not expected.sample_ratio["mismatch"] else
                                                                            "MISMATCH: do not trust these figures")
        assert len(section.find_elements(By.CSS_SELECTOR, "svg.chart rect")) == len(expected.variants)
        computed_at = section.find_element(By.CSS_SELECTOR, "time.computed-at").get_attribute("datetime")
        assert datetime.fromisoformat(computed_at) >= now
        assert_offline(browser, base)
