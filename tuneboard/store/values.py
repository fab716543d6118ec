"""Query results as Python values, for every type DuckDB has.

Arrow's conversion to Python fails on values Python's `datetime` cannot hold:
`'infinity'::TIMESTAMP`, `-infinity`, dates past year 9999, and lists or structs holding
them. Such a column is given as DuckDB's own text for its values instead (`infinity`,
`294000-01-01 00:00:00`), as the DuckDB shell shows them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def column_values(cur: duckdb.DuckDBPyConnection, column: pa.ChunkedArray) -> list[Any]:
    """The column's values as Python objects; as DuckDB's text where Python has no type."""
    # Imported here: the store is imported at the app's start, and pyarrow (with numpy)
    # takes ~0.2 s, which the runs table would wait for. A query result has it loaded anyway.
    import pyarrow as pa

    try:
        values: list[Any] = column.to_pylist()
        return values
    except (OverflowError, ValueError, pa.ArrowException):
        # Read back from the Arrow data already fetched: the user's query is not run again.
        texts = cur.from_arrow(pa.table({"v": column})).project('"v"::VARCHAR').fetchall()
        return [text for (text,) in texts]
