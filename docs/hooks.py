"""MkDocs hook: the component reference is generated from EEAP's registries at each build (``eeap.cli``'s
``components_markdown``), so it lists every registered name and cannot drift from the code."""

from __future__ import annotations

from typing import Any

REFERENCE = "reference/components.md"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from eeap.cli import components_markdown

    files.append(File.generated(config, REFERENCE, content=components_markdown()))
    return files
