"""Load a workflow definition: read → parse → frozen model → whole-graph checks.

Every stage collects problems instead of stopping at the first, so one
``mspflow workflow validate`` shows every mistake in a file, each with its line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mspflow.definition.checks import CHECKS, EXPECTED_RECORDS, RECORD_FILTERS, CheckSpec
from mspflow.definition.model import (
    CADENCE_DAYS,
    TRIGGER_KINDS,
    AutoTrigger,
    Criterion,
    FinalState,
    Module,
    Outcome,
    ScheduleKind,
    Step,
    Task,
    Transition,
    Workflow,
)
from mspflow.definition.yamlsafe import LDict, LList, load_yaml
from mspflow.errors import DefinitionError, Problem

__all__ = ["FORMAT_VERSION", "SCHEMA", "compile_stored", "load_workflow", "parse_workflow"]

#: The version of the definition file format this code reads (key ``mspflow``).
FORMAT_VERSION = 1

# The keys each kind of object accepts: {key: (type, required)}. Types are
# "str", "int", "bool", "ref" (step number or state id), "refs" (one ref or a
# list of them), "strs", "list" (of objects) and "map". The JSON Schema shipped
# beside this module must accept exactly these keys (a test holds them equal).
SCHEMA: Mapping[str, Mapping[str, tuple[str, bool]]] = MappingProxyType(
    {
        "workflow": {
            "mspflow": ("int", True),
            "name": ("str", True),
            "version": ("str", True),
            "title": ("str", True),
            "description": ("str", False),
            "initial": ("ref", True),
            "entry": ("refs", False),
            "scale_up_entry": ("refs", False),
            "modules": ("list", True),
            "steps": ("list", True),
            "final_states": ("list", True),
            "transitions": ("list", True),
            "outcomes": ("list", False),
            "schedule_kinds": ("list", False),
            "auto_triggers": ("list", False),
            "cycle_start": ("ref", False),
        },
        "module": {
            "id": ("str", True),
            "name": ("str", True),
            "description": ("str", False),
            "source": ("lines", False),
        },
        "step": {
            "number": ("int", True),
            "id": ("str", True),
            "name": ("str", True),
            "module": ("str", True),
            "description": ("str", False),
            "tasks": ("list", True),
            "gate": ("list", False),
            "source": ("lines", False),
        },
        "task": {
            "id": ("str", True),
            "name": ("str", True),
            "description": ("str", False),
            "source": ("lines", False),
        },
        "criterion": {
            "id": ("str", True),
            "task": ("str", True),
            "title": ("str", True),
            "check": ("str", True),
            "params": ("map", False),
            "fix": ("str", False),
            "since": ("str", False),
            "within": ("str", False),
            "source": ("lines", False),
        },
        "final_state": {
            "id": ("str", True),
            "name": ("str", True),
            "description": ("str", False),
            "source": ("lines", False),
        },
        "transition": {
            "kind": ("str", True),
            "from": ("refs", True),
            "to": ("refs", False),
            "gate": ("gate", False),
            "reason": ("str", False),
            "direction": ("str", False),
            "task": ("str", False),
            "label": ("str", False),
            "source": ("lines", False),
        },
        "outcome": {
            "id": ("str", True),
            "name": ("str", True),
            "to": ("ref", True),
            "reasons": ("strs", False),
            "description": ("str", False),
            "source": ("lines", False),
        },
        "schedule_kind": {
            "id": ("str", True),
            "name": ("str", True),
            "task": ("str", True),
            "cadences": ("strs", True),
            "default": ("str", True),
            "minimum": ("str", False),
            "record": ("str", False),
            "derived": ("str", False),
            "description": ("str", False),
            "source": ("lines", False),
        },
        "auto_trigger": {
            "id": ("str", True),
            "kind": ("str", True),
            "from": ("refs", True),
            "to": ("ref", True),
            "schedules": ("strs", True),
            "task": ("str", True),
            "source": ("lines", False),
        },
    }
)

_LINES = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*$")


def source_lines(text: str) -> tuple[tuple[int, int], ...] | None:
    """``"1039-1040, 1044"`` as ``((1039, 1040), (1044, 1044))``; None if malformed
    (a range must not run backwards, a line number starts at 1)."""
    out = []
    for part in text.split(","):
        match = _LINES.match(part)
        if match is None:
            return None
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first:
            return None
        out.append((first, last))
    return tuple(out)


_DERIVED = ("midterm",)  # schedules computed from the scope's time frame (task 9.1)


def _brief(value: Any, limit: int = 60) -> str:
    """A value for a message: its repr, cut short (a mistyped list of thousands stays short)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_type(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str) and value.strip() != ""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "ref":
        return _is_type(value, "str") or _is_type(value, "int")
    if kind == "refs":
        return _is_type(value, "ref") or (
            isinstance(value, list) and all(_is_type(v, "ref") for v in value)
        )
    if kind == "strs":
        return isinstance(value, list) and all(_is_type(v, "str") for v in value)
    if kind == "gate":
        return value in ("exit", "none") or _is_type(value, "strs")
    if kind == "lines":
        return isinstance(value, str) and source_lines(value) is not None
    if kind == "list":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    raise AssertionError(kind)


