"""``text_llm``'s keys as validate reads them: the client's errors located at its keys,
a bad prompt refused at its line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_llm.yaml"


def validate(text: str, folder: Path) -> tuple[int, str]:
    from tradeloom.cli.main import main

    path = folder / "news_llm.yaml"
    path.write_text(text.replace("data/news.csv", str(ROOT / "examples" / "data" / "news.csv")))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", "validate", str(path)])
    structlog.reset_defaults()
    return code, err.getvalue().replace(str(path), "FILE")


def test_the_clients_keys_are_checked_where_they_are_written(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "news_llm.txt").write_text("Score {{text}}")
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    at = lines.index("      kind: openai_compatible") + 1

    code, said = validate(
        text.replace("      kind: openai_compatible", "      kind: openai_compat"), tmp_path
    )
    assert (code, said) == (
        2,
        f"FILE:{at}:13 features.4.client.kind: unknown llm_client kind 'openai_compat' (did "
        "you mean 'openai_compatible'?); installed kinds: openai_compatible\n",
    )
    code, said = validate(
        text.replace("      model: stand-in", "      model: stand-in\n      api_kee: x"), tmp_path
    )
    assert (code, said) == (
        2,
        f"FILE:{lines.index('      model: stand-in') + 2}:16 features.4.client.api_kee: "
        "unknown key (did you mean 'api_key'?)\n",
    )


def test_an_unknown_placeholder_is_refused_naming_its_line(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    prompt = tmp_path / "prompts" / "news_llm.txt"
    prompt.write_text("Score this.\n{{text}}\n{{titel}}\n")
    text = EXAMPLE.read_text()
    at = text.splitlines().index("    prompt: prompts/news_llm.txt") + 1

    code, said = validate(text, tmp_path)

    assert (code, said) == (
        2,
        f"FILE:{at}:13 features.4.prompt: {prompt}:3: unknown placeholder {{{{titel}}}} "
        "(did you mean 'title'?); placeholders: {{text}}, {{title}}, {{source}}, {{time}}, "
        "{{symbols}}, {{id}}, {{fields}}\n",
    )
