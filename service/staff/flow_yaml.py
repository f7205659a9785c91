"""A flow's YAML changed in place, as a person would: ruamel's round trip keeps its comments,
quotes and layout, so a change made in a page reads in the YAML editor like one typed there."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.width = 4096  # keep each text on one line, as it was typed
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the shipped flows' layout
    return yaml


def loaded(text: str) -> Any:
    """The flow's data, as ruamel's containers (which keep comments and layout)."""
    return _round_trip().load(text)


def dumped(data: Any) -> str:
    """`data` (from `loaded`) as YAML again."""
    out = io.StringIO()
    _round_trip().dump(data, out)
    return out.getvalue().removeprefix("%YAML 1.2\n---\n")
