"""Row conditions (``when=``): SQL over the ``old``/``new`` rows that decides what is captured.

A condition is SQL the app's developers write, like a CHECK constraint, so it
is not quoted; the capture function places it inside ``WHERE (...)``. What is
checked here is its shape: one expression, so that it cannot end the capture's
statement or reach outside its parentheses. Whether it is valid SQL for the
table is the database's to say, when ``flask db upgrade`` creates the trigger.
"""

from __future__ import annotations

import re

from .errors import InvalidTriggerSpecError

#: A trigger carries its condition as an argument; keep migrations readable.
MAX_CONDITION_CHARACTERS = 4000

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def check_condition(condition: object, where: str = "when=") -> str:
    """Return ``condition`` stripped if it is one SQL expression by its shape, else raise."""
    if not isinstance(condition, str):
        raise InvalidTriggerSpecError(f"{where} must be SQL text, got {condition!r}")
    text = condition.strip()
    if not text:
        raise InvalidTriggerSpecError(f"{where} is empty: give a SQL condition such as new.status <> 'draft'")
    if len(text) > MAX_CONDITION_CHARACTERS:
        raise InvalidTriggerSpecError(f"{where} is longer than {MAX_CONDITION_CHARACTERS} characters")
    if "\x00" in text:
        raise InvalidTriggerSpecError(f"{where} contains a NUL character")
    problem = _shape_problem(text)
    if problem:
        raise InvalidTriggerSpecError(f"{where} {text!r} is not one SQL expression: {problem}")
    return text


def _shape_problem(text: str) -> str | None:
    """Why ``text`` is not a single expression by its shape (quotes, comments, ``;``, parentheses)."""
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            escapes = i > 0 and text[i - 1] in "eE" and not _in_word(text, i - 1)
            end = _string_end(text, i, escapes)
            if end is None:
                return "a string literal is not closed"
            i = end
        elif char == '"':
            end = text.find('"', i + 1)
            while end != -1 and text.startswith('""', end):
                end = text.find('"', end + 2)
            if end == -1:
                return "a quoted identifier is not closed"
            i = end + 1
        elif char == "$" and (tag := _DOLLAR_TAG.match(text, i)) and not _in_word(text, i):
            end = text.find(tag.group(), tag.end())
            if end == -1:
                return "a dollar-quoted string is not closed"
            i = end + len(tag.group())
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end == -1 else end + 1
        elif text.startswith("/*", i):
            end = _comment_end(text, i)
            if end is None:
                return "a comment is not closed"
            i = end
        else:
            if char == ";":
                return "it contains ';'"
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    return "a ')' closes a parenthesis it did not open"
            i += 1
    return "a '(' is not closed" if depth else None


def _in_word(text: str, i: int) -> bool:
    """Whether ``text[i]`` continues an identifier (``a$1$`` is not a dollar quote)."""
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")


def _string_end(text: str, start: int, escapes: bool) -> int | None:
    """The index after the string literal opening at ``start``."""
    i = start + 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == "'":
            if text.startswith("''", i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return None


def _comment_end(text: str, start: int) -> int | None:
    """The index after the (possibly nested) block comment opening at ``start``."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return None
