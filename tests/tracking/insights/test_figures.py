"""The dashboard's figures on a history whose times are known, on SQLite and on PostgreSQL."""

import pytest
from django.utils import timezone

from tests.tracking.insights.history import KNOWN, cohort_start, known_history
from tracking.insights import selectors
from tracking.insights.selectors import dashboard_compute, dashboard_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    return known_history()


def test_every_figure_of_the_last_30_days(history):
    scope = dashboard_scope(model_key="order-fulfilment", version=None, window_days=30)

    dashboard = dashboard_compute(scope)

    assert dashboard.instances == 5
    assert dashboard.statuses == KNOWN["statuses"]
    states = {state.key: state for state in dashboard.states}
    assert {key: state.now for key, state in states.items() if state.now} == KNOWN["now"]
    for key, (count, median, p90) in KNOWN["dwell"].items():
        assert states[key].dwell.count == count, key
        assert states[key].dwell.median == pytest.approx(median), key
        assert states[key].dwell.p90 == pytest.approx(p90), key
    assert states["delivered"].dwell.count == 0
    for key, (visits, past) in KNOWN["past"].items():
        assert (states[key].visits, states[key].past_expected) == (visits, past), key
    assert states["received"].expected_within == 7200
    assert states["packed"].visits == 0  # no expected_within
    assert dashboard.follows == KNOWN["follows"]
    assert dashboard.starts == KNOWN["starts"]
    assert dashboard.ends == KNOWN["ends"]
    spans = [(s.from_label, s.to_label, s.spread.count, s.spread.median, s.spread.p90) for s in dashboard.milestones]
    assert spans == [pytest.approx(span) for span in KNOWN["milestones"]]
    cohort_day = cohort_start().date()
    by_day = {day.day: (day.started, day.succeeded, day.failed) for day in dashboard.days}
    assert by_day[cohort_day] == (5, 2, 1)
    assert sum(day.started for day in dashboard.days) == 5
    assert dashboard.days[0].day == (scope.since).date()
    assert dashboard.days[-1].day == timezone.now().date()


def test_all_time_and_a_version_filter(history):
    all_time = dashboard_compute(dashboard_scope(model_key="order-fulfilment", version=None, window_days=None))
    version_1 = dashboard_compute(dashboard_scope(model_key="order-fulfilment", version=1, window_days=None))

    assert all_time.instances == version_1.instances == 6
    assert all_time.follows[("received", "paid")] == 4
    received = next(state for state in all_time.states if state.key == "received")
    assert received.dwell.count == 5  # the old order's 5 hours added
    assert dashboard_scope(model_key="order-fulfilment", version=2, window_days=None) is None
    assert dashboard_scope(model_key="no-such-model", version=None, window_days=None) is None


def test_a_window_with_nothing_in_it(history):
    dashboard = dashboard_compute(dashboard_scope(model_key="order-fulfilment", version=None, window_days=1))

    assert dashboard.instances == 0
    assert dashboard.follows == {}
    assert all(state.now == 0 and state.dwell.count == 0 for state in dashboard.states)
    assert len(dashboard.days) == 2  # yesterday and today, both empty
    assert dashboard.share("succeeded") is None


@pytest.mark.postgres
def test_postgres_sql_and_the_python_fallback_agree(history, postgres_only):
    for window in (None, 30, 1):
        scope = dashboard_scope(model_key="order-fulfilment", version=None, window_days=window)
        facts, _ = selectors._facts(scope)

        assert selectors._postgres_tallies(scope, facts) == selectors._python_tallies(scope, facts)
