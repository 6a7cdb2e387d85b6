"""Schemathesis hooks for scripts/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

JSON Schema cannot say "in the future": a request's `deadline` is an RFC 3339 date-time at
least MIN_DEADLINE_SECS ahead and at most the batch job timeout ahead (openapi.json says so in
words; the API answers any other a 400 naming `deadline`). A drawn deadline that is a
well-formed date-time is moved into that window, as a real client's would be, so the
positive-data check holds the rest of the request to the document. A deadline that is not a
date-time (a negative case) is left as drawn, and so is every other field.
"""

import datetime
import re

import schemathesis

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@schemathesis.hook
def map_body(ctx, body):
    deadline = body.get("deadline") if isinstance(body, dict) else None
    if isinstance(deadline, str) and RFC3339.match(deadline):
        ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
        body["deadline"] = ahead.isoformat()
    return body
