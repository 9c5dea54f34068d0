"""How results read and look: plain words for flags, the reference-range bar and the trend chart.

Charts are SVG drawn on the server with presentation attributes only (the strict CSP forbids
inline styles), and always come with the same numbers as text or a table for screen readers.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.numbers import format_decimal
from flask import g
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

BAR_W, BAR_H = 300, 40
CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 320, 180, 44, 12, 12, 28


# Outside a request and an app (a script) there is no user: the app's default language.
_FALLBACK_LOCALE = Locale.parse("nb")
# Blood pressure: one Observation (85354-9, or the older 55284-4) with the two pressures as components.
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
# "10^9/L", and UCUM's "10*9/L" when a source sends the code as the unit.
_POWER = re.compile(r"(?:\^|(?<=10)\*)(-?\d+)")


def _rounded(value: float) -> Decimal:
    """The value as shown: four significant digits for a fraction (float noise goes, 13.30 reads 13.3),
    whole numbers from 10 000 up in full (never '1.234e+04')."""
    if abs(value) >= 1e4:
        return Decimal(f"{value:.0f}")
    return Decimal(f"{value:.4g}")


def number(value: float | None) -> str:
    """A number in the user's language: '13,3' in Norwegian, '13.3' in English (display only:
    the FHIR export keeps the source's numbers)."""
    if value is None:
        return ""
    locale = get_locale() or _FALLBACK_LOCALE
    return format_decimal(_rounded(value), locale=locale, decimal_quantization=False)


def unit_text(unit: str | None) -> str:
    """A unit as read: '10^9/L' is written 10⁹/L."""
    if not unit:
        return ""
    return _POWER.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), unit)


def _component(data: dict[str, Any], code: str) -> dict[str, Any] | None:
    for c in data.get("components") or []:
        if c.get("code") == code:
            return c
    return None


def pressure_text(data: dict[str, Any]) -> str:
    """A blood pressure as written: '144/88 mmHg' (systolic/diastolic). Empty for anything else."""
    systolic, diastolic = _component(data, SYSTOLIC), _component(data, DIASTOLIC)
    if not systolic or not diastolic:
        return ""
    if systolic.get("value") is None or diastolic.get("value") is None:
        return ""
    if systolic.get("comparator") or diastolic.get("comparator"):
        return ""
    units = {u for u in (systolic.get("unit"), diastolic.get("unit")) if u}
    if len(units) > 1:
        return ""
    text = f"{number(systolic['value'])}/{number(diastolic['value'])}"
    return f"{text} {unit_text(units.pop())}" if units else text


def value_text(data: dict[str, Any]) -> str:
    """A result's value as written: '5,4 mmol/L', '< 0,3 mg/L', 'Negativ', '144/88 mmHg'."""
    if data.get("value") is not None:
        parts = [data.get("comparator") or "", number(data["value"]), unit_text(data.get("unit"))]
        return " ".join(p for p in parts if p)
    if data.get("text"):
        return str(data["text"])
    if data.get("boolean") is not None:
        return _("Ja") if data["boolean"] else _("Nei")
    pressure = pressure_text(data)
    if pressure:
        return pressure
    if data.get("absent"):
        return _("Ingen verdi (%(reason)s)", reason=data["absent"])
    return ""


def range_text(rng: dict[str, Any] | None, unit: str | None = None) -> str:
    if not rng:
        return ""
    low, high = rng.get("low"), rng.get("high")
    u = f" {unit_text(unit)}" if unit else ""
    if low is not None and high is not None:
        return f"{number(low)}–{number(high)}{u}"
    if low is not None:
        return f"> {number(low)}{u}"
    if high is not None:
        return f"< {number(high)}{u}"
    return rng.get("text") or ""


def _own_flag(data: dict[str, Any]) -> str | None:
    code = (data.get("interpretation") or "").upper()
    if code in ("HH", "LL", "AA", "H>", "L<"):
        return "critical"
    if code in ("H", "HU", "HX"):
        return "high"
    if code in ("L", "LU", "LX"):
        return "low"
    if code in ("A", "POS", "DET", "R", "IND"):
        return "abnormal"
    if code in ("N", "NEG", "ND", "S"):
        return "normal"
    value, rng = data.get("value"), data.get("range") or {}
    if value is None or (rng.get("low") is None and rng.get("high") is None):
        return None
    if rng.get("high") is not None and value > rng["high"]:
        return "high"
    if rng.get("low") is not None and value < rng["low"]:
        return "low"
    return "normal"


def flag(data: dict[str, Any]) -> str | None:
    """'high', 'low', 'critical', 'abnormal', 'normal' or None, from the lab's flag or the range.

    A result with parts (a blood pressure) and no flag of its own takes its parts': the worst one,
    'abnormal' when one part is high and another low."""
    own = _own_flag(data)
    if own is not None or not data.get("components"):
        return own
    flags = {_own_flag(c) for c in data["components"]} - {None}
    if "critical" in flags:
        return "critical"
    if {"high", "low"} <= flags or "abnormal" in flags:
        return "abnormal"
    for word in ("high", "low", "normal"):
        if word in flags:
            return word
    return None


