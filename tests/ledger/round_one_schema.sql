-- The ledger schema of round 1 (soraflow/ledger.py before migrations), verbatim: a file made with it
-- must be upgraded in place.
CREATE TABLE IF NOT EXISTS clips (
    clip_key        TEXT PRIMARY KEY,
    shot_id         TEXT NOT NULL,
    part            INTEGER NOT NULL,
    model           TEXT NOT NULL,
    size            TEXT NOT NULL,
    seconds         INTEGER NOT NULL,
    prompt_sha256   TEXT NOT NULL,
    state           TEXT NOT NULL,      -- creating | submitted | completed | failed | lost
    owner           TEXT,
    create_started  REAL,
    lease_until     REAL,
    job_id          TEXT,
    submitted_at    REAL,
    job_status      TEXT,
    progress        INTEGER DEFAULT 0,
    error_code      TEXT,
    error_message   TEXT,
    local_path      TEXT,
    sha256          TEXT,
    storage_uri     TEXT,
    updated_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    clip_key    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    how         TEXT NOT NULL           -- created | reconciled
);
