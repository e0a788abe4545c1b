"""The README says what tradeloom is and how to start; the reference lives in docs/.

Every key of every built-in component and every hook are checked against the generated
docs site in tests/test_docs.py (they were checked against the README before the split).
"""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_quickstart_is_exactly_two_commands() -> None:
    block = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    assert block.strip().splitlines() == [
        "pip install -e . && tradeloom run strategies/btc_rf.yaml",
        'pip install -e ".[test]" && pytest',
    ]
