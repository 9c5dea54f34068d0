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
    """``/static/<filename>?v=<hash>``; the hash changes whenever the file does.

    Outside debug mode the files cannot change under a running process, so the URL is computed once.
    """
    if current_app.debug:
        return _asset_url(filename, _mtime(filename))
    return _asset_url(filename, 0.0)


def _mtime(filename: str) -> float:
    return (Path(current_app.static_folder or "") / filename).stat().st_mtime


@cache
def _asset_url(filename: str, mtime: float) -> str:
    path = Path(current_app.static_folder or "") / filename
    return url_for("static", filename=filename, v=_digest(path, path.stat().st_mtime))


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
