"""Hostile configs for the sandbox tests: JavaScript templates with placeholders."""

from __future__ import annotations

import json


def fill(template: str, **values: object) -> str:
    """`template` with each placeholder NAME replaced by its value as a JSON literal."""
    text = template
    for name, value in values.items():
        text = text.replace(name, json.dumps(value))
    return text
