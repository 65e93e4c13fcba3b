"""Tables drawn by rich, each drawn once per content and console shape.

Laying out a table costs rich ~2 ms a row on this kind of machine: `lab status` at bank scale (nodes,
30 pods, health) was ~90 ms of drawing. The controller draws those tables for every `lab status`
(`lab/controller/show.py`), and they change only when the lab does, so the text drawn is kept, keyed by
everything that decides it: the rows, the columns, and the console's width, colours and terminal-ness.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

KEPT = 32  # tables kept (least recently printed dropped first)
_drawn: OrderedDict[tuple[object, ...], str] = OrderedDict()


def print_table(out: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
                no_wrap: bool = False) -> None:
    """A table with a left-aligned title; cells are rich markup."""
    key = (title, tuple(columns), tuple(tuple(row) for row in rows), no_wrap,
           out.width, out.height, out.color_system, out.is_terminal, out.no_color)
    text = _drawn.get(key)
    if text is None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, no_wrap=no_wrap)
        for row in rows:
            table.add_row(*row)
        with out.capture() as captured:
            out.print(table)
        text = captured.get()
        _drawn[key] = text
        if len(_drawn) > KEPT:
            _drawn.popitem(last=False)
    else:
        _drawn.move_to_end(key)
    out.file.write(text)


__all__ = ["print_table"]