FLAG_WORDS = {
    "critical": _l("Svært avvikende verdi. Legen din vil som regel ta kontakt."),
    "high": _l("Høyere enn referanseområdet"),
    "low": _l("Lavere enn referanseområdet"),
    "abnormal": _l("Avvikende resultat"),
    "normal": _l("Innenfor referanseområdet"),
}


def flag_words(data: dict[str, Any]) -> str | None:
    """The interpretation in plain words (only the one needed is translated: lists call this a lot)."""
    words = FLAG_WORDS.get(flag(data) or "")
    return str(words) if words is not None else None


def item_date(when: date | datetime, fmt: str = "medium") -> str:
    """A date in the user's language, formatted once per request and date (a report's results
    share theirs, and lists show dozens)."""
    cache = g.setdefault("_varde_dates", {})
    key = (when, fmt)
    text = cache.get(key)
    if text is None:
        text = cache[key] = format_date(when, fmt)
    return text


def range_bar(data: dict[str, Any]) -> Markup | None:
    """The value on a bar with the reference range marked. None when there is nothing to draw."""
    value, rng = data.get("value"), data.get("range") or {}
    low, high = rng.get("low"), rng.get("high")
    if value is None or (low is None and high is None):
        return None
    lo = low if low is not None else min(value, high) * 0.5 if high else 0.0
    hi = high if high is not None else max(value, low) * 1.5 if low else 1.0
    span = (hi - lo) or abs(hi) or 1.0
    start, end = min(lo - span * 0.5, value), max(hi + span * 0.5, value)
    total = (end - start) or 1.0

    def x(v: float) -> float:
        return 8 + (v - start) / total * (BAR_W - 16)

    label = _(
        "Verdien %(value)s på en skala der referanseområdet er %(range)s",
        value=value_text(data),
        range=range_text(rng, data.get("unit")),
    )
    outside = flag(data) in ("high", "low", "critical")
    marker = "#b3261e" if outside else "#0b4f6c"
    parts = [
        f'<svg class="range-bar" viewBox="0 0 {BAR_W} {BAR_H}" width="100%" role="img" aria-label="{escape(label)}">',
        f'<rect x="8" y="16" width="{BAR_W - 16}" height="8" rx="4" fill="#dfe6ea"/>',
        f'<rect x="{x(lo):.1f}" y="16" width="{max(x(hi) - x(lo), 2):.1f}" height="8" fill="#7fb89a"/>',
        f'<circle cx="{x(value):.1f}" cy="20" r="8" fill="{marker}" stroke="#fff" stroke-width="2"/>',
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - numbers we computed and an escaped label


def trend_chart(points: list[tuple[datetime, float]], rng: dict[str, Any] | None) -> Markup:
    """A line chart of the values over time, with the reference range as a band."""
    values = [v for _t, v in points]
    rng = rng or {}
    lows = [v for v in (rng.get("low"), rng.get("high")) if v is not None]
    vmin, vmax = min(values + lows), max(values + lows)
    pad = (vmax - vmin) * 0.1 or abs(vmax) * 0.1 or 1.0
    vmin, vmax = vmin - pad, vmax + pad
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    tspan = (t1 - t0) or 1.0
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(t: datetime) -> float:
        return PAD_L + (t.timestamp() - t0) / tspan * plot_w

    def y(v: float) -> float:
        return PAD_T + (vmax - v) / (vmax - vmin) * plot_h

    label = _(
        "Utvikling over tid: %(count)d målinger fra %(first)s til %(last)s. Tallene står i tabellen under.",
        count=len(points),
        first=format_date(points[0][0], "short"),
        last=format_date(points[-1][0], "short"),
    )
    out = [
        f'<svg class="trend" viewBox="0 0 {CHART_W} {CHART_H}" width="100%" role="img" aria-label="{escape(label)}">',
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#c9d3da"/>',
    ]
    if rng.get("low") is not None or rng.get("high") is not None:
        top = y(rng["high"]) if rng.get("high") is not None else PAD_T
        bottom = y(rng["low"]) if rng.get("low") is not None else PAD_T + plot_h
        top, bottom = max(top, PAD_T), min(bottom, PAD_T + plot_h)
        out.append(
            f'<rect x="{PAD_L}" y="{top:.1f}" width="{plot_w}" height="{max(bottom - top, 1):.1f}" fill="#e3f1e8"/>'
        )
    for v in (vmin + pad, vmax - pad):
        out.append(
            f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="13" fill="#4a5a66">'
            f"{escape(number(v))}</text>"
        )
    for t, anchor in ((points[0][0], "start"), (points[-1][0], "end")):
        out.append(
            f'<text x="{x(t):.1f}" y="{CHART_H - 8}" text-anchor="{anchor}" font-size="13" fill="#4a5a66">'
            f"{escape(format_date(t, 'MMM yyyy'))}</text>"
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(points))
    out.append(f'<path d="{path}" fill="none" stroke="#0b4f6c" stroke-width="2"/>')
    for t, v in points:
        out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.5" fill="#0b4f6c"/>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - numbers we computed, escaped text