_TYPE_WORDS = {
    "str": "a non-empty text",
    "int": "a whole number",
    "bool": "true or false",
    "ref": "a step number or state id",
    "refs": "a step number, a state id, or a list of them",
    "strs": "a list of names",
    "gate": "'exit', 'none' or a list of criterion ids",
    "lines": "line numbers of the guideline, e.g. 303 or 1039-1040, 1044",
    "list": "a list",
    "map": "a mapping",
}


@dataclass
class _Reader:
    """Collects problems while turning located YAML data into model objects."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def fields(self, data: Any, kind: str, where: str, line: int) -> LDict | None:
        """Check one object's keys and types against :data:`SCHEMA`."""
        if not isinstance(data, LDict):
            self.problem(line, f"{where} must be a mapping of keys to values")
            return None
        schema = SCHEMA[kind]
        for key in data:
            if key not in schema:
                allowed = ", ".join(schema)
                self.problem(
                    data.line_of(key),
                    f"unknown key '{key}' in {where}; allowed keys: {allowed}",
                )
        for key, (typ, required) in schema.items():
            if key not in data:
                if required:
                    self.problem(data.line, f"{where} is missing required key '{key}'")
                continue
            value = data[key]
            if typ in ("str", "lines") and isinstance(value, int) and not isinstance(value, bool):
                data[key] = value = str(value)  # `version: 2` means "2"
            if not _is_type(value, typ):
                self.problem(
                    data.line_of(key),
                    f"'{key}' in {where} must be {_TYPE_WORDS[typ]}, not {_brief(value)}",
                )
                data.dropped = {**getattr(data, "dropped", {}), key: value}
                del data[key]
        return data

    def items(self, data: LDict, key: str, kind: str, where: str) -> Iterable[tuple[LDict, int]]:
        seq = data.get(key)
        if not isinstance(seq, LList):
            return
        for i, item in enumerate(seq):
            line = seq.line_of(i)
            checked = self.fields(item, kind, f"{where}, '{key}' item {i + 1}", line)
            if checked is not None:
                yield checked, line


def data_of(obj: LDict, key: str) -> Any:
    """A key's original value, even when :meth:`_Reader.fields` dropped it as mistyped."""
    return getattr(obj, "dropped", {}).get(key, obj.get(key))


