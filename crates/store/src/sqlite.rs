//! The embedded store: one SQLite file (WAL mode) in the data directory, migrated on open.

use crashscope_model::{
    ContainerKind, Event, EventType, ObjectRef, PodState, RestartSample, Scope, Severity,
};
use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use tokio::sync::Mutex;

use crate::error::{Ctx, StoreError};
use crate::query::{EventQuery, PodChange, StoredEvent, Upsert};
use crate::Store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite backend.
pub struct SqliteStore {
    pool: SqlitePool,
    /// Upserts read then write; one writer at a time keeps them atomic within the process.
    write: Mutex<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives a killed process (commits are in the WAL); only an
            // OS crash can lose the last commits. FULL would fsync every event.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        Self::connect(opts, 4, shown).await
    }

    /// A private in-memory store (tests, one-shot commands).
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(|source| {
            StoreError::Open {
                path: ":memory:".into(),
                source,
            }
        })?;
        // Each in-memory connection is its own database: keep exactly one.
        Self::connect(opts, 1, ":memory:".into()).await
    }

    async fn connect(
        opts: SqliteConnectOptions,
        conns: u32,
        shown: String,
    ) -> Result<SqliteStore, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(conns)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: shown,
                source,
            })?;
        Ok(SqliteStore {
            pool,
            write: Mutex::new(()),
        })
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn ts(v: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(v).map_err(|e| StoreError::Corrupt {
        what: "timestamp",
        detail: e.to_string(),
    })
}

fn rank(s: Severity) -> i64 {
    s as i64
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Model values are plain data; serializing them to JSON cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).ctx("read event");
    let severity: String = get_s("severity")?;
    let type_: String = get_s("type")?;
    let involved: Option<String> = row.try_get("involved").ctx("read event")?;
    let count: i64 = row.try_get("count").ctx("read event")?;
    Ok(StoredEvent {
        id: row.try_get("id").ctx("read event")?,
        event: Event {
            source: get_s("source")?,
            reporter: row.try_get("reporter").ctx("read event")?,
            reason: get_s("reason")?,
            message: get_s("message")?,
            event_type: EventType::from_api(Some(&type_)),
            severity: Severity::from_str(&severity).map_err(|e| StoreError::Corrupt {
                what: "event severity",
                detail: e.to_string(),
            })?,
            scope: from_json::<Scope>("event scope", &get_s("scope")?)?,
            involved: involved
                .map(|s| from_json::<ObjectRef>("event involved object", &s))
                .transpose()?,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            first_seen: ts(row.try_get("first_seen").ctx("read event")?)?,
            last_seen: ts(row.try_get("last_seen").ctx("read event")?)?,
            source_id: row.try_get("source_id").ctx("read event")?,
        },
    })
}

