"""The database schema, as an ordered list of migrations recorded in `_migrations`.

Never edit a migration once released: add a new one at the end of `MIGRATIONS`. Table and
column names are a public contract (users query them with SQL).
"""

from __future__ import annotations

import duckdb

M001_INITIAL = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,     -- unique id of the run
    experiment VARCHAR,             -- name of the experiment in tuneboard.toml
    status VARCHAR,                 -- queued, running, completed, failed, cancelled, interrupted
    config JSON,                    -- the resolved experiment configuration
    created_at TIMESTAMPTZ,         -- when the run was created (queued)
    started_at TIMESTAMPTZ,         -- when it last started running
    finished_at TIMESTAMPTZ,        -- when it ended (any finished status)
    device VARCHAR,                 -- where it ran: cpu, cuda:0 ...
    error VARCHAR,                  -- why it failed or was interrupted
    headline VARCHAR,               -- metric name shown in run lists
    headline_value DOUBLE,          -- latest value of the headline metric
    sweep_id VARCHAR,               -- id shared by the runs of one sweep
    owner_host VARCHAR,             -- host name of the process running it
    owner_pid INTEGER,              -- pid of the process running it
    owner_started DOUBLE            -- its create time: tells a dead owner from a reused pid
);

CREATE TABLE stages (
    run_id VARCHAR,                 -- the run the stage belongs to
    stage_index INTEGER,            -- 0-based position in the pipeline
    name VARCHAR,                   -- stage name in the pipeline
    plugin VARCHAR,                 -- name of the stage plugin
    params JSON,                    -- the stage's resolved parameters
    status VARCHAR,                 -- same values as runs.status
    started_at TIMESTAMPTZ,         -- when the stage started
    finished_at TIMESTAMPTZ,        -- when it ended
    steps BIGINT,                   -- completed progress units
    total_steps BIGINT,             -- total progress units, NULL when unknown
    best_metric VARCHAR,            -- metric the stage monitored for its best checkpoint
    best_step BIGINT,               -- step of the best checkpoint
    best_value DOUBLE,              -- value of best_metric at best_step
    PRIMARY KEY (run_id, stage_index)
);

-- Long format, and deliberately without a key or index: indexes slow ingest down.
CREATE TABLE metrics (
    run_id VARCHAR,                 -- the run that logged the point
    stage_index INTEGER,            -- the stage that logged it
    step BIGINT,                    -- optimisation step
    name VARCHAR,                   -- metric name, such as train/loss or validation/accuracy
    value DOUBLE,                   -- the value
    wall_time TIMESTAMPTZ           -- when it was logged
);

CREATE TABLE events (
    run_id VARCHAR,                 -- the run the event is about
    stage_index INTEGER,            -- the stage, NULL for run-level events
    time TIMESTAMPTZ,               -- when it happened
    level VARCHAR,                  -- debug, info, warning, error
    message VARCHAR                 -- what happened, one line
);