def _raw_refs(value: Any) -> list[Any]:
    return [] if value is None else _as_list(value)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def content_hash(data: Any) -> str:
    """SHA-256 of the definition's data in a canonical JSON form.

    Comments and layout do not change it; any change of meaning does.
    """
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def parse_workflow(text: str, filename: str = "<string>") -> Workflow:
    """Parse and validate definition text; raise :class:`DefinitionError` listing every problem."""
    data, problems = load_yaml(text, filename)
    r = _Reader(filename, list(problems))
    top = r.fields(data, "workflow", "the workflow", 1)
    if top is None:
        raise DefinitionError(r.problems)
    if top.get("mspflow", FORMAT_VERSION) != FORMAT_VERSION:
        r.problem(
            top.line_of("mspflow"),
            f"definition format {top['mspflow']} is not known to this mspflow "
            f"(it reads format {FORMAT_VERSION}); upgrade mspflow or fix 'mspflow:'",
        )
    wf = _build(r, top)
    # Whole-graph checks only make sense on a graph that was read without
    # problems; on a broken one they would mostly repeat the same mistake.
    if wf is not None and not r.problems:
        _check_graph(r, wf, top)
    if r.problems or wf is None:
        raise DefinitionError(r.problems)
    return wf


def compile_stored(text: str, content_hash: str, name: str = "<stored>") -> Workflow:
    """A definition that was validated when it was stored, compiled again quickly.

    The stored text is read with the C YAML parser and no line tracking, brought
    to this mspflow's format by the named migrations (:mod:`.formats`), and
    built without the whole-graph checks it passed already; it keeps the hash
    it was stored under, which its partnerships are pinned to.
    """
    import dataclasses

    import yaml

    from mspflow.definition.formats import migrate

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(text, Loader=loader)
    if not isinstance(data, dict):
        raise DefinitionError([Problem(name, 1, "the stored definition is not a mapping")])
    data = migrate(data, to=FORMAT_VERSION, name=name)
    r = _Reader(name, [])
    top = r.fields(_located(data), "workflow", "the workflow", 1)
    wf = _build(r, top) if top is not None else None
    if r.problems or wf is None:
        raise DefinitionError(r.problems or [Problem(name, 1, "cannot be compiled")])
    return dataclasses.replace(wf, content_hash=content_hash, source=name)


def _located(value: Any) -> Any:
    """Plain data as the builder reads it, every line unknown (0)."""
    if isinstance(value, dict):
        d = LDict({str(k): _located(v) for k, v in value.items()})
        d.line, d.key_lines = 0, {}
        return d
    if isinstance(value, list):
        items = LList(_located(v) for v in value)
        items.line, items.item_lines = 0, []
        return items
    return value


#: A definition file larger than this is refused unread (the bundled one is about 30 KB).
MAX_DEFINITION_BYTES = 2 * 1024 * 1024


