"""Reading the SQL templates in ``sql/``: includes expanded, tokens filled.

Which template an operation uses, and what an include line names, is the
manifest's (``manifest.py``). Tokens look like ``@name@``; ``artifacts.py``
fills them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

from .core.errors import UnknownArtifactVersionError
from .manifest import MANIFEST, build_templates, check_version

_TOKEN = re.compile(r"@([a-z0-9_]+)@")
_INCLUDE = re.compile(r"^-- #include ([a-z_]+)\n", re.MULTILINE)


@cache
def _file(path: str) -> str:
    return resources.files(__package__).joinpath("sql", *f"{path}.sql".split("/")).read_text(encoding="utf-8")


def _expand(path: str, templates: Mapping[str, str], within: tuple[str, ...] = ()) -> str:
    """The template at ``path``, each include line replaced by the template it names."""

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in templates or templates[name] in (*within, path):
            raise UnknownArtifactVersionError(f"{path}.sql includes {name}, which cannot be resolved here")
        return _expand(templates[name], templates, (*within, path))

    return _INCLUDE.sub(include, _file(path))


@cache
def template_text(version: int, operation: str) -> str:
    """The text of ``operation`` of ``version``, includes expanded, tokens not yet filled."""
    templates = MANIFEST[check_version(version) - 1].templates
    if operation not in templates:
        raise UnknownArtifactVersionError(f"pgevents artifact version {version} has no {operation}")
    return _expand(templates[operation], build_templates(version, operation))


def render(version: int, operation: str, tokens: Mapping[str, str]) -> str:
    """``operation`` of ``version`` as one statement, every token filled."""
    text = _TOKEN.sub(lambda match: tokens[match.group(1)], template_text(version, operation))
    # Alembic adds the statement terminator itself.
    return text.strip().removesuffix(";")
