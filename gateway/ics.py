"""Calendar invites (``text/calendar``, ``.ics``): the few VEVENT fields the agent needs.

A minimal RFC 5545 reader, not a calendar library: unfold lines, track BEGIN/END nesting, read
METHOD, SUMMARY, LOCATION, DTSTART, DTEND and ORGANIZER of each VEVENT. Never raises; anything it
cannot read stays None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

MAX_EVENTS = 20
_MAX_VALUE = 500
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?(Z)?)?$")
_ESCAPES = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\"}


@dataclass(frozen=True)
class CalendarInvite:
    method: str | None  # REQUEST, CANCEL, REPLY, PUBLISH ... of the calendar object
    summary: str
    start: datetime | None  # aware when the file says UTC or names a known TZID, else naive
    end: datetime | None
    organizer: str | None  # address (mailto: stripped), or the CN when there is no address
    location: str = ""


def _split_property(line: str) -> tuple[str, dict[str, str], str]:
    """``NAME;PARAM=x;PARAM="a:b":value`` -> name, params, value (colons inside quotes kept)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            head, value = line[:i], line[i + 1 :]
            break
    else:
        return line.upper(), {}, ""
    name, *raw_params = head.split(";")
    params = {}
    for raw in raw_params:
        key, _, val = raw.partition("=")
        params[key.strip().upper()] = val.strip().strip('"')
    return name.strip().upper(), params, value


def _text(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value).strip()[:_MAX_VALUE]


def _when(value: str, params: dict[str, str]) -> datetime | None:
    match = _DATE_TIME.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if utc:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.replace(tzinfo=ZoneInfo(params["TZID"])) if "TZID" in params else moment
    except Exception:  # unknown or Windows-style zone names: keep the wall-clock time
        return moment


def _organizer(value: str, params: dict[str, str]) -> str | None:
    address = re.sub(r"(?i)^mailto:", "", value.strip())
    if "@" in address:
        return address.lower()[:_MAX_VALUE]
    return params.get("CN", "").strip()[:_MAX_VALUE] or None


def parse_ics(text: str) -> list[CalendarInvite]:
    lines = re.sub(r"\r?\n[ \t]", "", text).splitlines()
    method: str | None = None
    stack: list[str] = []
    fields: dict[str, tuple[dict[str, str], str]] = {}
    found: list[dict[str, tuple[dict[str, str], str]]] = []
    for line in lines:
        name, params, value = _split_property(line)
        if name == "BEGIN":
            stack.append(value.strip().upper())
            if stack[-1] == "VEVENT":
                fields = {}
        elif name == "END":
            if stack and stack[-1] == "VEVENT" and len(found) < MAX_EVENTS:
                found.append(fields)
            stack = stack[:-1]
        elif name == "METHOD" and stack[-1:] == ["VCALENDAR"]:
            method = value.strip().upper()[:40] or None
        elif stack[-1:] == ["VEVENT"] and name not in fields:
            fields[name] = (params, value)  # only the event's own lines: VALARM has a SUMMARY too
    invites = []
    for event in found:
        start, end, organizer = event.get("DTSTART"), event.get("DTEND"), event.get("ORGANIZER")
        invites.append(
            CalendarInvite(
                method=method,
                summary=_text(event.get("SUMMARY", ({}, ""))[1]),
                start=_when(start[1], start[0]) if start else None,
                end=_when(end[1], end[0]) if end else None,
                organizer=_organizer(organizer[1], organizer[0]) if organizer else None,
                location=_text(event.get("LOCATION", ({}, ""))[1]),
            )
        )
    return invites
