"""Page-number listings as wrangler reads them (spec 1.3).

A page past the end is an empty list, never an error: wrangler's SDK-backed
listings keep asking for page N+1 until they get one.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import JsonResponse

from . import envelope
from .inputs import Integer, Query


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


class Paging(Query):
    """``page`` and ``per_page`` of a page-number listing."""

    page_number = Integer(key="page", minimum=1, maximum=10**6, default=1)
    per_page = Integer(minimum=1, maximum=1000)

    def page(self, *, default_size: int = 20) -> PageRequest:
        return PageRequest(number=self.page_number, size=self.per_page or default_size)


def page_of(
    rows: QuerySet | Sequence,
    page: PageRequest,
    serialize: Callable[[Any], dict],
) -> tuple[list[dict], dict[str, int]]:
    """One page of ``rows``, serialized, and its page-number ``result_info``."""
    total = rows.count() if isinstance(rows, QuerySet) else len(rows)
    items = [serialize(row) for row in rows[page.offset : page.offset + page.size]]
    info = envelope.page_info(
        page=page.number, per_page=page.size, count=len(items), total_count=total
    )
    return items, info


def paged_response(
    rows: QuerySet | Sequence,
    page: PageRequest,
    serialize: Callable[[Any], dict],
) -> JsonResponse:
    """One page of ``rows`` in the envelope, with page-number ``result_info``."""
    items, info = page_of(rows, page, serialize)
    return envelope.success(items, result_info=info)