CREATE TABLE artifacts (
    run_id VARCHAR,                 -- the run that made the artifact
    stage_index INTEGER,            -- the stage that made it
    kind VARCHAR,                   -- checkpoint, model, predictions, ...
    path VARCHAR,                   -- absolute path of the file or folder
    bytes BIGINT,                   -- size (a folder: total size of its files)
    sha256 VARCHAR,                 -- hex digest (a folder: over its files sorted by relative path)
    created_at TIMESTAMPTZ          -- when it was recorded
);
"""

# Cancelling a run owned by another process: the owner polls this flag for its active runs.
M002_CANCEL_REQUESTS = """
ALTER TABLE runs ADD COLUMN cancel_requested BOOLEAN DEFAULT false;  -- cancel asked from elsewhere
"""

# What is needed to reproduce a run (see tuneboard/engine/provenance.py): seed, resolved parameters,
# package versions, data file hashes, git commit, sweep values.
M003_PROVENANCE = """
ALTER TABLE runs ADD COLUMN provenance JSON;  -- reproducibility record, written at creation
"""

# What generative models wrote: a stage's outputs for prompts of a split (see
# `tuneboard.sdk.tasks.Generation`), at each evaluation during training or once after it.
# Like `metrics`, without a key or index, so logging stays fast.
M004_GENERATIONS = """
CREATE TABLE generations (
    run_id VARCHAR,                 -- the run whose model generated the output
    stage_index INTEGER,            -- the stage that generated it
    step BIGINT,                    -- training step of the evaluation; NULL outside training
    split VARCHAR,                  -- where the prompt came from: validation, test, a file name
    idx BIGINT,                     -- the prompt's row in that split, from 0
    prompt VARCHAR,                 -- the prompt
    output VARCHAR,                 -- what the model generated
    reference VARCHAR,              -- the expected output, NULL when unknown
    created_at TIMESTAMPTZ          -- when it was recorded
);
"""

# The run-wide step axis (see docs/sql.md): each stage's steps continue where the previous
# stage's ended. Derived, never stored, so a resumed stage (whose later points are deleted) and
# an imported run place themselves. A stage's length is its highest logged step; a stage that
# logged nothing takes no room. Its epochs come from the last `train/epoch` it logged. A stage
# with metrics but no row in `stages` (written by hand) is placed too, named `stage N`.
STAGE_SPANS = """
WITH logged AS (
    SELECT run_id, stage_index,
           greatest(max(step), 0) AS steps,
           arg_max(value, step) FILTER (WHERE name = 'train/epoch') AS epochs,
           arg_max(step, step) FILTER (WHERE name = 'train/epoch') AS epoch_step
    FROM metrics GROUP BY run_id, stage_index
),
spans AS (
    SELECT run_id, stage_index,
           coalesce(s.name, 'stage ' || stage_index) AS name,
           coalesce(s.plugin, '') AS plugin,
           coalesce(s.status, '') AS status,
           coalesce(l.steps, 0) AS steps,
           coalesce(l.epochs, 0) AS epochs,
           l.epochs / nullif(l.epoch_step, 0) AS epochs_per_step,
           s.best_metric, s.best_step, s.best_value
    FROM stages s FULL JOIN logged l USING (run_id, stage_index)
)
SELECT run_id,                      -- the run
       stage_index,                 -- the stage
       name,                        -- its name in the pipeline
       plugin,                      -- its plugin
       status,                      -- its status
       coalesce(sum(steps) OVER before, 0)::BIGINT AS first_step,  -- run-wide step where it starts
       (coalesce(sum(steps) OVER before, 0) + steps)::BIGINT AS last_step,  -- ... where it ends
       coalesce(sum(epochs) OVER before, 0)::DOUBLE AS first_epoch,  -- run-wide epoch at start
       (coalesce(sum(epochs) OVER before, 0) + epochs)::DOUBLE AS last_epoch,  -- ... at end
       epochs_per_step,             -- epochs per step in it, NULL when it logged no train/epoch
       best_metric,                 -- the metric it monitored
       (coalesce(sum(steps) OVER before, 0) + best_step)::BIGINT AS best_run_step,  -- run-wide
       best_value                   -- the best value
