//! The SQL store: one schema served by SQLite (embedded, one file in the data directory) or
//! PostgreSQL (servers that must outlive one machine), chosen by URL and migrated on open.
//!
//! Queries are written once, in the SQL both engines accept (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`, `IS NOT DISTINCT FROM`), and run through sqlx's `Any` driver.

use crashscope_model::{ContainerKind, Event, PodState, RestartSample, Severity};
use jiff::Timestamp;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor, Row};
use std::path::Path;
use std::str::FromStr;
use tokio::sync::Mutex;

use crate::error::{Ctx, StoreError};
use crate::query::{EventQuery, PodChange, StoredEvent, Upsert};
use crate::Store;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store, on either backend.
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// Upserts read then write; one writer at a time keeps them atomic within the process
    /// (across processes, SQLite's `BEGIN IMMEDIATE` and PostgreSQL's unique keys do).
    pub(crate) write: Mutex<()>,
    /// Counts capture requests made through this store, so that a recorder in the same
    /// process wakes when one is made instead of polling for it.
    pub(crate) requests: tokio::sync::watch::Sender<u64>,
    /// Rows left out of listings because they could not be decoded.
    skipped: std::sync::atomic::AtomicU64,
    shown: String,
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite file `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqlStore, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::dir(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // Processes started together on a new store (a runtime and a command polling it)
        // would each create the schema: one does while the others wait on this lock, then
        // find it made. It is an flock of the directory, and the database file is opened here
        // only to create it: closing a descriptor of a database this process has open would
        // drop the POSIX locks SQLite holds on it.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let file = path.to_path_buf();
        let locked = tokio::task::spawn_blocking(move || {
            let d = std::fs::File::open(&dir)?;
            d.lock()?;
            if !file.exists() {
                // SQLite gives its -wal and -shm files the database file's mode: create it
                // private.
                crate::private::create_options()
                    .truncate(false)
                    .open(&file)?;
            }
            crate::private::file(&file)?;
            Ok::<_, std::io::Error>(d)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| StoreError::DataDir {
            path: shown.clone(),
            source,
        })?;
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let store = Self::connect_url(url.as_str(), Backend::Sqlite, 4, shown).await;
        drop(locked);
        store
    }

    /// Opens the store a URL names: `sqlite:///path/to/file.db`, `sqlite::memory:` or
    /// `postgres://user:password@host/database`, with libpq's `sslmode` (`prefer` by default;
    /// `require`, `verify-ca`, `verify-full` against the system's roots or `sslrootcert=FILE`)
    /// for managed databases that insist on TLS.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        let shown = crashscope_model::redact::url(url);
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if !rest.is_empty() && !rest.starts_with(':') {
                let path = rest.split('?').next().unwrap_or(rest);
                return Self::open(Path::new(path)).await;
            }
        }
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") {
                return Self::in_memory().await;
            }
            return Err(StoreError::Url {
                url: shown,
                detail: "a SQLite URL is sqlite:///path/to/file.db or sqlite::memory:".into(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::connect_url(url, Backend::Postgres, 8, shown).await;
        }
        Err(StoreError::Url {
            url: shown,
            detail: "expected sqlite:///path/to/file.db or postgres://user:password@host/db".into(),
        })
    }

    /// A private in-memory SQLite store (tests, one-shot commands).
    pub async fn in_memory() -> Result<SqlStore, StoreError> {
        // Each in-memory connection is its own database: keep exactly one.
        Self::connect_url("sqlite::memory:", Backend::Sqlite, 1, ":memory:".into()).await
    }

    /// The engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tools that need SQL the store does not offer (benchmarks'
    /// bulk loads).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The store's location for messages (a PostgreSQL password is not shown).
    pub fn location(&self) -> &str {
        &self.shown
    }

    async fn connect_url(
        url: &str,
        backend: Backend,
        conns: u32,
        shown: String,
    ) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let opts = AnyConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        // One plain connection first: the pool retries failed connections until its timeout,
        // which would turn "not a database" into a 30 s wait.
        let probe = sqlx::AnyConnection::connect_with(&opts).await;
        match probe {
            Ok(mut conn) => {
                let checked = match backend {
                    Backend::Sqlite => conn.execute("PRAGMA schema_version").await.map(|_| ()),
                    Backend::Postgres => Ok(()),
                };
                let _ = conn.close().await;
                checked.map_err(|source| StoreError::Open {
                    path: shown.clone(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: shown,
                    source,
                })
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(conns)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // The timeout first: switching to WAL needs a lock another
                        // process may hold. In WAL mode NORMAL survives a killed process (commits are in the
                        // WAL); only an OS crash can lose the last commits. FULL would fsync
                        // every event.
                        conn.execute(
                            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: shown.clone(),
                source,
            })?;
        Ok(SqlStore {
            pool,
            backend,
            write: Mutex::new(()),
            requests: tokio::sync::watch::Sender::new(0),
            skipped: std::sync::atomic::AtomicU64::new(0),
            shown,
        })
    }

    /// Rows left out of listings so far because they could not be decoded.
    pub fn rows_skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Decodes every row it can. A row that does not decode (written by an older or broken
    /// writer, or edited by hand) is logged, counted and left out: one bad row must never
    /// fail a listing or the rule engine that reads it.
    pub(crate) fn decoded<R, T>(
        &self,
        what: &'static str,
        rows: impl IntoIterator<Item = R>,
        decode: impl Fn(R) -> Result<T, StoreError>,
    ) -> Vec<T> {
        rows.into_iter()
            .filter_map(|r| match decode(r) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.skipped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(what, error = %e, "skipping a stored row that cannot be decoded");
                    None
                }
            })
            .collect()
    }

    /// Starts a write transaction: SQLite takes its write lock up front so two writers
    /// never deadlock upgrading read locks.
    pub(crate) async fn begin_write(
        &self,
        what: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.ctx(what),
            Backend::Postgres => self.pool.begin().await.ctx(what),
        }
    }
}

