"""Record the golden ``--json`` outputs: ``python -m tests.golden``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.conftest import invoke
from tests.golden import FOLDER, run_all


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        result = invoke("demo", "--db", str(db))
        assert result.exit_code == 0, result.output
        found = run_all(invoke, db)
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.glob("*.json"):
        old.unlink()
    for name, value in found.items():
        text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
        (FOLDER / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    print(f"recorded {len(found)} outputs in {FOLDER}")


if __name__ == "__main__":
    main()
