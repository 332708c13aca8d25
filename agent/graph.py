"""The graph: wiring only.

    START → extract → history → plan → risk ─┬─▶ review ─┬─▶ act ─▶ finalize → END
                                              │            └─────────▶ finalize   (rejected)
                                              ├─▶ act (auto)
                                              └─▶ finalize (ignored)

``review`` runs only when the risk policy routes the plan to review (one checkpointed step fewer
for every other email) and interrupts for a human decision; the thread (one per email, id
``email-<id>``) waits in the Postgres checkpointer until it is resumed with
``Command(resume=ReviewDecision)``, in this process or any other.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.context import Context
from agent.nodes.act import act
from agent.nodes.extract import extract
from agent.nodes.finalize import finalize
from agent.nodes.history import history
from agent.nodes.plan import plan
from agent.nodes.review import review
from agent.nodes.risk import risk
from agent.state import EmailState


def after_risk(state: EmailState) -> Literal["review", "act", "finalize"]:
    route = state["risk"].route
    if route == "review":
        return "review"
    return "finalize" if route == "ignore" else "act"


def after_review(state: EmailState) -> Literal["act", "finalize"]:
    decision = state.get("decision")
    if state["risk"].route == "ignore" or (decision is not None and decision.decision == "reject"):
        return "finalize"
    return "act"


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(EmailState, context_schema=Context)
    graph.add_node("extract", extract)
    graph.add_node("history", history)
    graph.add_node("plan", plan)
    graph.add_node("risk", risk)
    graph.add_node("review", review)
    graph.add_node("act", act)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "extract")
    graph.add_edge("extract", "history")
    graph.add_edge("history", "plan")
    graph.add_edge("plan", "risk")
    graph.add_conditional_edges("risk", after_risk)
    graph.add_conditional_edges("review", after_review)
    graph.add_edge("act", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)
