"""rpi-async's native engine with the query path taken out: its associations' own ceiling.

``rpi-async serve`` as the suite starts it, except that ``QueryService.find`` answers
queries until one matches and gives every later one that match back at once (a Pending
answer with its identifier, then Success, as for a hit): no identifier is read,
no patient looked up, no answer spliced; the association (accept, negotiation, access
policy, the UL, timers, the response's encoding and write, the access log line, the
release) runs in full. With the ``null`` server (the generator's ceiling) it brackets
what work on the query path can still gain: however cheap a query became, one worker
would not serve more associations a second than this. Not a DICOM server: every query
gets one patient's answer.

Run: ``python -m benchmarks.servers.answer_once_scp serve --db DB --port PORT ...``
(``rpi-async``'s own arguments).
"""

from __future__ import annotations

import sys
from typing import Any

from rpi_async.cli import main
from rpi_async.dicom.status import FindStatus
from rpi_async.service.query import QueryService


def answer_once() -> None:
    """Make every QueryService answer each query with its first match."""
    find = QueryService.find

    async def first_match(self: QueryService, *args: Any, **kwargs: Any) -> Any:
        kept: Any = getattr(self, "_first_match", None)
        if kept is not None:
            return kept
        answer = await find(self, *args, **kwargs)
        if answer.status is FindStatus.PENDING:
            self._first_match = answer  # type: ignore[attr-defined]
        return answer

    QueryService.find = first_match  # type: ignore[method-assign]


if __name__ == "__main__":
    answer_once()
    sys.argv[0] = "rpi-async"
    main()
