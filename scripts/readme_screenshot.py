"""Take the README's phone-sized screenshots from a running `make run` (demo data).

.venv/bin/python scripts/readme_screenshot.py [http://127.0.0.1:5000] [kari's national id]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser.conftest import CHROMIUM, FLAGS, PHONE

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
USER = sys.argv[2] if len(sys.argv) > 2 else None
OUT = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport=PHONE, device_scale_factor=2, locale="nb-NO")
        page.goto(f"{BASE}/logg-inn")
        page.screenshot(path=str(OUT / "login-phone.png"))
        page.get_by_label("Fødselsnummer eller brukernavn").fill(USER or "")
        page.get_by_label("Passord").fill("varde-demo")
        page.get_by_role("button", name="Logg inn").click()
        page.wait_for_url(f"{BASE}/")
        page.screenshot(path=str(OUT / "overview-phone.png"))
        page.goto(f"{BASE}/journal/prover")
        page.screenshot(path=str(OUT / "results-phone.png"))
        page.locator(".item-list--nested a").first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / "result-phone.png"))
        page.goto(f"{BASE}/innstillinger")
        page.screenshot(path=str(OUT / "settings-phone.png"), full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