impl SqlStore {
    /// Stores a custom event; see [`crate::events`]. Returns it and whether it is new (false
    /// when the idempotency key was seen before).
    pub async fn insert_custom_event(
        &self,
        ev: &Event,
        idempotency_key: Option<&str>,
    ) -> Result<(StoredEvent, bool), StoreError> {
        let items = [(ev.clone(), idempotency_key.map(str::to_string))];
        let mut out = crate::events::insert_custom(self, &items).await?;
        out.pop().ok_or(StoreError::Conflict { what: "event" })
    }

    /// Stores several custom events in one transaction; see [`SqlStore::insert_custom_event`].
    pub async fn insert_custom_events(
        &self,
        items: &[(Event, Option<String>)],
    ) -> Result<Vec<(StoredEvent, bool)>, StoreError> {
        crate::events::insert_custom(self, items).await
    }

    /// One event by id.
    pub async fn event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        crate::events::get(self, id).await
    }

    /// The newest matching events, counted by each field and placed in time (see
    /// [`crate::FeedSample`]).
    pub async fn event_sample(
        &self,
        q: &EventQuery,
        top: usize,
    ) -> Result<crate::FeedSample, StoreError> {
        crate::events::sample(self, q, top).await
    }
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn ts(v: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(v).map_err(|e| StoreError::Corrupt {
        what: "timestamp",
        detail: e.to_string(),
    })
}

