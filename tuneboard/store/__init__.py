"""The project database: one DuckDB file holding every run, stage, metric, event,
artifact and generation.

The rest of tuneboard uses only `Store` (and `run_query` / `start_query` for user SQL).
"""

from tuneboard.store.schema import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED_STATUSES,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STATUSES,
    X_AXES,
    ArtifactRow,
    EventRow,
    GenerationRow,
    RunLink,
    RunRow,
    RunStatus,
    Series,
    StageLink,
    StageRow,
    StageSpan,
    StageValues,
    XAxis,
)
from tuneboard.store.sql import QueryJob, QueryResult, check_read_only, run_query, start_query
from tuneboard.store.store import INTERRUPTED_ERROR, Store

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINISHED_STATUSES",
    "INTERRUPTED",
    "INTERRUPTED_ERROR",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "X_AXES",
    "ArtifactRow",
    "EventRow",
    "GenerationRow",
    "QueryJob",
    "QueryResult",
    "RunLink",
    "RunRow",
    "RunStatus",
    "Series",
    "StageLink",
    "StageRow",
    "StageSpan",
    "StageValues",
    "Store",
    "XAxis",
    "check_read_only",
    "run_query",
    "start_query",
]