def load_workflow(path: str | Path) -> Workflow:
    path = Path(path)
    try:
        with path.open("rb") as stream:  # read at most the bound: /dev/zero never ends
            data = stream.read(MAX_DEFINITION_BYTES + 1)
        if len(data) > MAX_DEFINITION_BYTES:
            raise DefinitionError(
                [
                    Problem(
                        str(path),
                        0,
                        f"the file is larger than {MAX_DEFINITION_BYTES:,} bytes, "
                        "the most a definition may have",
                    )
                ]
            )
        # as read_text would: universal newlines
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except OSError as exc:
        raise DefinitionError(
            [Problem(str(path), 0, f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError:
        raise DefinitionError([Problem(str(path), 0, "the file is not UTF-8 text")]) from None
    return parse_workflow(text, str(path))


# --------------------------------------------------------------------------- build


def _unique(r: _Reader, seen: dict[str, int], ident: str, line: int, what: str) -> bool:
    if ident in seen:
        r.problem(
            line, f"duplicate {what} '{ident}' (first on line {seen[ident]}); ids must be unique"
        )
        return False
    seen[ident] = line
    return True


def _build(r: _Reader, top: LDict) -> Workflow | None:
    modules: list[Module] = []
    module_lines: dict[str, int] = {}
    for m, line in r.items(top, "modules", "module", "the workflow"):
        if "id" in m and "name" in m and _unique(r, module_lines, m["id"], line, "module id"):
            modules.append(
                Module(m["id"], m["name"], m.get("description", ""), (), line, _cites(m))
            )

    steps: list[Step] = []
    step_ids: dict[str, int] = {}
    step_numbers: dict[str, int] = {}
    task_ids: dict[str, int] = {}
    raw_steps: dict[str, LDict] = {}
    broken_refs: set[str] = set()
    for s, line in r.items(top, "steps", "step", "the workflow"):
        where = f"step {s.get('number', '?')}"
        if not all(k in s for k in ("number", "id", "name", "module")):
            # Already reported; remember what others may cite, so that one
            # mistake is not reported again at every reference to it.
            broken_refs.update(str(s[k]) for k in ("number", "id") if k in s)
            broken_refs.update(str(x) for x in _raw_refs(data_of(s, "number")))
            for t in s.get("tasks") or []:
                if isinstance(t, dict) and "id" in t:
                    task_ids.setdefault(str(t["id"]), t.line if isinstance(t, LDict) else line)
            continue
        raw_steps.setdefault(s["id"], s)
        _unique(r, step_ids, s["id"], s.line_of("id"), "step id")
        _unique(r, step_numbers, str(s["number"]), s.line_of("number"), "step number")
        if s["module"] not in module_lines:
            r.problem(
                s.line_of("module"),
                f"{where} names unknown module '{s['module']}'; known: {', '.join(module_lines)}",
            )
        tasks: list[Task] = []
        for t, tline in r.items(s, "tasks", "task", where):
            if "id" in t and "name" in t and _unique(r, task_ids, t["id"], tline, "task id"):
                tasks.append(
                    Task(t["id"], t["name"], s["number"], t.get("description", ""), tline,
                         _cites(t))
                )  # fmt: skip
        steps.append(
            Step(
                s["number"],
                s["id"],
                s["name"],
                s["module"],
                s.get("description", ""),
                tuple(tasks),
                (),
                line,
                _cites(s),
            )
        )

    # Criteria are read after all steps so that a criterion may cite a task of
    # another step (step 6's gate cites 7.1 and 8.1).
    schedule_ids = [k.get("id") for k in top.get("schedule_kinds", []) if isinstance(k, dict)]
    built_steps: list[Step] = []
    for step in steps:
        s = raw_steps[step.id]
        criteria: list[Criterion] = []
        seen: dict[str, int] = {}
        for c, line in r.items(s, "gate", "criterion", f"step {step.number} gate"):
            if not all(k in c for k in ("id", "task", "title", "check")):
                continue
            _unique(r, seen, c["id"], line, f"criterion id in step {step.number}")
            where = f"criterion '{c['id']}' of step {step.number}"
            if c["task"] not in task_ids:
                r.problem(
                    c.line_of("task"),
                    f"{where} names unknown task '{c['task']}'; use a task id declared in 'tasks'",
                )
            params = c.get("params", LDict())
            spec = CHECKS.get(c["check"])
            if spec is None:
                r.problem(
                    c.line_of("check"),
                    f"{where} names unknown check '{c['check']}'; known checks: "
                    + ", ".join(CHECKS),
                )
            else:
                _check_params(r, spec, params, c, where, schedule_ids)
            _check_freshness(r, c, where, cycle="cycle_start" in top)
            criteria.append(
                Criterion(
                    c["id"],
                    c["task"],
                    c["title"],
                    c["check"],
                    MappingProxyType(dict(params)),
                    c.get("fix", ""),
                    line,
                    _cites(c),
                    since=c.get("since"),
                    within=c.get("within"),
                )
            )
        built_steps.append(
            Step(
                step.number,
                step.id,
                step.name,
                step.module,
                step.description,
                step.tasks,
                tuple(criteria),
                step.line,
                step.cites,
            )
        )
    steps = sorted(built_steps, key=lambda s: s.number)
    modules = [
        Module(
            m.id,
            m.name,
            m.description,
            tuple(s.number for s in steps if s.module == m.id),
            m.line,
            m.cites,
        )
        for m in modules
    ]

    finals: list[FinalState] = []
    for f, line in r.items(top, "final_states", "final_state", "the workflow"):
        if "id" in f and "name" in f and _unique(r, step_ids, f["id"], line, "state id"):
            finals.append(FinalState(f["id"], f["name"], f.get("description", ""), line, _cites(f)))

    by_number = {str(s.number): s.id for s in steps}
    state_ids = {s.id for s in steps} | {f.id for f in finals}

    def resolve(ref: Any, line: int, where: str) -> str | None:
        key = str(ref)
        if key in by_number:
            return by_number[key]
        if key in state_ids:
            return key
        if key in broken_refs:
            return None  # the broken step itself was reported
        r.problem(line, f"{where} refers to unknown step or state '{ref}'")
        return None

    outcomes: list[Outcome] = []
    outcome_ids: dict[str, int] = {}
    for o, line in r.items(top, "outcomes", "outcome", "the workflow"):
        if not all(k in o for k in ("id", "name", "to")):
            continue
        _unique(r, outcome_ids, o["id"], line, "outcome id")
        dest = resolve(o["to"], o.line_of("to"), f"outcome '{o['id']}'")
        if dest is not None:
            outcomes.append(
                Outcome(
                    o["id"],
                    o["name"],
                    dest,
                    dest not in by_number.values(),
                    tuple(o.get("reasons", ())),
                    o.get("description", ""),
                    line,
                    _cites(o),
                )
            )

    transitions = _build_transitions(r, top, steps, resolve, outcomes)

    kinds: list[ScheduleKind] = []
    kind_ids: dict[str, int] = {}
    for k, line in r.items(top, "schedule_kinds", "schedule_kind", "the workflow"):
        if not all(key in k for key in ("id", "name", "task", "cadences", "default")):
            continue
        _unique(r, kind_ids, k["id"], line, "schedule kind id")
        _check_cadences(r, k, task_ids)
        kinds.append(
            ScheduleKind(
                k["id"],
                k["name"],
                k["task"],
                tuple(k["cadences"]),
                k["default"],
                k.get("minimum"),
                k.get("record"),
                k.get("derived"),
                k.get("description", ""),
                line,
                _cites(k),
            )
        )

    autos: list[AutoTrigger] = []
    for a, line in r.items(top, "auto_triggers", "auto_trigger", "the workflow"):
        if not all(key in a for key in ("id", "kind", "from", "to", "schedules", "task")):
            continue
        where = f"auto trigger '{a['id']}'"
        if a["kind"] != "review-due":
            r.problem(a.line_of("kind"), f"{where}: kind must be 'review-due', not '{a['kind']}'")
        if a["task"] not in task_ids:
            r.problem(a.line_of("task"), f"{where} names unknown task '{a['task']}'")
        for sched in a["schedules"]:
            if sched not in kind_ids:
                r.problem(a.line_of("schedules"), f"{where} names unknown schedule kind '{sched}'")
        sources = [resolve(x, a.line_of("from"), where) for x in _as_list(a["from"])]
        dest = resolve(a["to"], a.line_of("to"), where)
        if dest is None or None in sources:
            continue
        autos.append(
            AutoTrigger(
                a["id"],
                a["kind"],
                tuple(s for s in sources if s),
                dest,
                tuple(a["schedules"]),
                a["task"],
                line,
                _cites(a),
            )
        )
        for src in sources:
            assert src is not None
            transitions.append(
                Transition(
                    "review-due",
                    src,
                    dest,
                    (),
                    False,
                    a["task"],
                    "review falls due",
                    None,
                    line,
                    _cites(a),
                )
            )

    def refs(key: str, default: list[str]) -> tuple[str, ...]:
        if key not in top:
            return tuple(default)
        out = [resolve(x, top.line_of(key), f"'{key}'") for x in _as_list(top[key])]
        return tuple(x for x in out if x)

    if "initial" not in top or "name" not in top or "version" not in top or "title" not in top:
        return None
    initial = resolve(top["initial"], top.line_of("initial"), "'initial'")
    if initial is None:
        return None
    plain = json.loads(json.dumps(top))
    cycle_start = None
    if "cycle_start" in top:
        cycle_start = resolve(top["cycle_start"], top.line_of("cycle_start"), "'cycle_start'")
        if cycle_start is not None and cycle_start not in {s.id for s in steps}:
            r.problem(top.line_of("cycle_start"), "'cycle_start' must name a step")
            cycle_start = None
    return Workflow(
        name=top["name"],
        version=str(top["version"]),
        title=top["title"],
        description=top.get("description", ""),
        initial=initial,
        modules=tuple(modules),
        steps=tuple(steps),
        final_states=tuple(finals),
        transitions=tuple(transitions),
        outcomes=tuple(outcomes),
        schedule_kinds=tuple(kinds),
        auto_triggers=tuple(autos),
        entry_steps=refs("entry", [s.id for s in steps]),
        scale_up_entry=refs("scale_up_entry", [initial]),
        content_hash=content_hash(plain),
        source=r.file,
        cycle_start=cycle_start,
    )


def _cites(obj: LDict) -> str:
    """An object's ``source`` lines as written (validated with its other keys)."""
    value = obj.get("source")
    return value if isinstance(value, str) and source_lines(value) is not None else ""


def _check_params(
    r: _Reader, spec: CheckSpec, params: LDict, c: LDict, where: str, schedule_ids: list[Any]
) -> None:
    line = c.line_of("params")
    for name in params:
        if name not in spec.params:
            allowed = ", ".join(spec.params) or "none"
            r.problem(
                params.line_of(name),
                f"{where}: check '{spec.name}' has no parameter '{name}'; it takes: {allowed}",
            )
    for name, p in spec.params.items():
        if name not in params:
            if p.required:
                r.problem(line, f"{where}: check '{spec.name}' needs parameter '{name}'")
            continue
        value = params[name]
        if p.type == "list":
            ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
            choices = p.choices or (tuple(schedule_ids) if name == "kinds" else None)
            bad = [v for v in value if choices and v not in choices] if ok else []
        elif p.type == "str":
            ok = isinstance(value, str)
            bad = [value] if ok and p.choices and value not in p.choices else []
            choices = p.choices
        elif p.type == "int":
            ok, bad, choices = isinstance(value, int) and value >= 0, [], None
        elif p.type == "bool":
            ok, bad, choices = isinstance(value, bool), [], None
        else:  # mapping: 'where' filters of the named record
            ok, bad, choices = isinstance(value, dict), [], None
            if ok:
                filters = RECORD_FILTERS.get(params.get("record", ""), {})
                for fname, fval in value.items():
                    accepted = filters.get(fname)
                    if accepted is None:
                        r.problem(
                            params.line_of(name),
                            f"{where}: record '{params.get('record')}' cannot be filtered by "
                            f"'{fname}'; filters: {', '.join(filters) or 'none'}",
                        )
                    elif (accepted is bool and not isinstance(fval, bool)) or (
                        isinstance(accepted, tuple) and fval not in accepted
                    ):
                        r.problem(
                            params.line_of(name),
                            f"{where}: filter '{fname}' cannot be {_brief(fval)}; use "
                            + ("true or false" if accepted is bool else " or ".join(accepted)),
                        )
        if not ok:
            r.problem(
                params.line_of(name),
                f"{where}: parameter '{name}' of '{spec.name}' must be a {p.type}",
            )
        for v in bad:
            r.problem(
                params.line_of(name),
                f"{where}: '{v}' is not a valid value of '{name}' for '{spec.name}'; choose from: "
                + ", ".join(str(x) for x in choices or ()),
            )


def _check_freshness(r: _Reader, c: LDict, where: str, *, cycle: bool) -> None:
    """``since`` and ``within``: known values, on a check that reads when records were made."""
    from mspflow.definition.freshness import CHECKS_WITH_FRESHNESS, SINCE, parse_duration

    if "since" not in c and "within" not in c:
        return
    if c.get("check") not in CHECKS_WITH_FRESHNESS:
        key = "since" if "since" in c else "within"
        r.problem(
            c.line_of(key),
            f"{where}: '{key}' applies to the checks {', '.join(CHECKS_WITH_FRESHNESS)}, "
            f"not to '{c.get('check')}'",
        )
    since = c.get("since")
    if since is not None and since not in SINCE:
        r.problem(
            c.line_of("since"),
            f"{where}: since {_brief(since)} is not one of: {', '.join(SINCE)}",
        )
    elif since == "cycle" and not cycle:
        r.problem(
            c.line_of("since"),
            f"{where}: 'since: cycle' needs the workflow's 'cycle_start' (the step a pass "
            "round the loop starts at)",
        )
    within = c.get("within")
    if within is not None:
        try:
            parse_duration(within)
        except ValueError as exc:
            r.problem(c.line_of("within"), f"{where}: within: {exc}")


def _check_cadences(r: _Reader, k: LDict, task_ids: Mapping[str, int]) -> None:
    where = f"schedule kind '{k['id']}'"
    if k["task"] not in task_ids:
        r.problem(k.line_of("task"), f"{where} names unknown task '{k['task']}'")
    for cadence in [*k["cadences"], k["default"], *([k["minimum"]] if "minimum" in k else [])]:
        if cadence not in CADENCE_DAYS:
            r.problem(
                k.line_of("cadences"),
                f"{where}: unknown cadence '{cadence}'; known: {', '.join(CADENCE_DAYS)}",
            )
    if k["default"] not in k["cadences"]:
        r.problem(k.line_of("default"), f"{where}: default '{k['default']}' is not in its cadences")
    minimum = k.get("minimum")
    if isinstance(minimum, str) and minimum in CADENCE_DAYS:
        for cadence in k["cadences"]:
            if cadence in CADENCE_DAYS and CADENCE_DAYS[cadence] > CADENCE_DAYS[minimum]:
                r.problem(
                    k.line_of("cadences"),
                    f"{where}: cadence '{cadence}' is less frequent than the declared minimum "
                    f"'{minimum}' (task {k['task']}); remove it or relax the minimum",
                )
    derived = k.get("derived")
    if derived is not None and derived not in _DERIVED:
        r.problem(k.line_of("derived"), f"{where}: 'derived' must be one of: {', '.join(_DERIVED)}")
    record = k.get("record")
    if record is not None and record not in EXPECTED_RECORDS:
        r.problem(
            k.line_of("record"),
            f"{where}: '{record}' is not a record a schedule can expect; "
            f"choose from: {', '.join(EXPECTED_RECORDS)}",
        )


def _build_transitions(
    r: _Reader,
    top: LDict,
    steps: list[Step],
    resolve: Callable[[Any, int, str], str | None],
    outcomes: list[Outcome],
) -> list[Transition]:
    number_of = {s.id: s.number for s in steps}
    out: list[Transition] = []
    seen: dict[tuple[str, str, str, str | None], int] = {}
    for t, line in r.items(top, "transitions", "transition", "the workflow"):
        if not all(k in t for k in ("kind", "from")):
            continue
        where = f"transition ({t['kind']} from {t['from']})"
        kind = t["kind"]
        if kind not in TRIGGER_KINDS or kind == "review-due":
            r.problem(
                t.line_of("kind"),
                f"{where}: kind must be one of advance, revisit, conclude "
                "(review-due moves are declared under auto_triggers)",
            )
            continue
        reason = t.get("reason", "optional")
        if reason not in ("required", "optional"):
            r.problem(t.line_of("reason"), f"{where}: reason must be 'required' or 'optional'")
        direction = t.get("direction")
        if direction not in (None, "backward"):
            r.problem(t.line_of("direction"), f"{where}: direction can only be 'backward'")
        sources = [resolve(x, t.line_of("from"), where) for x in _as_list(t["from"])]
        if kind == "conclude":
            if "to" in t:
                r.problem(
                    t.line_of("to"),
                    f"{where}: a conclude transition takes its "
                    "destinations from 'outcomes'; remove 'to'",
                )
            targets: list[tuple[str | None, str | None]] = [(o.dest, o.id) for o in outcomes]
            if not outcomes:
                r.problem(line, f"{where}: conclude needs at least one entry under 'outcomes'")
        elif "to" not in t:
            r.problem(line, f"{where} is missing required key 'to'")
            continue
        else:
            targets = [
                (None, None) if x == "next" else (resolve(x, t.line_of("to"), where), None)
                for x in _as_list(t["to"])
            ]
        gate_spec = t.get("gate", "exit" if kind in ("advance", "conclude") else "none")
        for src in sources:
            if src is None:
                continue
            src_step = next((s for s in steps if s.id == src), None)
            if src_step is None:
                r.problem(
                    t.line_of("from"), f"{where}: '{src}' is a final state; nothing leaves it"
                )
                continue
            for dest, outcome in targets:
                if dest is None and outcome is None and "next" in _as_list(t.get("to")):
                    nxt = next((s for s in steps if s.number == src_step.number + 1), None)
                    if nxt is None:
                        r.problem(
                            t.line_of("to"), f"{where}: step {src_step.number} has no next step"
                        )
                        continue
                    dest = nxt.id
                if dest is None:
                    continue
                if direction == "backward" and (
                    dest not in number_of or number_of[dest] >= src_step.number
                ):
                    continue
                if gate_spec == "exit":
                    gate = tuple(c.id for c in src_step.gate)
                elif gate_spec == "none":
                    gate = ()
                else:
                    gate = tuple(gate_spec)
                    for cid in gate:
                        if src_step.criterion(cid) is None:
                            r.problem(
                                t.line_of("gate"),
                                f"{where}: step {src_step.number} has no criterion '{cid}'",
                            )
                key = (kind, src, dest, outcome)
                if key in seen:
                    r.problem(
                        line,
                        f"{where}: duplicate transition {kind} {src} -> {dest} "
                        f"(first on line {seen[key]})",
                    )
                    continue
                seen[key] = line
                out.append(
                    Transition(
                        kind,
                        src,
                        dest,
                        gate,
                        reason == "required",
                        t.get("task", ""),
                        t.get("label", ""),
                        outcome,
                        line,
                        _cites(t),
                    )
                )
    return out


# --------------------------------------------------------------------------- graph


def _check_graph(r: _Reader, wf: Workflow, top: LDict) -> None:
    """Whole-graph checks: reachability, traps, and a way to finish from every state."""
    edges: dict[str, set[str]] = {s: set() for s in wf.states}
    for t in wf.transitions:
        edges[t.source].add(t.dest)
    for task in (t.task for t in wf.transitions if t.task):
        if wf.task(task) is None:
            line = next(t.line for t in wf.transitions if t.task == task)
            r.problem(line, f"a transition names unknown task '{task}'")

    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = reach(wf.initial)
    for s in wf.steps:
        if s.id not in reachable:
            r.problem(
                s.line,
                f"step {s.number} '{s.id}' cannot be reached from the initial "
                f"step by any transition; add a transition into it",
            )
        if not edges[s.id]:
            r.problem(
                s.line,
                f"step {s.number} '{s.id}' is not final but has no way out; "
                "add a transition from it or declare it a final state",
            )
    finals = {f.id for f in wf.final_states}
    if not finals:
        r.problem(top.line_of("final_states"), "the workflow declares no final state")
    elif not finals & reachable:
        r.problem(
            top.line_of("final_states"),
            "no final state can be reached from the initial step; add a way to finish",
        )
    else:
        for s in wf.steps:
            if edges[s.id] and s.id in reachable and not finals & reach(s.id):
                r.problem(
                    s.line,
                    f"from step {s.number} '{s.id}' no final state can be "
                    "reached; the partnership would be trapped",
                )
    for f in wf.final_states:
        if f.id not in reachable:
            r.problem(
                f.line, f"final state '{f.id}' cannot be reached; add an outcome leading to it"
            )
