"""A complete walk through the 12 steps: the evidence each exit criterion asks for.

Modelled on the rural water case of the guideline's boxes (Cambodia). Used by
``mspflow demo`` and by the end-to-end tests, which drive the same records
through the command line and check that leaving out any one piece makes the
matching gate refuse.

Each step maps criterion ids to the records that satisfy them. A record is
``(kind, values)`` where ``kind`` is a ``mspflow record`` kind, or
``partner-update`` for changes to a partner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PARTNERS", "WALK", "Piece", "record_piece", "record_step"]

Piece = Sequence[tuple[str, Mapping[str, Any]]]

MINISTRY = "Ministry of Rural Development"
NGO = "Village Water Network"
COMPANY = "Mekong Pumps Ltd"
PARTNERS = (MINISTRY, NGO, COMPANY)


def _each(record_kind: str, **values: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(record_kind, {"partner": p, **values}) for p in PARTNERS]


def _update(**values: Any) -> list[tuple[str, dict[str, Any]]]:
    return [("partner-update", {"name": p, **values}) for p in PARTNERS]


WALK: Mapping[int, Mapping[str, Piece]] = {
    1: {
        "challenge-framed": [
            (
                "profile",
                {
                    "challenge": "Villages draw drinking water from "
                    "contaminated ponds in the dry season"
                },
            )
        ],
        "challenge-linked-to-sdg": [("sdg", {"code": "6.1"})],
        "lead-and-support": [
            (
                "profile",
                {
                    "lead_organization": MINISTRY,
                    "senior_support": "Letter of support from the Secretary of State",
                },
            )
        ],
        "case-for-partnering": [
            (
                "profile",
                {
                    "partnering_rationale": "No single actor has the reach, skills and funds",
                    "partner_kinds_needed": "government, civil society, private sector",
                },
            )
        ],
        "partner-identified": [
            (
                "partner",
                {
                    "name": MINISTRY,
                    "sector": "government",
                    "contact": "Chan Dara",
                    "email": "dara@mrd.example.org",
                    "can_decide": True,
                    "role": "funding",
                },
            ),
            (
                "partner",
                {
                    "name": NGO,
                    "sector": "civil-society",
                    "contact": "Sok Lina",
                    "email": "lina@vwn.example.org",
                    "can_decide": True,
                    "role": "implementing",
                },
            ),
            (
                "partner",
                {
                    "name": COMPANY,
                    "sector": "private",
                    "contact": "Vann Rith",
                    "email": "rith@mekongpumps.example.com",
                    "can_decide": True,
                    "role": "implementing",
                },
            ),
        ],
    },
    2: {
        "common-problem": [
            (
                "profile",
                {
                    "problem_definition": "Seasonal lack of safe water causes diarrhoeal disease",
                    "target_population": "12,000 people in 40 villages",
                    "baseline_conditions": "31% of households use an improved source (2026)",
                },
            )
        ],
        "goal-set": [("profile", {"shared_goal": "Year-round safe water in 40 villages"})],
        "objectives-set": [
            ("objective", {"text": "Build 40 solar-pumped water points"}),
            ("objective", {"text": "Train 40 village water committees"}),
        ],
        "partner-objectives": _update(objectives="Own objectives agreed at the inception workshop"),
        "scope-defined": [
            (
                "scope",
                {
                    "outputs": "40 water points, 40 trained committees",
                    "geographic_focus": "Kampong Chhnang province",
                    "start": "2027-03-01",
                    "end": "2029-02-28",
                    "resources_needed": "USD 1.2 million, engineers, trainers",
                    "out_of_scope": "household sanitation",
                },
            )
        ],
        "aligned-with-2030-agenda": [
            (
                "profile",
                {
                    "policy_coherence": "Matches the national rural water strategy",
                    "indicator_baseline": "6.1.1 at 31% in the province",
                },
            )
        ],
    },
    3: {
        "resources-mapped": _each(
            "resource", kind="human", description="Staff time and local knowledge"
        ),
        "rewards-and-risks-weighed": _each(
            "risk-reward",
            rewards="Reach villages no partner reaches alone",
            risks="Staff time drawn from other work",
        ),
        "risks-assessed": [
            (
                "risk",
                {
                    "area": area,
                    "description": f"{area} risk reviewed",
                    "mitigation": "named owner and early warning in coordination meetings",
                },
            )
            for area in (
                "reputation",
                "autonomy",
                "conflict-of-interest",
                "resource-drain",
                "implementation",
            )
        ],
        "agreement-signed": _each("signature", on="2027-02-15", document="MoU v1.0"),
        "governance-agreed": [
            (
                "governance",
                {
                    "procedures": "Steering committee of all partners, quarterly",
                    "process_baseline": "Trust survey score 3.1 of 5",
                },
            )
        ],
        "accountability-agreed": _update(accountable_to="the steering committee"),
    },
    4: {
        "objectives-covered": [
            (
                "component",
                {
                    "name": "Outreach",
                    "objective": [
                        "Build 40 solar-pumped water points",
                        "Train 40 village water committees",
                    ],
                },
            )
        ],
        "activities-assigned": [
            ("component", {"name": "Water points"}),
            (
                "activity",
                {
                    "component": "Water points",
                    "name": "Drill and equip wells",
                    "responsible": COMPANY,
                    "start": "2027-03-01",
                    "end": "2028-06-30",
                },
            ),
            (
                "activity",
                {
                    "component": "Water points",
                    "name": "Train committees",
                    "responsible": NGO,
                    "start": "2027-04-01",
                    "end": "2028-12-31",
                },
            ),
        ],
    },
    5: {
        "lead-agreed": [("leadership", {"partner": MINISTRY}), *_each("leadership-agreement")],
        "components-led": [
            ("component-lead", {"component": "Water points", "partner": COMPANY}),
            ("component-lead", {"component": "Outreach", "partner": NGO, "joint": True}),
            ("component-lead", {"component": "Outreach", "partner": MINISTRY, "joint": True}),
        ],
        "decision-making": [
            (
                "decision-making",
                {
                    "structure": "Consensus in the steering committee; lead decides on ties",
                    "contingency_process": "Lead and one partner may act within 48 hours",
                },
            )
        ],
    },
    6: {
        "partners-mobilized": [
            ("attestation", {"task": "6.1", "note": "Kick-off held with all partners"})
        ],
        "start-announced": [("profile", {"implementation_start": "2027-03-01"})],
        "resources-mobilized": [
            (
                "resource",
                {
                    "partner": MINISTRY,
                    "kind": "financial",
                    "description": "First tranche",
                    "amount": 400000,
                    "currency": "USD",
                    "committed": True,
                    "mobilized": True,
                },
            ),
            (
                "resource",
                {
                    "partner": NGO,
                    "kind": "human",
                    "description": "Twelve community trainers",
                    "committed": True,
                    "mobilized": True,
                },
            ),
            (
                "resource",
                {
                    "partner": COMPANY,
                    "kind": "technological",
                    "description": "Solar pump sets at cost",
                    "committed": True,
                    "mobilized": True,
                },
            ),
        ],
        "coordination-schedule": [
            (
                "schedule",
                {
                    "kind": "coordination-meeting",
                    "cadence": "monthly",
                    "start": "2027-03-04",
                    "at": "09:00",
                },
            )
        ],
        "monitoring-cycle": [
            ("schedule", {"kind": "monitoring", "cadence": "monthly", "start": "2027-03-25"})
        ],
    },
    7: {
        "meetings-held": [
            (
                "meeting",
                {"on": "2027-03-04", "minutes": "Work plan agreed", "present": list(PARTNERS)},
            )
        ],
        "action-plan-current": [
            (
                "action-plan",
                {"period": "monthly", "on": "2027-03-05", "summary": "Survey the first 12 sites"},
            )
        ],
        "health-checked": [
            ("health-check", {"on": "2027-05-20", "summary": "Good trust, slow procurement"})
        ],
    },
    8: {
        "milestones-set": [("milestone", {"name": "First 12 wells drilled", "due": "2027-06-30"})],
        "progress-monitored": [
            (
                "monitoring",
                {
                    "kind": "progress",
                    "on": "2027-05-25",
                    "summary": "9 of 12 planned wells drilled",
                },
            )
        ],
        "process-monitored": [
            (
                "monitoring",
                {
                    "kind": "process",
                    "on": "2027-05-25",
                    "summary": "Trust survey 3.4 (baseline 3.1)",
                },
            )
        ],
        "report-issued": [("report", {"on": "2027-06-01", "period": "2027-Q2"})],
    },
    9: {
        "panel-complete": _each("panel-member", name="Representative"),
        "impact-measured": [
            (
                "indicator",
                {"code": "6.1.1", "baseline": 31, "target": 80, "unit": "% of households"},
            ),
            ("indicator-value", {"indicator": "6.1.1", "value": 38, "on": "2027-06-05"}),
        ],
        "progress-reviewed": [
            (
                "review",
                {
                    "kind": "progress",
                    "on": "2027-06-10",
                    "findings": "Behind on procurement",
                    "on_track": False,
                },
            )
        ],
        "process-reviewed": [
            ("review", {"kind": "process", "on": "2027-06-10", "findings": "Decision-making works"})
        ],
    },
    10: {
        "revisions-recorded": [
            ("revision", {"description": "Pump procurement moved to the company"})
        ],
        "lessons-documented": [
            ("lesson", {"text": "Agree procurement rules before signing the MoU"})
        ],
    },
}


def record_piece(app: Any, ref: str, records: Piece) -> None:
    """Record each ``(kind, values)`` of ``records`` for ``ref`` through ``app``
    (a :class:`~mspflow.services.Mspflow`)."""
    for kind, values in records:
        if kind == "partner-update":
            values = dict(values)
            name = values.pop("name")
            app.evidence.update_partner(partnership=ref, partner=name, values=values)
        else:
            app.evidence.record(partnership=ref, kind=kind, values=values)


def record_step(app: Any, ref: str, step: int, skip: str | None = None) -> None:
    """Record the evidence of every criterion of ``step`` (but ``skip``) for ``ref``."""
    for criterion, records in WALK[step].items():
        if criterion != skip:
            record_piece(app, ref, records)
