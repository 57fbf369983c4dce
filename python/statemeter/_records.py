"""SQL over a ledger's records in either layout (docs/ledger-format.md), for `ledger.sql`.

Version 1 keeps an event's keys under ``event``; version 2 splits them between ``e`` and a
context ``c``, which is either inline or the seq of the record that defines it. A reader must
not rely on which keys are where, so `event_key` looks in all of them.
"""

#: The rows to select from: ``r`` is the record, ``d`` the record defining its context (when
#: ``r``'s ``c`` is a reference).
FROM_RECORDS = "events r LEFT JOIN events d ON d.seq = json_extract(r.record, '$.c')"


def event_key(path: str) -> str:
    """An SQL expression for the event key at `path` (e.g. ``id``, ``attrs.joined``,
    ``request.runtimeSessionId``, ``attrs."gen_ai.response.id"``) of the record ``r``."""
    return (
        f"coalesce(json_extract(r.record, '$.e.{path}'), "
        f"json_extract(r.record, '$.event.{path}'), "
        f"json_extract(r.record, '$.c.event.{path}'), "
        f"json_extract(d.record, '$.c.event.{path}'))"
    )


def classification_key(path: str) -> str:
    """An SQL expression for the classification key at `path` (e.g. ``tag``,
    ``session_stateful``) of the record ``r``."""
    return (
        f"coalesce(json_extract(r.record, '$.classification.{path}'), "
        f"json_extract(r.record, '$.c.classification.{path}'), "
        f"json_extract(d.record, '$.c.classification.{path}'))"
    )
