"""Schemathesis hooks for scripts/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

JSON Schema cannot say "in the future": a request's `deadline` is an RFC 3339 date-time at
least MIN_DEADLINE_SECS ahead and at most the batch job timeout ahead (openapi.json says so in
words; the API answers any other a 400 naming `deadline`). A drawn deadline that is a
well-formed date-time (a real day and time, not only the shape) is moved into that window, as a real client's would be, so the
positive-data check holds the rest of the request to the document. A deadline that is not a
date-time (a negative case) is left as drawn, and so is every other field.

The same for `GET /api/batch/usage`: `from` after `to`, or more than 31 days before it, is a
400 that no schema can describe; well-formed dates are put in order and the span cut to 31
days, and `to` absent is taken as `from`.
"""

import datetime
import re

import schemathesis

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_date_time(value):
    """A well-formed RFC 3339 date-time: the shape, and a real day and time of day (a
    negative case may draw `2000-13-45T25:61:00Z`, which has the shape and is not one; moving
    it would turn a request schemathesis holds to be schema-violating into a valid one).
    A leap second (`:60`) is allowed, as RFC 3339 allows it."""
    if not (isinstance(value, str) and RFC3339.match(value)):
        return False
    text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
    try:
        datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@schemathesis.hook
def map_body(ctx, body):
    deadline = body.get("deadline") if isinstance(body, dict) else None
    if _is_date_time(deadline):
        ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
        body["deadline"] = ahead.isoformat()
    return body


DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value):
    if isinstance(value, str) and DAY.match(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return None


@schemathesis.hook
def map_query(ctx, query):
    if not isinstance(query, dict) or "from" not in query:
        return query
    start = _day(query.get("from"))
    end = _day(query.get("to")) if "to" in query else start
    if start is None or end is None:
        return query
    start, end = min(start, end), max(start, end)
    # Within the 31 days the API allows; `end - 30 days` itself would overflow for an `end`
    # in January of year 1, so only a wider range is cut.
    window = datetime.timedelta(days=30)
    if end - start > window:
        start = end - window
    query["from"], query["to"] = start.isoformat(), end.isoformat()
    return query
