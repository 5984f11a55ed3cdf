"""IATI 2.03 activities and Open SDG data files, from the demo portfolio.

The IATI file is checked here against the official schema on its own (not only by
the exporter), and its content against what the demo recorded; the Open SDG files
are read back with the csv module."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine

from mspflow.auth import Actor
from mspflow.cli.demo import run_demo
from mspflow.errors import InvalidInput
from mspflow.services import Mspflow
from mspflow.services.exports import (
    ACTIVITY_STATUS,
    PARTNER_ROLES,
    SCHEMA_DIR,
    IatiSettings,
    _validate,
)
from mspflow.store import make_engine
from tests.conftest import invoke

SETTINGS = IatiSettings("XM-DAC-41114", "Partnership secretariat", "40", None)
ENV = {
    "MSPFLOW_IATI_REPORTING_ORG_REF": "XM-DAC-41114",
    "MSPFLOW_IATI_REPORTING_ORG_NAME": "Partnership secretariat",
    "MSPFLOW_CONFIG": "/nonexistent/config.toml",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Engine]]:
    path = tmp_path_factory.mktemp("iati") / "demo.db"
    run_demo(lambda _line: None, path)
    engine = make_engine(f"sqlite:///{path}")
    yield path, engine
    engine.dispose()


def app(engine: Engine, who: str = "amara", role: str = "secretariat") -> Mspflow:
    return Mspflow(engine=engine, actor=Actor(who, role))


def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "iati-activities-schema.xsd")))


def test_the_demo_portfolio_is_valid_iati(demo: tuple[Path, Engine], tmp_path: Path) -> None:
    _, engine = demo
    out = tmp_path / "activities.xml"
    done = app(engine).exports.iati(path=out, settings=SETTINGS)
    doc = etree.parse(str(out))
    assert schema().validate(doc), schema().error_log
    acts = doc.findall("iati-activity")
    assert done.activities == len(acts) == 5
    by_id = {a.findtext("iati-identifier"): a for a in acts}
    water = by_id["XM-DAC-41114-water-kch"]
    assert water.findtext("title/narrative") == "Safe water for Kampong Chhnang"
    assert [o.get("role") for o in water.findall("participating-org")] == ["1", "4", "4"]
    assert water.find("activity-status").get("code") == ACTIVITY_STATUS["closed"]
    dates = {d.get("type"): d.get("iso-date") for d in water.findall("activity-date")}
    assert dates == {"1": "2027-03-01", "2": "2027-03-01", "3": "2029-02-28", "4": "2027-06-30"}
    tags = [(t.get("vocabulary"), t.get("code")) for t in water.findall("tag")]
    assert tags == [("2", "6"), ("3", "6.1")]
    [money] = water.findall("transaction")
    assert money.find("value").get("currency") == "USD" and money.findtext("value") == "400000.00"
    assert money.findtext("provider-org/narrative") == "Ministry of Rural Development"
    assert any("human resource" in n and "water-kch" in n for n in done.notes)  # in kind: a note
    forum = by_id["XM-DAC-41114-mekong-forum"]
    assert forum.find("activity-status").get("code") == ACTIVITY_STATUS["implementation"]
    indicator = forum.find("result/indicator")
    assert indicator.find("reference").attrib == {"vocabulary": "9", "code": "6.5.1"}
    assert indicator.find("baseline").get("value") == "40"
    shown = app(engine).partnerships.show(partnership="mekong-forum").indicators[0]
    actual = [p.find("actual").get("value") for p in indicator.findall("period")]
    assert len(actual) == shown.values and actual[-1] == f"{shown.latest:g}"


def test_the_codes_written_are_in_the_iati_codelists() -> None:
    def codes(name: str) -> set[str]:
        tree = etree.parse(str(SCHEMA_DIR / "codelists" / f"{name}.xml"))
        return {c.text or "" for c in tree.iter("code")}

    assert set(PARTNER_ROLES.values()) <= codes("OrganisationRole")
    assert set(ACTIVITY_STATUS.values()) <= codes("ActivityStatus")
    assert {"1", "2", "3", "4"} <= codes("ActivityDateType")
    assert "1" in codes("TransactionType")  # incoming funds


def test_a_partnership_iati_cannot_describe_is_refused_by_name(
    demo: tuple[Path, Engine], tmp_path: Path
) -> None:
    _, engine = demo
    service = app(engine)
    service.partnerships.create(name="Undescribed", slug="undescribed")
    out = tmp_path / "refused.xml"
    with pytest.raises(InvalidInput, match="partnership undescribed: it has no description"):
        service.exports.iati(path=out, settings=SETTINGS)
    assert not out.exists()
    service.evidence.record(partnership="undescribed", kind="profile",
                            values={"challenge": "Something to describe"})  # fmt: skip
    service.evidence.record(partnership="undescribed", kind="partner",
                            values={"name": "No Role Org", "sector": "private"})  # fmt: skip
    with pytest.raises(InvalidInput, match="partner 'No Role Org' has no role") as info:
        service.exports.iati(path=out, partnerships=["undescribed"], settings=SETTINGS)
    assert info.value.field == "role"
    service.evidence.update_partner(partnership="undescribed", partner="No Role Org",
                                    values={"role": "implementing"})  # fmt: skip
    assert service.exports.iati(path=out, partnerships=["undescribed"], settings=SETTINGS)
    assert schema().validate(etree.parse(str(out)))


def test_a_schema_error_names_the_element_and_the_partnership() -> None:
    """The schema is the last word: an activity it refuses (here, one whose title was
    lost) is named, with the element."""
    text = """<iati-activities version="2.03">
  <iati-activity>
    <iati-identifier>XM-DAC-41114-broken</iati-identifier>
    <reporting-org ref="XM-DAC-41114" type="40"><narrative>S</narrative></reporting-org>
    <description><narrative>d</narrative></description>
    <participating-org role="4"/>
    <activity-status code="2"/>
    <activity-date type="1" iso-date="2027-01-01"/>
  </iati-activity>
