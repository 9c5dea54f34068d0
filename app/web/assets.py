"""Versioned static URLs: each file's URL carries a hash of its content, so it can be cached a year."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import current_app, url_for


@cache
def _digest(path: Path, mtime: float) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def asset_url(filename: str) -> str:
    """``/static/<filename>?v=<hash>``; the hash changes whenever the file does."""
    path = Path(current_app.static_folder or "") / filename
    version = _digest(path, path.stat().st_mtime)
    return url_for("static", filename=filename, v=version)


def asset_version() -> str:
    """One version for the whole shell: the service worker's cache name is built from it."""
    static = Path(current_app.static_folder or "")
    h = hashlib.sha256()
    for name in sorted(SHELL_ASSETS):
        path = static / name
        h.update(_digest(path, path.stat().st_mtime).encode())
    return h.hexdigest()[:10]


# The files the service worker precaches: everything the offline page and the shell need.
SHELL_ASSETS = (
    "css/varde.css",
    "js/varde.js",
    "vendor/htmx/htmx.min.js",
    "icons/varde.svg",
    "icons/icon-192.png",
)
