"""The trigger-argument layout: what the SQL writes is what the catalog reads back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from alembic_ops import CURRENT_VERSION, TriggerSpec
from alembic_ops.core.arguments import TriggerArguments, decode
from alembic_ops.core.catalog import read_installed
from tests.pg import RunOps, execute


@pytest.mark.parametrize(
    "arguments",
    [
        TriggerArguments("queue", False, ("id",)),
        TriggerArguments("broadcast", True, ("a", "b"), ("c",)),
        TriggerArguments("queue", True, ("it's", 'x"y'), ("1", "")),
    ],
)
def test_decode_reads_what_encode_writes(arguments: TriggerArguments) -> None:
    assert decode(arguments.encode()) == arguments


@pytest.mark.parametrize(
    "raw",
    [
        (),
        ("queue", "keys", "1"),
        ("queue", "rows", "1", "id"),
        ("queue", "keys", "0", "id"),
        ("queue", "keys", "x", "id"),
        ("queue", "keys", "²", "id"),
        ("queue", "keys", "3", "a", "b"),
    ],
)
def test_decode_refuses_what_the_layout_does_not_describe(raw: tuple[str, ...]) -> None:
    assert decode(raw) is None


def test_triggers_the_sql_creates_decode_to_their_spec(run_ops: RunOps, engine: sa.Engine, dsn: str) -> None:
    execute(dsn, "CREATE TABLE pair (a int, b int, c int, PRIMARY KEY (b, a))")
    spec = TriggerSpec("pair", events=("insert", "update"), columns=("c",), delivery="broadcast", images=True)
    run_ops(
        lambda op: (
            op.install_pgevents(version=CURRENT_VERSION),
            op.create_pgevent_trigger(
                "pair",
                events=spec.events,
                columns=spec.columns,
                delivery="broadcast",
                images=True,
                version=CURRENT_VERSION,
            ),
        )
    )
    with engine.connect() as conn:
        (table,) = read_installed(conn, "public").tables.values()
    assert [decode(trigger.arguments) for trigger in table.triggers] == [
        TriggerArguments("broadcast", True, ("b", "a")),
        TriggerArguments("broadcast", True, ("b", "a"), ("c",)),
    ]
    assert table.spec() == spec
