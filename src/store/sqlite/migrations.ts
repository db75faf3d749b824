// Versioned schema. Each entry runs once, in order, inside a transaction; PRAGMA user_version records how far a
// database has come. Never edit a released entry: append a new one.

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE deploys (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    previous_version TEXT,
    stage TEXT NOT NULL,
    percent REAL,
    hosts TEXT NOT NULL,
    at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    changes TEXT NOT NULL
  ) STRICT;
  -- Correlation is one seek on this index: the deploys of (service, environment) around an alert's start.
  CREATE INDEX deploys_by_service_time ON deploys (service, environment, at);
  CREATE INDEX deploys_by_time ON deploys (at);

  CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms INTEGER,
    status TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    external_url TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (fingerprint, starts_at)
  ) STRICT;

  CREATE TABLE decisions (
    episode_id INTEGER PRIMARY KEY REFERENCES episodes (id),
    reason TEXT NOT NULL,
    sentence TEXT NOT NULL,
    service TEXT,
    environment TEXT NOT NULL,
    policy TEXT NOT NULL,
    deploy_id TEXT,
    suspects TEXT NOT NULL,
    targets TEXT NOT NULL,
    responders TEXT NOT NULL,
    notify TEXT NOT NULL,
    would_page TEXT NOT NULL,
    decided_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX decisions_by_deploy ON decisions (deploy_id) WHERE deploy_id IS NOT NULL;

  CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    group_key TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    target TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    resolved_at INTEGER,
    dedup_key TEXT NOT NULL UNIQUE,
    delivered TEXT NOT NULL DEFAULT '{}',
    UNIQUE (group_key, service, target, seq)
  ) STRICT;

  CREATE TABLE page_members (
    page_id INTEGER NOT NULL REFERENCES pages (id),
    episode_id INTEGER NOT NULL REFERENCES episodes (id),
    PRIMARY KEY (page_id, episode_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX page_members_by_episode ON page_members (episode_id);

  -- Work still to deliver. A row is retired only after its delivery is recorded, so a crash redelivers it.
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    UNIQUE (kind, ref)
  ) STRICT;
  CREATE INDEX outbox_by_due ON outbox (due_at);

  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    duration_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX deliveries_by_ref ON deliveries (kind, ref);

  -- People a page could not reach by name: authors without an email or a PagerDuty user. Counted, so the
  -- people section can be completed where it matters most.
  CREATE TABLE unmapped_people (
    who TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (who, reason)
  ) STRICT, WITHOUT ROWID;
  `,
  `
  -- Slack DMs: one per (episode, person told). delivered holds the Slack channel and ts once posted, so the
  -- message can be threaded under and updated.
  CREATE TABLE dms (
    id INTEGER PRIMARY KEY,
    episode_id INTEGER NOT NULL REFERENCES episodes (id),
    email TEXT NOT NULL,
    deploy_id TEXT,
    created_at INTEGER NOT NULL,
    delivered TEXT NOT NULL DEFAULT '{}',
    UNIQUE (episode_id, email)
  ) STRICT;
  CREATE INDEX dms_by_thread ON dms (email, deploy_id, created_at);
  -- What the person told changepager about a decision ("not my change"), as JSON.
  ALTER TABLE decisions ADD COLUMN feedback TEXT;
  `,
  `
  -- The timeline page (src/ui): the episodes that overlap a time range are found from their end (a firing
  -- episode has none yet, so it sorts last), and its service filter lists every service that ever alerted.
  CREATE INDEX episodes_by_end ON episodes (ifnull(ends_at_ms, 9223372036854775807), starts_at_ms);
  CREATE INDEX decisions_by_service ON decisions (service);
  `,
  `
  -- Change events of other kinds than deploys: feature flag flips and config changes, with what
  -- changed as JSON. subject is what a rollout is of within (service, environment): '' for code, the flag or
  -- config key otherwise; the canary gate walks the stage events of one rollout along this index.
  ALTER TABLE deploys ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy';
  ALTER TABLE deploys ADD COLUMN flag TEXT;
  ALTER TABLE deploys ADD COLUMN config TEXT;
  ALTER TABLE deploys ADD COLUMN subject TEXT NOT NULL DEFAULT '';
  CREATE INDEX deploys_by_rollout ON deploys (service, environment, kind, subject, at);
  -- /v1/stats and the hygiene gauges (computed at every scrape) read the episodes that started in a period.
  CREATE INDEX episodes_by_start ON episodes (starts_at_ms);
  `,
  `
  -- /readyz writes here: a database that can still be read but no longer written (disk full, a filesystem
  -- gone read-only) must take the instance out of rotation, since it can no longer accept an alert.
  CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL) STRICT;
  INSERT INTO heartbeat (id, at) VALUES (1, 0);
  `,
  `
  -- The timeline lists the first few changes and hosts of a deploy and says how many it has. A release can carry
  -- thousands (megabytes of JSON): counted once here, when stored, a view never parses them all to count them.
  ALTER TABLE deploys ADD COLUMN change_count INTEGER;
  ALTER TABLE deploys ADD COLUMN host_count INTEGER;
  UPDATE deploys SET change_count = json_array_length(changes), host_count = json_array_length(hosts);
  `,
  `
  -- Timeline-page logins (http/session.ts): a row per session, found by the SHA-256 of the id in its cookie.
  -- Logging out deletes the row; expired rows are deleted whenever a new session is stored.
  CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX sessions_by_expiry ON sessions (expires_at);
  `,
  `
  -- Deploy lists are paged in (at, received_at, id) order, newest first for GET /v1/deploys and oldest first for
  -- the hygiene numbers: one seek per page. It serves every query the (at) index served.
  CREATE INDEX deploys_by_time_order ON deploys (at, received_at, id);
  DROP INDEX deploys_by_time;
  `,
  `
  -- Rollbacks (core/rollback.ts): a rollback deploy says what it undid (JSON), and rolled_back indexes it the
  -- other way, so that a deploy's rollback is one seek for correlation's DMs, PagerDuty's note and the verdict.
  ALTER TABLE deploys ADD COLUMN rollback TEXT;
  -- Lead time for changes (core/stats.ts leadTimeMs), computed when the deploy is stored: /v1/stats and the
  -- gauges then read one number per deploy instead of parsing every change.
  ALTER TABLE deploys ADD COLUMN lead_ms INTEGER;
  CREATE TABLE rolled_back (
    deploy_id TEXT PRIMARY KEY,
    rollback_id TEXT NOT NULL,
    at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
  `
  -- An episode's evidence (core/evidence-route.ts DecisionEvidence, JSON): the judge's verdict and numbers for its
  -- deploy, and what they changed about the decision. Absent while none has been judged.
  ALTER TABLE decisions ADD COLUMN evidence TEXT;
  `,
  `
  -- A deploy reported by a code host's webhook (GitHub, GitLab): the repository, commit and delivery it came
  -- from, and how far finding its changes through the host's API got, as JSON.
  ALTER TABLE deploys ADD COLUMN source TEXT;
  -- The code host whose pull or merge request gets a comment about the page (core/plan.ts), when one does.
  ALTER TABLE pages ADD COLUMN comment_host TEXT;
  `,
  `
  -- Claiming (store.ts claimDue) reads each kind's oldest due rows in order from this index, with no sort: a
  -- claim runs after every commit that queues work, and the sort it replaced cost more than the rest of it.
  CREATE INDEX outbox_by_kind_due ON outbox (kind, due_at);
  `,
];