pub(crate) fn rank(s: Severity) -> i64 {
    s as i64
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    // Model values are plain data; serializing them to JSON cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

impl Store for SqlStore {
    async fn upsert_event(&self, ev: &Event) -> Result<Upsert, StoreError> {
        crate::events::upsert(self, ev).await
    }

    async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        crate::events::list(self, q).await
    }

    async fn record_pod(&self, at: Timestamp, pod: &PodState) -> Result<PodChange, StoreError> {
        let _guard = self.write.lock().await;
        let mut tx = self.begin_write("begin pod record").await?;
        let last: Option<String> = sqlx::query_scalar(
            "SELECT state FROM pod_states WHERE namespace = $1 AND name = $2 AND uid IS NOT DISTINCT FROM $3 \
             AND cluster IS NOT DISTINCT FROM $4 ORDER BY observed_at DESC, id DESC LIMIT 1",
        )
        .bind(&pod.namespace)
        .bind(&pod.name)
        .bind(&pod.uid)
        .bind(&pod.cluster)
        .fetch_optional(&mut *tx)
        .await
        .ctx("find pod state")?;
        let previous: Option<PodState> = last
            .as_deref()
            .map(|s| from_json("pod state", s))
            .transpose()?;
        let mut change = PodChange::default();
        if previous.as_ref() != Some(pod) {
            sqlx::query(
                "INSERT INTO pod_states (namespace, name, uid, observed_at, phase, restarts, state, \
                 cluster) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            )
            .bind(&pod.namespace)
            .bind(&pod.name)
            .bind(&pod.uid)
            .bind(ms(at))
            .bind(&pod.phase)
            .bind(i64::from(pod.restarts()))
            .bind(json(pod))
            .bind(&pod.cluster)
            .execute(&mut *tx)
            .await
            .ctx("insert pod state")?;
            change.stored = true;
        }
        for c in &pod.containers {
            let before = previous
                .as_ref()
                .and_then(|p| p.container(&c.name))
                .map(|p| p.restart_count);
            let rose = match before {
                Some(b) => c.restart_count > b,
                None => true,
            };
            if !rose {
                continue;
            }
            let sample = RestartSample::of(at, pod, c);
            sqlx::query(
                "INSERT INTO restart_samples (namespace, pod, pod_uid, container, container_kind, \
                 workload_kind, workload_name, observed_at, restart_count, last_reason, \
                 last_exit_code, last_finished_at, cluster) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
            )
            .bind(&sample.namespace)
            .bind(&sample.pod)
            .bind(&sample.pod_uid)
            .bind(&sample.container)
            .bind(json(&sample.container_kind).trim_matches('"').to_string())
            .bind(&sample.workload_kind)
            .bind(&sample.workload_name)
            .bind(ms(at))
            .bind(i64::from(sample.restart_count))
            .bind(&sample.last_reason)
            .bind(sample.last_exit_code)
            .bind(sample.last_finished_at.map(ms))
            .bind(&sample.cluster)
            .execute(&mut *tx)
            .await
            .ctx("insert restart sample")?;
            change.restarts.push(sample);
        }
        tx.commit().await.ctx("commit pod record")?;
        Ok(change)
    }

    async fn pod_history(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<(Timestamp, PodState)>, StoreError> {
        let rows = sqlx::query(
            "SELECT observed_at, state FROM pod_states WHERE namespace = $1 AND name = $2 \
             ORDER BY observed_at, id",
        )
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .ctx("pod history")?;
        Ok(self.decoded("pod state", &rows, |r| {
            let at: i64 = r.try_get("observed_at").ctx("pod history")?;
            let state: String = r.try_get("state").ctx("pod history")?;
            Ok((ts(at)?, from_json("pod state", &state)?))
        }))
    }

    async fn put_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO objects (kind, namespace, name, body, updated_at) VALUES ($1,$2,$3,$4,$5) \
             ON CONFLICT(kind, namespace, name) DO UPDATE SET body = excluded.body, \
             updated_at = excluded.updated_at",
        )
        .bind(kind)
        .bind(namespace)
        .bind(name)
        .bind(body.to_string())
        .bind(ms(Timestamp::now()))
        .execute(&self.pool)
        .await
        .ctx("put object")?;
        Ok(())
    }

    async fn delete_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM objects WHERE kind = $1 AND namespace = $2 AND name = $3")
            .bind(kind)
            .bind(namespace)
            .bind(name)
            .execute(&self.pool)
            .await
            .ctx("delete object")?;
        Ok(r.rows_affected() > 0)
    }

    async fn objects(&self, kind: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT body FROM objects WHERE kind = $1 ORDER BY namespace, name")
                .bind(kind)
                .fetch_all(&self.pool)
                .await
                .ctx("list objects")?;
        Ok(self.decoded("object", &rows, |b| from_json("object", b)))
    }

    async fn restart_samples(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RestartSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM restart_samples WHERE observed_at >= $1 AND observed_at < $2 \
             ORDER BY observed_at, id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await
        .ctx("restart samples")?;
        Ok(self.decoded("restart sample", &rows, |r| {
            let g = |c: &str| r.try_get::<Option<String>, _>(c).ctx("restart samples");
            let kind: String = r.try_get("container_kind").ctx("restart samples")?;
            let count: i64 = r.try_get("restart_count").ctx("restart samples")?;
            let finished: Option<i64> = r.try_get("last_finished_at").ctx("restart samples")?;
            Ok(RestartSample {
                cluster: g("cluster")?,
                namespace: r.try_get("namespace").ctx("restart samples")?,
                pod: r.try_get("pod").ctx("restart samples")?,
                pod_uid: g("pod_uid")?,
                container: r.try_get("container").ctx("restart samples")?,
                container_kind: from_json::<ContainerKind>(
                    "container kind",
                    &format!("\"{kind}\""),
                )?,
                workload_kind: g("workload_kind")?,
                workload_name: g("workload_name")?,
                observed_at: ts(r.try_get("observed_at").ctx("restart samples")?)?,
                restart_count: u32::try_from(count).unwrap_or(0),
                last_reason: g("last_reason")?,
                last_exit_code: r.try_get("last_exit_code").ctx("restart samples")?,
                last_finished_at: finished.map(ts).transpose()?,
            })
        }))
    }
}