FROM spans
WINDOW before AS (PARTITION BY run_id ORDER BY stage_index
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
"""

M005_RUN_STEPS = f"""
CREATE VIEW stage_spans AS
{STAGE_SPANS};

CREATE VIEW run_metrics AS
SELECT m.run_id,                    -- the run that logged the point
       m.stage_index,               -- the stage that logged it
       s.name AS stage,             -- that stage's name
       m.step,                      -- the step within the stage
       coalesce(s.first_step, 0) + m.step AS run_step,  -- the step on the run-wide axis
       coalesce(s.first_epoch, 0) + coalesce(m.step * s.epochs_per_step, 0) AS run_epoch,
       m.name,                      -- the metric
       m.value,                     -- its value
       m.wall_time                  -- when it was logged
FROM metrics m LEFT JOIN stage_spans s USING (run_id, stage_index);
"""

# Lineage (see docs/sql.md): which model each stage and each run started from. A run whose
# model is another run's export or checkpoint records that run in `run_parents` when it is
# created; the model handed from stage to stage inside a run is derived, never stored.
# `lineage` gives both as edges, parent -> child.
M006_LINEAGE = """
CREATE TABLE run_parents (
    run_id VARCHAR,                 -- the run whose model came from another run
    parent_run_id VARCHAR,          -- the run that made that model
    parent_stage_index INTEGER,     -- the stage of the parent that recorded it
    kind VARCHAR,                   -- the artifact's kind: model (an export) or checkpoint
    artifact_path VARCHAR,          -- the artifact's path, as the parent recorded it
    artifact_sha256 VARCHAR,        -- its hash, as the parent recorded it
    source VARCHAR,                 -- the model source as written: run:ID[/STAGE] or a path
    created_at TIMESTAMPTZ          -- when it was recorded (the child's creation)
);

CREATE VIEW lineage AS
WITH handed AS (
    SELECT run_id, stage_index,
           arg_max(kind, (created_at, rowid)) AS kind,
           arg_max(path, (created_at, rowid)) AS path,
           arg_max(sha256, (created_at, rowid)) AS sha256
    FROM artifacts WHERE kind IN ('checkpoint', 'model')
    GROUP BY run_id, stage_index
),
inside AS (
    SELECT run_id, stage_index, name,
           lead(stage_index) OVER next AS next_index,
           lead(name) OVER next AS next_name
    FROM stages
    WINDOW next AS (PARTITION BY run_id ORDER BY stage_index)
)
SELECT 'stage' AS link,             -- stage: inside a run; run: across runs
       i.run_id AS parent_run_id,   -- the run the model came from
       i.stage_index AS parent_stage_index,  -- the stage that handed it on
       i.name AS parent_stage,      -- that stage's name
       i.run_id AS child_run_id,    -- the run that started from it
       i.next_index AS child_stage_index,  -- the stage that started from it
       i.next_name AS child_stage,  -- that stage's name
       h.kind,                      -- checkpoint, model, or NULL (handed on in memory)
       h.path AS artifact_path,     -- the artifact's path, NULL without one
       h.sha256 AS artifact_sha256  -- its hash
FROM inside i LEFT JOIN handed h USING (run_id, stage_index)
WHERE i.next_index IS NOT NULL
UNION ALL
SELECT 'run', p.parent_run_id, p.parent_stage_index, s.name, p.run_id, 0, c.name,
       p.kind, p.artifact_path, p.artifact_sha256
FROM run_parents p
LEFT JOIN stages s ON s.run_id = p.parent_run_id AND s.stage_index = p.parent_stage_index
LEFT JOIN stages c ON c.run_id = p.run_id AND c.stage_index = 0;
"""

# The queue, steered by people (see docs/running.md#the-queue): the order of queued runs,
# holds and pins, and a whole-queue pause. Every process that runs runs obeys them. A run
# without a row waits in creation order after the placed ones; a row goes when its run
# leaves the queue (starts, or ends before starting).
M007_QUEUE = """
CREATE TABLE queue (
    run_id VARCHAR PRIMARY KEY,     -- a queued run
    position INTEGER,               -- its place, first 1; NULL: after the placed runs, by age
    held BOOLEAN DEFAULT false,     -- true: it stays queued until released
    device VARCHAR,                 -- pinned: it starts only on this device (cpu, cuda:0 ...)
    waiting VARCHAR                 -- why it waits, as its process last saw it
);

CREATE TABLE queue_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row
    paused BOOLEAN NOT NULL,        -- true: no queued run starts, in any process
    changed_at TIMESTAMPTZ          -- when it was last paused or resumed
);
"""

# Each run's output (see tuneboard/engine/capture.py): what its threads printed, Python
# warnings and logging records, one row per line or message, capped per run. Like `metrics`,
# without a key or index, so writing stays fast.
M008_LOGS = """
CREATE TABLE logs (
    run_id VARCHAR,                 -- the run whose thread wrote it
    stage_index INTEGER,            -- the stage running then, NULL outside a stage
    line BIGINT,                    -- its place in the run's log from 0 (again from 0 on resume)
    time TIMESTAMPTZ,               -- when it was written
    stream VARCHAR,                 -- stdout, stderr, warnings, logging, tuneboard (lines dropped)
    level VARCHAR,                  -- debug, info, warning, error or critical (prints: info)
    source VARCHAR,                 -- the logger's name or the warning's category; '' for prints
    message VARCHAR                 -- the line, or the whole warning or record (may span lines)
);
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_cancel_requests", M002_CANCEL_REQUESTS),
    ("m003_provenance", M003_PROVENANCE),
    ("m004_generations", M004_GENERATIONS),
    ("m005_run_steps", M005_RUN_STEPS),
    ("m006_lineage", M006_LINEAGE),
    ("m007_queue", M007_QUEUE),
    ("m008_logs", M008_LOGS),
]


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded in `_migrations`, in order; return their names.

    Each migration runs in its own transaction together with its record, so a failed one
    leaves nothing behind.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    applied = {name for (name,) in conn.execute("SELECT name FROM _migrations").fetchall()}
    done = []
    for name, sql in MIGRATIONS:
        if name in applied:
            continue
        conn.begin()
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO _migrations VALUES (?, now())", [name])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        done.append(name)
    return done
