"""Inline SVG icons: decorative (hidden from screen readers); the text next to them carries the meaning.

A Python function rather than a Jinja macro: the tab bar draws five on every page.
"""

from __future__ import annotations

from functools import cache

from markupsafe import Markup

PATHS = {
    "overview": '<path d="M3 11l9-7 9 7"/><path d="M5 10v10h14V10"/><path d="M10 20v-6h4v6"/>',
    "messages": '<path d="M4 5h16v11H8l-4 4z"/>',
    "appointments": '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>',
    "record": '<path d="M6 3h9l4 4v14H6z"/><path d="M14 3v5h5M9 13h7M9 17h7"/>',
    "menu": '<path d="M4 6h16M4 12h16M4 18h16"/>',
    "settings": '<circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M4.9 4.9l2.1 2.1M17 17l2.1 2.1'
    'M2 12h3M19 12h3M4.9 19.1L7 17M17 7l2.1-2.1"/>',
    "logout": '<path d="M9 21H5V3h4M16 17l5-5-5-5M21 12H9"/>',
    "chevron": '<path d="M9 6l6 6-6 6"/>',
    "bell": '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z"/><path d="M10 20a2 2 0 0 0 4 0"/>',
    "people": '<circle cx="9" cy="8" r="3"/><path d="M3 20v-1a6 6 0 0 1 12 0v1"/><circle cx="17" cy="9" r="2.5"/>'
    '<path d="M16 14.2a5 5 0 0 1 5 4.8v1"/>',
    "info": '<circle cx="12" cy="12" r="9"/><path d="M12 11v5M12 8h.01"/>',
}


@cache
def icon(name: str) -> Markup:
    # Our own constant SVG, never user input.
    return Markup(  # noqa: S704
        '<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="24" height="24" '
        'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
        f"{PATHS[name]}</svg>"
    )
