"""PDF from the same HTML, through WeasyPrint, with every fetch refused.

Reports carry no external asset; refusing fetches makes sure that nothing in
a report (however it got there) can make the renderer reach the network or
read a local file.
"""

from __future__ import annotations

from typing import Any

from vigie.errors import VigieError


class ReportRenderError(VigieError):
    """The PDF renderer failed."""


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"reports load no external resource ({url[:80]!r} refused)")


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    document = HTML(string=html, base_url=None, url_fetcher=_refuse_fetch)
    pdf = document.write_pdf()
    if not pdf:
        raise ReportRenderError("WeasyPrint produced no PDF")
    return bytes(pdf)
