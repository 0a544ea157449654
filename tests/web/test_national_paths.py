"""The paths the console takes at national scale give what the small-scale paths give.

Above ``MAX_IN_LIST`` ids, acceptances and timeline events are read whole and filtered
in Python (PostgreSQL's 65,535 bound parameters); the overview's timeline reads ids
and severities only. Lowering the threshold to 1 must change nothing a reader sees.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from tests.report_data import DATA_AGENCY
from tests.web.conftest import World
from vigie.acceptance import accept_finding
from vigie.db import queries
from vigie.db.queries import FindingFilter, query_findings
from vigie.db.session import session_scope
from vigie.db.tables import FindingRecord
from vigie.reports._history import chart_moments, load_timeline
from vigie.reports.overview import build_overview_report


def snapshot(world: World) -> tuple[object, ...]:
    with session_scope(world.settings) as session:
        views = query_findings(session, FindingFilter(include_resolved=True))
        records = list(session.exec(select(FindingRecord)))
        timeline = load_timeline(session, records)
        moments = chart_moments(timeline, date.today())
        report = build_overview_report(session, world.settings, language="en")
    return (
        [(v.id, v.status, v.accepted_until) for v in views],
        timeline.severity_counts(moments),
        {k: len(v) for k, v in timeline.acceptances.items()},
        report.distribution,
        report.chart.series,
        report.accepted,
    )


def test_long_id_lists_give_the_same_answers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an accepted risk among the seeded findings
    with session_scope(world.settings) as session:
        finding = session.exec(
            select(FindingRecord).where(FindingRecord.status != "resolved")
        ).first()
        assert finding is not None
        accept_finding(
            session,
            str(finding.id),
            reason="plan",
            until=date.today() + timedelta(days=10),
            accepted_by=DATA_AGENCY,
        )
    # When the same questions are asked with short and with "long" id lists
    short = snapshot(world)
    monkeypatch.setattr(queries, "MAX_IN_LIST", 1)
    long = snapshot(world)
    # Then the answers are the same, and the acceptance is in them
    assert short == long
    assert short[5] == 1
