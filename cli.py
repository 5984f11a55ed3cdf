"""Run the mspflow command line from a checkout: ``python cli.py --help``.

Uses the project's virtual environment (``.venv``, made by ``make demo`` or
``make test``) when the Python running this file lacks mspflow's libraries.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    try:
        import click  # noqa: F401
        import sqlmodel  # noqa: F401
    except ImportError:
        venv = HERE / ".venv"
        python = venv / "bin" / "python"
        if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
            os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
        sys.exit("mspflow: its libraries are not installed; run 'make demo' first")
    from mspflow.cli import main

    main(prog_name="mspflow")
