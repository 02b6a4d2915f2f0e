"""The documentation site: it builds with ``mkdocs build --strict`` (a broken link, a missing page
or anchor fails it), its references are generated from the code, every storyboard field has its
row, and the docs stand alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from pydantic import BaseModel
from typer.core import TyperGroup

from soraflow.cli import app
from soraflow.settings import Settings
from soraflow.storyboard import Camera, Character, DialogueLine, Shot, Storyboard

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=300,
    )


def commands(group, prefix: str = "soraflow") -> list[str]:
    """Every command of the typer app, as typed: ``soraflow jobs adopt``."""
    found = []
    ctx = typer.Context(group, info_name=prefix)
    for name in group.list_commands(ctx):
        found.append(f"{prefix} {name}")
        if isinstance(command := group.get_command(ctx, name), TyperGroup):
            found += commands(command, f"{prefix} {name}")
    return found


def test_the_site_builds_strictly_with_references_generated_from_the_code(tmp_path):
    done = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr

    # Nothing generated is checked in: the references exist in the build only.
    assert not (DOCS / "reference").exists()
    configuration = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text()
    for name, field in Settings.model_fields.items():
        variable = f"SORAFLOW_{name.upper()}"
        assert f'id="{variable.lower()}"' in configuration, variable  # a section (and an anchor) per setting
        assert field.description, f"Settings.{name} has no description= for the configuration reference"
    assert "OPENAI_API_KEY" in configuration and "GOOGLE_CLOUD_PROJECT" in configuration  # the endpoints' variables
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    for command in commands(typer.main.get_command(app)):
        assert f"<code>{command}</code>" in cli, command
    assert "--budget" in cli and "--dry-run" in cli
    models = (tmp_path / "site" / "reference" / "models" / "index.html").read_text()
    assert "veo-3.1-fast-generate-001" in models and "$0.10" in models
    # The tour page is the README's tour, included at build time.
    tour = (tmp_path / "site" / "tour" / "index.html").read_text()
    assert "Harbour at Dawn" in tour and "Point it at a real endpoint" in tour and "8&lt;" not in tour


def test_a_broken_internal_link_fails_the_build(tmp_path):
    """The same site with one link to a page that is not there: --strict refuses it."""
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", copy / "README.md")
    page = copy / "docs" / "spend.md"
    page.write_text(page.read_text() + "\nSee [the caps](no-such-page.md).\n")
    done = mkdocs_build(copy / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "'no-such-page.md', but the target is not found" in done.stderr, done.stderr
    assert "Aborted with 1 warnings in strict mode" in done.stdout + done.stderr


def documented_fields(heading: str) -> set[str]:
    """The first cells (`field`) of the tables under a heading of docs/storyboard.md."""
    text = (DOCS / "storyboard.md").read_text()
    section = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert section, heading
    return set(re.findall(r"^\| `([a-z_]+)` \|", section.group(1), re.M))


def user_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, info in model.model_fields.items() if not info.exclude}


def test_every_field_of_the_storyboard_format_has_its_row():
    """A field added to the storyboard format is added to docs/storyboard.md too."""
    assert documented_fields("The film") == user_fields(Storyboard)
    assert documented_fields("A shot") == user_fields(Shot)
    assert documented_fields("The camera") == user_fields(Camera)
    assert documented_fields("A line of dialogue") == user_fields(DialogueLine)
    assert documented_fields("A character") == user_fields(Character)


def test_the_docs_stand_alone():
    """No page points outside the repository: not at a work tree, nor at notes kept elsewhere."""
    pages = [ROOT / "README.md", ROOT / "mkdocs.yml", *DOCS.rglob("*.md"), *DOCS.rglob("*.py")]
    for page in pages:
        text = page.read_text()
        for outside in ("/work/", "DESIGN.md", "shared/reference", "../shared"):
            assert outside not in text, f"{page.relative_to(ROOT)} mentions {outside}"
