"""Pages of a query, with a count that stops counting: past ``count_limit`` rows the page says
"more than N" instead of making the database count every row of a large table on every page."""

import math
from dataclasses import dataclass

from sqlalchemy import func, select

from .extensions import db
from .inputs import int_arg


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int  # exact, or count_limit when ``capped``
    capped: bool

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.capped or self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def page_number() -> int:
    """The page a list is asked for (``?page=``): 1 when not given; 400 when it is not a whole
    number from 1 to ``MAX_ID`` (a larger one would overflow the database's OFFSET). A page
    past the last one is a page with nothing on it, with the way back."""
    return int_arg("page", default=1)


def paginate(query, page: int, per_page: int, count_limit: int | None = None, counted=None) -> Page:
    """``query`` (a select with its ORDER BY) cut to ``page``; counts at most ``count_limit``.

    ``counted``: what to count instead of ``query``, for a query that already holds its page
    (the caller cut it from ids); then ``query`` is not cut again.
    """
    page = max(1, page)
    cut = counted is None
    counted = (query if cut else counted).order_by(None)
    if count_limit is not None:
        counted = counted.limit(count_limit + 1)
    total = db.session.scalar(select(func.count()).select_from(counted.subquery()))
    capped = count_limit is not None and total > count_limit
    if cut:
        query = query.limit(per_page).offset((page - 1) * per_page)
    items = list(db.session.scalars(query).unique())
    return Page(items, page, per_page, count_limit if capped else total, capped)