impl Store for SqliteStore {
    async fn upsert_event(&self, ev: &Event) -> Result<Upsert, StoreError> {
        let _guard = self.write.lock().await;
        let key = ev.dedup_key();
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("begin upsert")?;
        let existing = sqlx::query(
            "SELECT id, count, last_seen, first_seen, source_id FROM events WHERE dedup_key = ?",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .ctx("find event")?;
        let outcome = match existing {
            None => {
                let id = sqlx::query(
                    "INSERT INTO events (dedup_key, source, reporter, reason, message, type, \
                     severity, severity_rank, namespace, node, workload_kind, workload_name, pod, \
                     container, scope, involved, count, first_seen, last_seen, source_id) \
                     VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                )
                .bind(&key)
                .bind(&ev.source)
                .bind(&ev.reporter)
                .bind(&ev.reason)
                .bind(&ev.message)
                .bind(ev.event_type.as_str())
                .bind(ev.severity.as_str())
                .bind(rank(ev.severity))
                .bind(&ev.scope.namespace)
                .bind(&ev.scope.node)
                .bind(ev.scope.workload.as_ref().map(|w| w.kind.clone()))
                .bind(ev.scope.workload.as_ref().map(|w| w.name.clone()))
                .bind(&ev.scope.pod)
                .bind(&ev.scope.container)
                .bind(json(&ev.scope))
                .bind(ev.involved.as_ref().map(json))
                .bind(i64::from(ev.count))
                .bind(ms(ev.first_seen))
                .bind(ms(ev.last_seen))
                .bind(&ev.source_id)
                .fetch_one(&mut *tx)
                .await
                .ctx("insert event")?
                .try_get::<i64, _>(0)
                .ctx("insert event")?;
                Upsert::Inserted { id }
            }
            Some(row) => {
                let id: i64 = row.try_get("id").ctx("find event")?;
                let count: i64 = row.try_get("count").ctx("find event")?;
                let last: i64 = row.try_get("last_seen").ctx("find event")?;
                let first: i64 = row.try_get("first_seen").ctx("find event")?;
                let source_id: Option<String> = row.try_get("source_id").ctx("find event")?;
                let incoming = i64::from(ev.count);
                let later = ms(ev.last_seen) > last;
                // The same Event object updated in place carries its running total; a new
                // object for the same occurrence (the old one expired) starts counting again.
                let new_count = if source_id.is_some() && source_id == ev.source_id {
                    count.max(incoming)
                } else if later {
                    count + incoming
                } else {
                    count
                };
                if new_count == count && !later {
                    Upsert::Unchanged { id }
                } else {
                    sqlx::query(
                        "UPDATE events SET count = ?, last_seen = ?, first_seen = ?, \
                         source_id = ?, severity = ?, severity_rank = ? WHERE id = ?",
                    )
                    .bind(new_count)
                    .bind(last.max(ms(ev.last_seen)))
                    .bind(first.min(ms(ev.first_seen)))
                    .bind(if later {
                        ev.source_id.clone()
                    } else {
                        source_id
                    })
                    .bind(ev.severity.as_str())
                    .bind(rank(ev.severity))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .ctx("update event")?;
                    Upsert::Updated {
                        id,
                        added: u32::try_from(new_count - count).unwrap_or(0),
                    }
                }
            }
        };
        tx.commit().await.ctx("commit upsert")?;
        Ok(outcome)
    }

    async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = String::from("SELECT * FROM events WHERE 1=1");
        if q.since.is_some() {
            sql.push_str(" AND last_seen >= ?");
        }
        if q.until.is_some() {
            sql.push_str(" AND last_seen < ?");
        }
        if q.min_severity.is_some() {
            sql.push_str(" AND severity_rank >= ?");
        }
        for (field, col) in [
            (&q.namespace, "namespace"),
            (&q.pod, "pod"),
            (&q.reason, "reason"),
            (&q.source, "source"),
        ] {
            if field.is_some() {
                sql.push_str(&format!(" AND {col} = ?"));
            }
        }
        sql.push_str(" ORDER BY last_seen DESC, id DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(t) = q.since {
            query = query.bind(ms(t));
        }
        if let Some(t) = q.until {
            query = query.bind(ms(t));
        }
        if let Some(s) = q.min_severity {
            query = query.bind(rank(s));
        }
        for v in [&q.namespace, &q.pod, &q.reason, &q.source]
            .into_iter()
            .flatten()
        {
            query = query.bind(v.clone());
        }
        query = query.bind(q.limit.map(i64::from).unwrap_or(-1));
        let rows = query.fetch_all(&self.pool).await.ctx("list events")?;
        rows.iter().map(event_from_row).collect()
    }

    async fn record_pod(&self, at: Timestamp, pod: &PodState) -> Result<PodChange, StoreError> {
        let _guard = self.write.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("begin pod record")?;
        let last: Option<String> = sqlx::query_scalar(
            "SELECT state FROM pod_states WHERE namespace = ? AND name = ? AND uid IS ? \
             ORDER BY observed_at DESC, id DESC LIMIT 1",
        )
        .bind(&pod.namespace)
        .bind(&pod.name)
        .bind(&pod.uid)
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
                "INSERT INTO pod_states (namespace, name, uid, observed_at, phase, restarts, state) \
                 VALUES (?,?,?,?,?,?,?)",
            )
            .bind(&pod.namespace)
            .bind(&pod.name)
            .bind(&pod.uid)
            .bind(ms(at))
            .bind(&pod.phase)
            .bind(i64::from(pod.restarts()))
            .bind(json(pod))
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
                 last_exit_code, last_finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
            "SELECT observed_at, state FROM pod_states WHERE namespace = ? AND name = ? \
             ORDER BY observed_at, id",
        )
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .ctx("pod history")?;
        rows.iter()
            .map(|r| {
                let at: i64 = r.try_get("observed_at").ctx("pod history")?;
                let state: String = r.try_get("state").ctx("pod history")?;
                Ok((ts(at)?, from_json("pod state", &state)?))
            })
            .collect()
    }

    async fn put_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO objects (kind, namespace, name, body, updated_at) VALUES (?,?,?,?,?) \
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
        let r = sqlx::query("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?")
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
            sqlx::query_scalar("SELECT body FROM objects WHERE kind = ? ORDER BY namespace, name")
                .bind(kind)
                .fetch_all(&self.pool)
                .await
                .ctx("list objects")?;
        rows.iter().map(|b| from_json("object", b)).collect()
    }

    async fn restart_samples(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RestartSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM restart_samples WHERE observed_at >= ? AND observed_at < ? \
             ORDER BY observed_at, id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await
        .ctx("restart samples")?;
        rows.iter()
            .map(|r| {
                let g = |c: &str| r.try_get::<Option<String>, _>(c).ctx("restart samples");
                let kind: String = r.try_get("container_kind").ctx("restart samples")?;
                let count: i64 = r.try_get("restart_count").ctx("restart samples")?;
                let finished: Option<i64> = r.try_get("last_finished_at").ctx("restart samples")?;
                Ok(RestartSample {
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
            })
            .collect()
    }
}
