"""Writing an export: every file rendered first, then written, so a bad input writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.domain.errors import InvalidSpec


def render(content: Any) -> str:
    """YAML for objects (in their own key order), text as given."""
    if isinstance(content, str):
        return content
    import yaml

    if isinstance(content, list):
        return yaml.safe_dump_all(content, sort_keys=False)
    return yaml.safe_dump(content, sort_keys=False)


def write_tree(out: Path, files: dict[str, Any]) -> list[Path]:
    """Write ``files`` (relative path → object or text) under ``out``; return the paths written."""
    rendered = {relative: render(content) for relative, content in files.items()}
    if out.exists() and not out.is_dir():
        raise InvalidSpec(f"{out} exists and is not a folder", hint="Pass --out a folder (it is created when missing).")
    written = []
    for relative, text in rendered.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
