"""The project keeps its promises about layout and commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _code_lines(text: str) -> list[str]:
    return [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]


def test_ci_runs_exactly_the_readme_test_command():
    readme_commands = _code_lines((ROOT / "README.md").read_text())
    test_command = readme_commands[1]
    assert "pytest" in test_command
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_opens_with_the_app_and_the_test_command():
    first, second = _code_lines((ROOT / "README.md").read_text())[:2]
    assert first.endswith("streamlit run streamlit_app.py")
    assert second.endswith("python -m pytest")


def test_the_engine_never_imports_streamlit():
    offenders = [p.name for p in (ROOT / "vae_core").glob("*.py")
                 if re.search(r"^\s*(import|from)\s+streamlit", p.read_text(), re.M)]
    assert offenders == []


def test_model_sizes_are_written_only_in_the_config():
    literals = re.compile(r"(?<![\w.])(784|400|50)(?![\w.])")
    offenders = [f"{p.name}:{n}" for p in (ROOT / "vae_core").glob("*.py") if p.name != "config.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if literals.search(line.split("#")[0]) and '"""' not in line and "# published" not in line]
    assert offenders == []  # a published figure (Burda et al.'s network) says so in a comment


def test_every_test_the_docs_cite_exists():
    cited = {(file, name) for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
             for file, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", doc.read_text())}
    missing = [f"{file}::{name}" for file, name in sorted(cited)
               if not (ROOT / file).is_file() or not re.search(rf"def {name}\b", (ROOT / file).read_text())]
    assert cited and missing == []  # a test renamed or moved is cited under its new name


def test_every_page_is_thin_and_keeps_no_state_of_its_own():
    # A page calls its panels in ui/; a module-level name it assigns is state every session shares.
    for page in (ROOT / "pages").glob("*.py"):
        text = page.read_text()
        assert len(text.splitlines()) <= 150, page.name
        assigned = re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=(?!=)", text, re.M)
        assert [name for name in assigned if not name.isupper()] == [], page.name  # constants only
