"""Bulk import keeps what it is given, or says why not (exit 7, file and line), writing nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

import mspflow.services.evidence as evidence
from mspflow.errors import ConcurrentChange, DefinitionError
from mspflow.services import Mspflow
from mspflow.services.evidence import RECORDS
from mspflow.store import models as m
from mspflow.store import read_session
from tests.conftest import SECRETARIAT
from tests.evidence.conftest import Run, counts, one_line

#: One record of every kind, in an order where each refers only to what came before.
EVERY_KIND: list[dict[str, Any]] = [
    {"record": "profile", "challenge": "Unsafe ponds in the dry season"},
    {"record": "scope", "start": "2027-03-01", "end": "2030-02-28"},
    {"record": "governance", "procedures": "Monthly partners' meeting decides"},
    {"record": "decision-making", "structure": "Consensus; the lead decides in emergencies"},
    {"record": "sdg", "code": "6.1"},
    {"record": "objective", "text": "Safe water within 30 minutes"},
    {"record": "partner", "name": "Village Water Network", "sector": "civil-society"},
    {
        "record": "resource",
        "partner": "Village Water Network",
        "kind": "financial",
        "description": "Grant",
        "amount": "1250.50",
        "committed": "true",
    },
    {"record": "risk", "area": "reputation", "description": "A failed pump"},
    {
        "record": "risk-reward",
        "partner": "Village Water Network",
        "rewards": "Reach",
        "risks": "Staff time",
    },
    {"record": "signature", "partner": "Village Water Network", "on": "2027-02-01"},
    {"record": "component", "name": "Water points", "objective": ["Safe water within 30 minutes"]},
    {"record": "component-lead", "component": "Water points", "partner": "Village Water Network"},
    {
        "record": "activity",
        "component": "Water points",
        "name": "Drill",
        "responsible": "Village Water Network",
    },
    {"record": "leadership", "partner": "Village Water Network"},
    {"record": "leadership-agreement", "partner": "Village Water Network"},
    {
        "record": "schedule",
        "kind": "coordination-meeting",
        "cadence": "monthly",
        "start": "2027-03-04",
        "timezone": "Europe/Berlin",
    },
    {
        "record": "meeting",
        "on": "2027-03-04",
        "minutes": "Held",
        "present": ["Village Water Network"],
    },
    {"record": "action-plan", "period": "monthly", "summary": "Survey twelve sites"},
    {"record": "health-check", "summary": "Trust is good"},
    {"record": "monitoring", "kind": "process", "summary": "On plan"},
    {"record": "report", "period": "2027 Q1"},
    {"record": "milestone", "name": "Wells", "due": "2027-06-30", "component": "Water points"},
    {"record": "indicator", "code": "6.1.1", "baseline": "31", "target": "80"},
    {"record": "indicator-value", "indicator": "6.1.1", "value": "38", "on": "2027-05-01"},
    {"record": "panel-member", "partner": "Village Water Network", "name": "Sok Lina"},
    {"record": "review", "kind": "midterm", "findings": "On track", "on_track": "true"},
    {"record": "revision", "description": "Two sites moved"},
    {"record": "lesson", "text": "Survey in the dry season"},
    {"record": "attestation", "task": "1.1", "note": "Seen"},
]


def as_yaml(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        first = True
        for key, value in row.items():
            lead = "- " if first else "  "
            first = False
            if isinstance(value, list):
                out.append(f"{lead}{key}:")
                out.extend(f"    - {item!r}" for item in value)
            else:
                out.append(f"{lead}{key}: {value!r}")
    return "\n".join(out) + "\n"


def as_csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return buffer.getvalue()


def stored_kinds(engine: Engine) -> dict[str, Any]:
    with read_session(engine) as s:
        return {
            "resource": s.exec(select(m.Resource.kind)).one(),
            "monitoring": s.exec(select(m.Monitoring.kind)).one(),
            "review": s.exec(select(m.Review.kind)).one(),
            "schedules": sorted(s.exec(select(m.Schedule.kind))),
            "amount": s.exec(select(m.Resource.amount)).one(),
            "mobilized": s.exec(select(m.Resource.mobilized)).one(),  # the column's default
            "links": len(s.exec(select(m.ComponentObjective)).all()),
            "present": len(s.exec(select(m.MeetingAttendance)).all()),
        }


@pytest.mark.parametrize("suffix", ["yaml", "csv"])
def test_every_kind_of_record_is_importable(
    service: Mspflow, engine: Engine, water: str, tmp_path: Path, suffix: str
) -> None:
    assert [row["record"] for row in EVERY_KIND] == list(RECORDS)
    path = tmp_path / f"all.{suffix}"
    path.write_text(as_yaml(EVERY_KIND) if suffix == "yaml" else as_csv(EVERY_KIND))
    assert service.evidence.import_file(partnership=water, path=path).counts == dict.fromkeys(
        RECORDS, 1
    )
    assert stored_kinds(engine) == {
        "resource": "financial",
        "monitoring": "process",
        "review": "midterm",
        # a scope makes no midterm review: it is the partners' choice (line 1197)
        "schedules": ["coordination-meeting"],
        "amount": 1250.5,
        "mobilized": False,
        "links": 1,
        "present": 1,
    }


def test_the_old_kind_column_is_read_where_it_is_unambiguous(
    service: Mspflow, engine: Engine, water: str, tmp_path: Path
) -> None:
    old = tmp_path / "old.csv"
    old.write_text("kind,code,text\nsdg,6.1,\nlesson,,Start early\n")
    assert service.evidence.import_file(partnership=water, path=old).counts == {
        "sdg": 1,
        "lesson": 1,
    }
    mixed = tmp_path / "mixed.csv"  # both columns: `record` wins where it is filled
    mixed.write_text("record,kind,summary,code\n,sdg,,6.2\nmonitoring,progress,On plan,\n")
    assert service.evidence.import_file(partnership=water, path=mixed).counts == {
        "sdg": 1,
        "monitoring": 1,
    }
    ambiguous = tmp_path / "ambiguous.yaml"
    ambiguous.write_text("- kind: monitoring\n  summary: On plan\n")
    before = counts(engine)
    with pytest.raises(DefinitionError, match=r"ambiguous\.yaml:1: .*'record: monitoring'"):
        service.evidence.import_file(partnership=water, path=ambiguous)
    assert counts(engine) == before


def test_a_byte_order_mark_is_read_as_utf8(
    service: Mspflow, engine: Engine, water: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes("\ufeffrecord,text\nlesson,Café owners pay on time\n".encode())
    yaml_file = tmp_path / "bom.yaml"
    yaml_file.write_bytes("\ufeff- record: lesson\n  text: Ünïcode stays\n".encode())
    assert service.evidence.import_file(partnership=water, path=csv_file).counts == {"lesson": 1}
    assert service.evidence.import_file(partnership=water, path=yaml_file).counts == {"lesson": 1}
    with read_session(engine) as s:
        texts = sorted(s.exec(select(m.Lesson.text)))
    assert texts == ["Café owners pay on time", "Ünïcode stays"]


def test_null_means_absent(service: Mspflow, engine: Engine, water: str, tmp_path: Path) -> None:
    path = tmp_path / "nulls.yaml"
    path.write_text(
        "- record: meeting\n  on: 2027-01-04\n  minutes: null\n"
        "- record: report\n  period: Q1\n  link: ~\n"
    )
    service.evidence.import_file(partnership=water, path=path)
    with read_session(engine) as s:
        assert s.exec(select(m.Meeting.minutes)).one() is None
        assert s.exec(select(m.Report.link)).one() is None
    required = tmp_path / "required.yaml"
    required.write_text("- record: lesson\n  text: null\n")
    with pytest.raises(DefinitionError, match=r"required\.yaml:1: lesson: text is required"):
        service.evidence.import_file(partnership=water, path=required)


def test_every_problem_of_the_file_is_listed_and_nothing_written(
    service: Mspflow, engine: Engine, water: str, tmp_path: Path
) -> None:
    service.evidence.record(partnership=water, kind="sdg", values={"code": "6.1"})
    path = tmp_path / "many.csv"
    path.write_text(
        "record,code,name,sector,email,text\n"
        "partner,,Ministry,government,dara@mrd.example.org,\n"  # fine alone
        "sdg,6.1,,,,\n"  # already linked
        "partner,,Ministry,government,,\n"  # a second Ministry in the same file
        "partner,,Pumps,private,not-an-address,\n"
        "lesson,,,,,\n"  # text missing
        "coffee,,,,,\n"
    )
    before = counts(engine)
    with pytest.raises(DefinitionError) as info:
        service.evidence.import_file(partnership=water, path=path)
    lines = info.value.lines()
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in lines] == [
        "3",
        "4",
        "5",
        "6",
        "7",
    ], lines
    assert "6.1 is already linked" in lines[0]
    assert "already has a partner 'Ministry'" in lines[1]
    assert "email" in lines[2] and "lesson: text is required" in lines[3]
    assert "unknown kind of record 'coffee'" in lines[4]
    assert counts(engine) == before


def test_problems_beyond_a_hundred_are_counted(
    service: Mspflow, water: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("record,code\n" + "sdg,6.99\n" * 250)
    with pytest.raises(DefinitionError) as info:
        service.evidence.import_file(partnership=water, path=path)
    lines = info.value.lines()
    assert len(lines) == evidence.MAX_PROBLEMS
    assert lines[-1].endswith("… and 151 more problems after this line"), lines[-1]


def test_the_file_is_checked_before_the_write_transaction_opens(
    service: Mspflow,
    engine: Engine,
    water: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer records evidence while the file is being checked: it is not kept
    waiting (no write lock is held yet), and the import, which checked a partnership
    that has changed since, writes nothing and asks for a retry (exit 5)."""
    path = tmp_path / "rows.yaml"
    path.write_text("- record: lesson\n  text: From the file\n")
    real = evidence._kind_of
    meanwhile: list[str] = []

    def kind_of(values: dict[str, Any]) -> str:
        if not meanwhile:  # a real second writer, on its own connection and transaction
            other = Mspflow(engine=engine, clock=service.clock, actor=SECRETARIAT)
            meanwhile.append(
                other.evidence.record(
                    partnership=water, kind="lesson", values={"text": "Meanwhile"}
                ).kind
            )
        return real(values)

    monkeypatch.setattr(evidence, "_kind_of", kind_of)
    with pytest.raises(ConcurrentChange, match=r"changed while rows\.yaml was being checked"):
        service.evidence.import_file(partnership=water, path=path)
    with read_session(engine) as s:
        assert list(s.exec(select(m.Lesson.text))) == ["Meanwhile"]
    monkeypatch.setattr(evidence, "_kind_of", real)
    assert service.evidence.import_file(partnership=water, path=path).counts == {"lesson": 1}


