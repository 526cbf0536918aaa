"""The trigger arguments: what a trigger tells its capture function, defined once.

Layout: the delivery (``queue`` or ``broadcast``), ``images`` or ``keys``, the
number of primary-key columns, those columns, then (update triggers only) the
update filter columns. A trigger with a row condition (artifact 5 on) says
``images+when`` or ``keys+when`` instead, and carries the condition right
after the key columns. The ``create_triggers`` templates build the array with
``array_sql()``, the catalog reads it back with ``decode()``. The capture
functions of released artifacts read the same positions (``TG_ARGV[0]``...)
in their own released text, which cannot change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .identifiers import quote_literal, quote_text_array
from .spec import TriggerSpec

IMAGES = "images"
KEYS = "keys"
#: Appended to the mode of a trigger that carries a row condition.
WHEN = "+when"
#: Delivery, images or keys, key count: the arguments before the key columns.
_FIXED = 3

# The PL/pgSQL variables of create_triggers_begin.sql that the array reads:
# the table's primary key, resolved when the statement runs, and the event.
_KEY_COLUMNS = "key_columns"
_EVENT = "event"


class TriggerArguments(NamedTuple):
    """One trigger's arguments, decoded."""

    delivery: str
    images: bool
    key_columns: tuple[str, ...]
    filter_columns: tuple[str, ...] = ()
    condition: str | None = None

    def encode(self) -> tuple[str, ...]:
        """The arguments as the trigger carries them."""
        mode = (IMAGES if self.images else KEYS) + (WHEN if self.condition is not None else "")
        condition = () if self.condition is None else (self.condition,)
        keys = self.key_columns
        return (self.delivery, mode, str(len(keys)), *keys, *condition, *self.filter_columns)


def decode(arguments: Sequence[str]) -> TriggerArguments | None:
    """A trigger's arguments, or None if they do not follow the layout."""
    if len(arguments) <= _FIXED:
        return None
    delivery, mode, count = arguments[:_FIXED]
    conditional = mode.endswith(WHEN)
    mode = mode.removesuffix(WHEN)
    if mode not in (IMAGES, KEYS) or not (count.isascii() and count.isdigit()):
        return None
    end = _FIXED + int(count)
    if int(count) < 1 or len(arguments) < end + conditional:
        return None
    condition = arguments[end] if conditional else None
    rest = tuple(arguments[end + conditional :])
    return TriggerArguments(delivery, mode == IMAGES, tuple(arguments[_FIXED:end]), rest, condition)


def array_sql(spec: TriggerSpec) -> tuple[str, str]:
    """The SQL ``text[]`` of ``spec``'s trigger arguments, in two parts.

    The first part has the arguments every trigger carries, the second (which
    starts with ``||``) appends the update filter on update triggers only. They
    are two tokens because the released templates break the line between them
    at different indentations, which a single token's value cannot know.
    """
    mode = IMAGES if spec.images else KEYS
    fixed = [quote_literal(spec.delivery), quote_literal(mode)]
    conditions = ""
    if spec.when:
        # Each event's mode and condition (artifact 5 on; older artifacts never see one).
        modes = " ".join(f"WHEN {quote_literal(e)} THEN {quote_literal(mode + WHEN)}" for e, _ in spec.when)
        fixed[1] = f"CASE {_EVENT} {modes} ELSE {fixed[1]} END"
        arrays = " ".join(f"WHEN {quote_literal(e)} THEN ARRAY[{quote_literal(c)}]" for e, c in spec.when)
        conditions = f" || CASE {_EVENT} {arrays} ELSE '{{}}'::text[] END"
    head = f"ARRAY[{', '.join(fixed)}, cardinality({_KEY_COLUMNS})::text] || {_KEY_COLUMNS}{conditions}"
    update = quote_literal("update")
    tail = f"|| CASE WHEN {_EVENT} = {update} THEN {quote_text_array(spec.columns)}::text[] ELSE '{{}}' END"
    return head, tail
