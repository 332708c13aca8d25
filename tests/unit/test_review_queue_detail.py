"""The review detail's history: what the review node stores and how the page turns it into rows."""

from __future__ import annotations

from agent.nodes.review import review_payload
from agent.state import EmailState, HistoryItem, RiskAssessment
from app.hashing import payload_hash
from dashboard.plan_view import HISTORY_COLUMNS, history_rows

ITEMS = [
    HistoryItem(source="mailspine.emails", ref="email:41", summary="Asked about [PHONE_1]", via="sender"),
    HistoryItem(source="crm.notes", ref="note:7", summary="<b>**VIP**</b> customer"),  # no via
]


def _state(history: list[HistoryItem] | None) -> EmailState:
    state: EmailState = {"risk": RiskAssessment(route="review", reasons=["refund above 100"]), "plan": None}
    if history is not None:
        state["history"] = history
    return state


def test_the_payload_carries_the_history_the_agent_used() -> None:
    payload = review_payload(_state(ITEMS))
    assert payload["reasons"] == ["refund above 100"]
    assert payload["history"] == [
        {
            "source": "mailspine.emails",
            "ref": "email:41",
            "summary": "Asked about [PHONE_1]",
            "via": "sender",
        },
        {"source": "crm.notes", "ref": "note:7", "summary": "<b>**VIP**</b> customer", "via": None},
    ]
    assert review_payload(_state(None))["history"] == []  # no history node output: an empty list


def test_the_decision_binds_the_plan_not_the_history() -> None:
    with_history, without = review_payload(_state(ITEMS)), review_payload(_state([]))
    assert with_history != without
    assert payload_hash(with_history["plan"]) == payload_hash(without["plan"])


def test_history_rows_are_plain_strings_in_column_order() -> None:
    rows = history_rows(review_payload(_state(ITEMS)))
    assert rows is not None
    assert [list(row) for row in rows] == [list(HISTORY_COLUMNS)] * 2
    assert rows[1] == {
        "source": "crm.notes",
        "via": "",
        "ref": "note:7",
        "summary": "<b>**VIP**</b> customer",
    }


def test_history_not_recorded_differs_from_none_found() -> None:
    assert history_rows({"plan": {}, "reasons": []}) is None  # a review made before history was kept
    assert history_rows({"plan": {}, "history": None}) is None
    assert history_rows({"plan": {}, "history": []}) == []