# --------------------------------------------------------------------------- hostile files

NESTED = "- record: lesson\n  text: " + "[" * 5_000 + "]" * 5_000 + "\n"
BOMB = '- record: lesson\n  text: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"- record: lesson\n  text: &{b} [{','.join(['*' + a] * 9)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)

HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("empty.csv", b"", 1, "holds no records"),
    ("blank.yaml", b"# nothing here\n", 1, "holds no records"),
    ("header-only.csv", b"record,text\n", 1, "holds no records"),
    ("empty-list.yaml", b"[]\n", 1, "holds no records"),
    ("scalar.yaml", b"just text\n", 1, "expected a list of records"),
    ("not-a-mapping.yaml", b"- record: lesson\n  text: a\n- lesson\n", 3, "is not a record"),
    ("latin1.csv", b"record,text\nlesson,ok\nlesson,caf\xe9\n", 3, "0xe9 (column 11) is not UTF-8"),
    ("latin1.yaml", b"- record: lesson\n  text: caf\xe9\n", 2, "is not UTF-8"),
    ("utf16.csv", "record,text\nlesson,a\n".encode("utf-16"), 1, "UTF-16 text"),
    ("nul.csv", b"record,text\nlesson,a\x00b\n", 2, "NUL character"),
    ("nul.yaml", b"- record: lesson\n  text: a\x00b\n", 2, "NUL character"),
    ("escaped-nul.yaml", b'- record: lesson\n  text: "a\\0b"\n', 1, "text: contains a NUL"),
    ("control.yaml", b"- record: lesson\n  text: a\x07b\n", 2, "not allowed in YAML"),
    ("list.yaml", b"- record: lesson\n  text: [a, b]\n", 1, "text: holds a list"),
    ("mapping.yaml", b"- record: lesson\n  text: {a: b}\n", 1, "text: holds a mapping"),
    ("extra-column.csv", b"record,text,colour\nlesson,a,\n", 1, "column 3 'colour' is not a field"),
    (
        "extra-cell.csv",
        b"record,text\nlesson,a,oops\n",
        2,
        "column 3 holds 'oops' but has no heading",
    ),
    ("no-heading.csv", b"record,,text\nlesson,,a\n", 1, "column 2 has no heading"),
    ("twice.csv", b"record,text,text\nlesson,a,b\n", 1, "column 3 'text' appears twice"),
    ("no-kind.csv", b"text\nHello\n", 1, "no 'record' column"),
    ("no-kind.yaml", b"- text: Hello\n", 1, "does not name its kind of record"),
    (
        "unknown-field.yaml",
        b"- record: lesson\n  text: a\n  colour: red\n",
        1,
        "unknown field(s) 'colour'",
    ),
    (
        "field-of-another-kind.csv",
        b"record,text,code\nlesson,a,6.1\n",
        2,
        "unknown field(s) 'code'",
    ),
    ("anchor.yaml", b"- &row {record: lesson, text: a}\n- *row\n", 1, "anchors and aliases"),
    ("bomb.yaml", BOMB.encode(), 2, "anchors and aliases"),
    ("tag.yaml", b"- record: lesson\n  text: !custom a\n", 2, "the tag '!custom' is not read"),
    ("python-tag.yaml", b"- !!python/object:os.system {record: x}\n", 1, "is not read here"),
    ("nested.yaml", NESTED.encode(), 2, "nested deeper than 64 levels"),
    ("huge-cell.yaml", b"- record: lesson\n  text: " + b"x" * 131_072 + b"\n", 2, "at most 20,000"),
    ("huge-cell.csv", b"record,text\nlesson," + b"x" * 131_072 + b"\n", 2, "at most 20,000"),
    ("big-cell.csv", b"record,text\nlesson," + b"x" * 20_001 + b"\n", 2, "at most 20,000"),
    ("syntax.yaml", b"- record: lesson\n  text: [unclosed\n", 3, "YAML syntax"),
    ("duplicate-key.yaml", b"- record: lesson\n  text: a\n  text: b\n", 3, "duplicate key 'text'"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_file_is_refused_in_one_line(
    run: Run, engine: Engine, tmp_path: Path, name: str, content: bytes, line: int, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = counts(engine)
    message = one_line(run("import", "water", path, code=7))
    assert message.startswith(f"mspflow: {path}:{line}: "), message
    assert fragment in message, message
    assert len(message) < 400
    assert counts(engine) == before


def test_rows_of_several_kinds_interleaved_keep_their_own_defaults(
    service: Mspflow, engine: Engine, water: str, tmp_path: Path
) -> None:
    service.evidence.record(
        partnership=water, kind="partner", values={"name": "VWN", "sector": "ngo"}
    )
    path = tmp_path / "mixed.csv"
    path.write_text(
        "record,partner,kind,description,committed,text\n"
        "resource,VWN,financial,Grant,true,\n"
        "lesson,,,,,Start early\n"
        "resource,VWN,in-kind,Pumps,,\n"
        "lesson,,,,,Ask twice\n"
    )
    assert service.evidence.import_file(partnership=water, path=path).counts == {
        "resource": 2,
        "lesson": 2,
    }
    with read_session(engine) as s:
        resources = s.exec(select(m.Resource).order_by(m.Resource.id)).all()
        lessons = s.exec(select(m.Lesson).order_by(m.Lesson.id)).all()
    assert [(r.description, r.committed, r.mobilized, r.amount) for r in resources] == [
        ("Grant", True, False, None),
        ("Pumps", False, False, None),
    ]
    assert [(x.text, x.inherited_from, x.recorded_by) for x in lessons] == [
        ("Start early", None, "ana"),
        ("Ask twice", None, "ana"),
    ]


def test_a_file_that_never_ends_is_read_only_up_to_the_bound(run: Run, engine: Engine) -> None:
    before = counts(engine)
    line = one_line(run("import", "water", "/dev/zero", code=7))
    assert line == (
        f"mspflow: /dev/zero:0: the file is larger than {evidence.MAX_FILE_BYTES:,} bytes, "
        "the most read at once; split it"
    ), line
    assert counts(engine) == before
