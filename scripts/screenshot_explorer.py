"""Screenshot of the explorer page for the README (``docs/images/explorer.png``), taken from a running service.

Starts nothing: point it at a service that serves a published run (``make run``, or gunicorn on
any port), e.g.::

    .venv/bin/python scripts/screenshot_explorer.py --base-url http://127.0.0.1:5000 --user-handle 42

It loads ``/explore?user_handle=N`` in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, as the browser tests), waits until every model's column is shown, and saves
the whole page at ``--width`` CSS pixels.  With API keys on the service, put one in the
environment as ``EXPLORER_API_KEY`` (never on the command line): the script types it into the
page's key form like a person would.

Exit status: 0 written, 1 the page did not show the models (the message it showed instead is printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the running service, e.g. http://127.0.0.1:5000")
    parser.add_argument("--user-handle", type=int, default=42)
    parser.add_argument("--path", default="/explore?user_handle={user}", help="page to capture (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "explorer.png")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels (default: %(default)s)")
    parser.add_argument("--max-height", type=int, default=2400, help="cap on the captured height (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("error: chromium and chromedriver are needed (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 2
    url = args.base_url.rstrip("/") + args.path.format(user=args.user_handle)
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                     f"--window-size={args.width},900", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            driver.set_page_load_timeout(30)
            driver.get(url)
            wait = WebDriverWait(driver, 30)
            key = os.environ.get("EXPLORER_API_KEY")
            if driver.find_element(By.ID, "explore").get_attribute("data-needs-key") == "true":
                if not key:
                    print("error: the service needs an API key: set EXPLORER_API_KEY", file=sys.stderr)
                    return 2
                wait.until(ec.visibility_of_element_located((By.ID, "api-key"))).send_keys(key + "\n")
            try:
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#panel section.model, #panel section.experiment, "
                                                                     "#panel [role=alert]"))
            except TimeoutException:
                print(f"error: {url} showed no models within 30 s", file=sys.stderr)
                return 1
            alerts = driver.find_elements(By.CSS_SELECTOR, "#panel [role=alert]")
            if alerts:
                print(f"error: {url} says: {alerts[0].text}", file=sys.stderr)
                return 1
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(args.width, min(height, args.max_height))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(f"wrote {args.out} ({args.width} x {min(height, args.max_height)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
