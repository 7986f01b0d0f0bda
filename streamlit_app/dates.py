"""Times as the viewer reads them: the platform sends ISO 8601 in UTC; pages show them in the browser's time zone.

Streamlit renders on the server, so the zone comes from the browser's report of it (`st.context.timezone`, sent
with the websocket handshake — no JavaScript of ours); its locale picks month-day order for US English. A session
without one (tests, scripts) sees UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def viewer_zone() -> tzinfo:
    try:
        name = st.context.timezone
    except Exception:  # outside a script run there is no browser to ask
        name = None
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _viewer_locale() -> str:
    try:
        return str(st.context.locale or "")
    except Exception:
        return ""


def parse(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local_time(value: str | datetime | None, *, zone: tzinfo | None = None, locale: str | None = None) -> str:
    """`"2026-12-06T02:08:37+00:00"` → `"6 Dec 2026, 03:08 CET"` (or `"Dec 6, 2026, 3:08 AM EST"` for en-US);
    `"—"` when there is no time."""
    moment = parse(value)
    if moment is None:
        return "—" if not value else str(value)
    local = moment.astimezone(zone or viewer_zone())
    label = local.tzname() or ""
    month = MONTHS[local.month - 1]
    if (locale if locale is not None else _viewer_locale()).lower().startswith("en-us"):
        hour = local.hour % 12 or 12
        half = "AM" if local.hour < 12 else "PM"
        return f"{month} {local.day}, {local.year}, {hour}:{local.minute:02d} {half} {label}".rstrip()
    return f"{local.day} {month} {local.year}, {local.hour:02d}:{local.minute:02d} {label}".rstrip()


def local_date(value: str | datetime | None, *, zone: tzinfo | None = None, locale: str | None = None) -> str:
    """The day alone, in the viewer's zone: `"6 Dec 2026"` (`"Dec 6, 2026"` for en-US)."""
    moment = parse(value)
    if moment is None:
        return "—"
    local = moment.astimezone(zone or viewer_zone())
    month = MONTHS[local.month - 1]
    if (locale if locale is not None else _viewer_locale()).lower().startswith("en-us"):
        return f"{month} {local.day}, {local.year}"
    return f"{local.day} {month} {local.year}"