</iati-activities>"""
    with pytest.raises(InvalidInput) as info:
        _validate(text, {"XM-DAC-41114-broken": "broken"})
    message = str(info.value)
    assert "partnership broken" in message and "<description>" in message
    assert "title" in message


def test_the_command(demo: tuple[Path, Engine], tmp_path: Path) -> None:
    path, _ = demo
    base = ["--db", str(path), "--as", "amara", "export", "iati"]
    out = tmp_path / "cli.xml"
    missing = invoke(*base, "-o", str(out), env={"MSPFLOW_CONFIG": "/nonexistent/config.toml"})
    assert missing.exit_code == 7 and "no IATI reporting organisation" in missing.output
    done = invoke(*base, "water-kch", "-o", str(out), env=ENV)
    assert done.exit_code == 0, done.output
    assert "wrote 1 IATI activities" in done.output
    assert schema().validate(etree.parse(str(out)))
    assert invoke(*base, "nope", "-o", str(out), env=ENV).exit_code == 4


def test_a_partner_user_exports_only_their_partnerships(
    demo: tuple[Path, Engine], tmp_path: Path
) -> None:
    _, engine = demo
    admin = app(engine)
    admin.users.add(name="lina-x", role="partner", email=None)
    admin.members.add(partnership="banana-network", user="lina-x", partner="Village Water Network")
    out = tmp_path / "mine.xml"
    done = app(engine, "lina-x", "partner").exports.iati(path=out, settings=SETTINGS)
    ids = [a.findtext("iati-identifier") for a in etree.parse(str(out)).findall("iati-activity")]
    assert done.activities == 1 and ids == ["XM-DAC-41114-banana-network"]


def test_sdg_progress_reads_back_as_recorded(demo: tuple[Path, Engine], tmp_path: Path) -> None:
    _, engine = demo
    service = app(engine)
    done = service.exports.sdg_progress(folder=tmp_path / "open-sdg")
    assert set(done.files) == {"indicator_6-1-1.csv", "indicator_6-5-1.csv"}
    with open(tmp_path / "open-sdg" / "indicator_6-5-1.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["Year", "Partnership", "Units", "Value"]
    history = service.partnerships.show(partnership="mekong-forum").indicators[0]
    assert {r["Partnership"] for r in rows} == {"Mekong water users forum"}
    assert rows[-1]["Value"] == f"{history.latest:g}"
    assert rows[-1]["Year"] == str(history.measured_on.year)  # type: ignore[union-attr]
    assert all(r["Units"] == "IWRM score" for r in rows)
    # one row per partnership and year: the latest value of that year
    assert len({(r["Year"], r["Partnership"]) for r in rows}) == len(rows)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(InvalidInput, match="it is not a folder"):
        service.exports.sdg_progress(folder=not_a_folder)
    assert not_a_folder.read_text() == "x"
