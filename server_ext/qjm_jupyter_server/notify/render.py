"""The Jinja2 environment for emails and the small public pages.

An operator's `templates_dir` is searched before the built-in templates, so any one
file can be overridden. HTML templates are autoescaped: labels, group names and IBM
error text are user- or IBM-controlled. Text templates are not HTML, so they are not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

BUILTIN_DIR = Path(__file__).with_name("templates")


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith((".html.j2", ".html"))  # type: ignore[union-attr]


@lru_cache(maxsize=8)
def environment(templates_dir: str = "") -> Environment:
    loaders = [FileSystemLoader(templates_dir)] if templates_dir else []
    loaders.append(FileSystemLoader(str(BUILTIN_DIR)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=StrictUndefined,  # a typo in an override fails loudly, not as a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def render(templates_dir: str, name: str, context: dict[str, Any]) -> str:
    return environment(templates_dir).get_template(name).render(**context)
