"""Page/sort query parameters and the drift-watch ``X-Pagination`` header."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING


@dataclass(frozen=True)
class Page:
    page: int
    page_size: int
    sort_by: str
    descending: bool

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def direction(self) -> int:
        return DESCENDING if self.descending else ASCENDING

    def header(self, total: int) -> str:
        """flask-smorest's pagination header, which drift-watch clients read."""
        total_pages = max(1, math.ceil(total / self.page_size)) if total else 0
        meta: dict[str, int] = {"total": total, "total_pages": total_pages}
        if total_pages:
            meta["first_page"] = 1
            meta["last_page"] = total_pages
            meta["page"] = self.page
            if self.page > 1:
                meta["previous_page"] = min(self.page - 1, total_pages)
            if self.page < total_pages:
                meta["next_page"] = self.page + 1
        return json.dumps(meta, separators=(",", ":"))
