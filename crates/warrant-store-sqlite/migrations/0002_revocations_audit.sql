-- Warrant schema v2 (SQLite): revocations and the audit log. Times are integer milliseconds
-- since the Unix epoch, UTC, except the `time` of a revocation (a JWT NumericDate, seconds).
-- No foreign key to `tenants`: an audit record or a revocation must never fail to commit
-- because of the tenant it names (it may be unknown, or deleted since).

-- Every tenant's revocations share one cursor sequence. AUTOINCREMENT never hands out a value
-- twice, even after the highest rows are pruned, and `sqlite_sequence` keeps the highest one
-- assigned: the feed's head. SQLite has one writer at a time, so cursors follow commit order.
CREATE TABLE revocations (
    cursor      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT    NOT NULL,
    type        TEXT    NOT NULL CHECK (type IN ('jti', 'subject')),
    value       TEXT    NOT NULL, -- the jti, or the sub
    time        INTEGER NOT NULL, -- exp (jti) or not_before (subject), seconds
    created_at  INTEGER NOT NULL,
    prune_after INTEGER NOT NULL
);
CREATE INDEX revocations_tenant ON revocations (tenant, cursor);

-- Per tenant, the highest cursor pruned: a reader resuming below it may have missed entries.
CREATE TABLE revocations_pruned (
    tenant         TEXT    PRIMARY KEY,
    pruned_through INTEGER NOT NULL
);

-- The hash-chained records. `id` (the rowid: one above the highest, and pruning removes the
-- oldest records only) is the admin query's cursor; `at`, `subject`, `action` and `outcome`
-- repeat fields of `body` for queries. Every index costs pages in every group commit on the
-- token path, so there are three: the chain's (tenant, segment, seq), the query's (tenant, id)
-- and the per-subject one; time ranges filter the (tenant, id) walk.
CREATE TABLE audit_records (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    segment     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    subject     TEXT,
    action      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    body        TEXT    NOT NULL, -- canonical JSON, hashed byte for byte
    hash        TEXT    NOT NULL, -- hex SHA-256 of body
    key_version INTEGER NOT NULL, -- audit key that made mac
    mac         TEXT    NOT NULL,
    UNIQUE (tenant, segment, seq)
);
CREATE INDEX audit_records_tenant ON audit_records (tenant, id);
CREATE INDEX audit_records_subject ON audit_records (tenant, subject, id);

-- One row per segment (tenant × writer): its head, and the anchor pruning left behind.
CREATE TABLE audit_segments (
    tenant      TEXT    NOT NULL,
    segment     TEXT    NOT NULL,
    head_seq    INTEGER NOT NULL,
    head_hash   TEXT    NOT NULL,
    head_mac    TEXT    NOT NULL,
    key_version INTEGER NOT NULL,
    anchor_seq  INTEGER NOT NULL,
    anchor_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, segment)
);

-- Signed statements of a segment's hash at a seq.
CREATE TABLE audit_checkpoints (
    tenant  TEXT    NOT NULL,
    segment TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    hash    TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    jws     TEXT    NOT NULL,
    PRIMARY KEY (tenant, segment, seq)
);
