"""The manifest, the service worker and the offline page, as the server delivers them."""

from __future__ import annotations

import json
import re


def test_the_manifest_has_what_installing_needs(client):
    response = client.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["name"].startswith("Varde")
    assert manifest["short_name"] == "Varde"
    assert manifest["lang"] == "nb"
    assert manifest["display"] == "standalone"
    assert manifest["scope"] == "/"
    assert manifest["start_url"].startswith("/")
    assert manifest["theme_color"] and manifest["background_color"] and manifest["description"]
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as png:
            assert png.status_code == 200
            assert png.mimetype == "image/png"
            width, height = int.from_bytes(png.data[16:20], "big"), int.from_bytes(png.data[20:24], "big")
            assert f"{width}x{height}" == icon["sizes"]


def test_the_service_worker_is_served_at_root_scope_with_a_versioned_cache(client):
    response = client.get("/sw.js")
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    body = response.get_data(as_text=True)
    assert re.search(r'const CACHE = "varde-shell-[0-9a-f]{10}"', body)
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", body).group(1))
    assert "/frakoblet" in precache
    for url in precache:
        with client.get(url) as asset:
            assert asset.status_code == 200, url
    for handler in ("install", "activate", "fetch", "push", "notificationclick"):
        assert f'addEventListener("{handler}"' in body


def test_the_offline_page_holds_no_personal_data(client, kari, login_as):
    login_as(kari)
    html = client.get("/frakoblet").get_data(as_text=True)
    assert "Ingen nettforbindelse" in html
    assert "Kari" not in html and kari.person.national_id not in html
    assert "csrf" not in html.lower()


def test_pages_link_the_manifest_and_register_the_worker(client):
    html = client.get("/logg-inn").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    with client.get("/static/js/varde.js") as js:
        assert 'register("/sw.js"' in js.get_data(as_text=True)
