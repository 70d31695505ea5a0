//! Events in the store: the deduplicating upsert sources use, custom events posted to the API
//! (stored once per idempotency key), and the feed query with its cursor.

use crashscope_model::{Event, EventType, ObjectRef, Scope, Severity};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Ctx, StoreError};
use crate::query::{Cursor, EventQuery, StoredEvent, Upsert};
use crate::sql::{from_json, json, ms, rank, ts, Backend, SqlStore};

const COLUMNS: &str = "dedup_key, source, reporter, reason, message, type, severity, \
     severity_rank, namespace, node, workload_kind, workload_name, pod, container, scope, \
     involved, count, first_seen, last_seen, source_id, tags, cluster";

pub(crate) fn event_from_row(row: &AnyRow) -> Result<StoredEvent, StoreError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).ctx("read event");
    let severity: String = get_s("severity")?;
    let type_: String = get_s("type")?;
    let involved: Option<String> = row.try_get("involved").ctx("read event")?;
    let tags: Option<String> = row.try_get("tags").ctx("read event")?;
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
            tags: tags
                .map(|t| from_json::<BTreeMap<String, String>>("event tags", &t))
                .transpose()?
                .unwrap_or_default(),
        },
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the [`COLUMNS`] of one event.
fn bind_event<'q>(q: AnyQuery<'q>, key: &str, ev: &Event) -> AnyQuery<'q> {
    q.bind(key.to_string())
        .bind(ev.source.clone())
        .bind(ev.reporter.clone())
        .bind(ev.reason.clone())
        .bind(ev.message.clone())
        .bind(ev.event_type.as_str())
        .bind(ev.severity.as_str())
        .bind(rank(ev.severity))
        .bind(ev.scope.namespace.clone())
        .bind(ev.scope.node.clone())
        .bind(ev.scope.workload.as_ref().map(|w| w.kind.clone()))
        .bind(ev.scope.workload.as_ref().map(|w| w.name.clone()))
        .bind(ev.scope.pod.clone())
        .bind(ev.scope.container.clone())
        .bind(json(&ev.scope))
        .bind(ev.involved.as_ref().map(json))
        .bind(i64::from(ev.count))
        .bind(ms(ev.first_seen))
        .bind(ms(ev.last_seen))
        .bind(ev.source_id.clone())
        .bind((!ev.tags.is_empty()).then(|| json(&ev.tags)))
        .bind(ev.scope.cluster.clone())
}

const NCOLS: usize = 22;

/// `($1,…,$21),($22,…)…` for `rows` rows; plain `?` on SQLite, where sqlx resolves each
/// `$n` by name and thousands of them in one statement cost quadratic time.
fn placeholders(rows: usize, backend: Backend) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=NCOLS)
                .map(|c| match backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", r * NCOLS + c),
                })
                .collect();
            format!("({})", cols.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Inserts `ev` under `key` unless a row with that key exists; the new row's id, or None
/// when another writer got there first.
async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    ev: &Event,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "INSERT INTO events ({COLUMNS}) VALUES {} ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        placeholders(1, Backend::Postgres)
    );
    let row = bind_event(sqlx::query(&sql), key, ev)
        .fetch_optional(&mut **tx)
        .await
        .ctx("insert event")?;
    row.map(|r| r.try_get::<i64, _>(0).ctx("insert event"))
        .transpose()
}

/// Rows per multi-row INSERT: well under SQLite's 32 766 and PostgreSQL's 65 535 parameters.
const ROWS_PER_INSERT: usize = 400;

/// Inserts many events in as few statements as possible (a statement costs far more than a
/// row); the ids of the rows inserted, by key — keys that existed are absent.
async fn insert_many(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    rows: &[(String, &Event)],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) VALUES {} ON CONFLICT (dedup_key) DO NOTHING \
             RETURNING id, dedup_key",
            placeholders(chunk.len(), backend)
        );
        let mut q = sqlx::query(&sql);
        for (key, ev) in chunk {
            q = bind_event(q, key, ev);
        }
        for r in q.fetch_all(&mut **tx).await.ctx("insert events")? {
            ids.insert(
                r.try_get::<String, _>(1).ctx("insert events")?,
                r.try_get::<i64, _>(0).ctx("insert events")?,
            );
        }
    }
    Ok(ids)
}

pub(crate) async fn upsert(store: &SqlStore, ev: &Event) -> Result<Upsert, StoreError> {
    let _guard = store.write.lock().await;
    let key = ev.dedup_key();
    // A second round only happens when another replica inserted the same key between our
    // read and our insert; then the row exists and the update path runs.
    for _ in 0..2 {
        let mut tx = store.begin_write("begin upsert").await?;
        let existing = sqlx::query(
            "SELECT id, count, last_seen, first_seen, source_id FROM events WHERE dedup_key = $1",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .ctx("find event")?;
        let outcome = match existing {
            None => match insert(&mut tx, &key, ev).await? {
                Some(id) => Upsert::Inserted { id },
                None => continue,
            },
            Some(row) => update(&mut tx, &row, ev).await?,
        };
        tx.commit().await.ctx("commit upsert")?;
        return Ok(outcome);
    }
    Err(StoreError::Conflict { what: "event" })
}

async fn update(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    row: &AnyRow,
    ev: &Event,
) -> Result<Upsert, StoreError> {
    let id: i64 = row.try_get("id").ctx("find event")?;
    let count: i64 = row.try_get("count").ctx("find event")?;
    let last: i64 = row.try_get("last_seen").ctx("find event")?;
    let first: i64 = row.try_get("first_seen").ctx("find event")?;
    let source_id: Option<String> = row.try_get("source_id").ctx("find event")?;
    let incoming = i64::from(ev.count);
    let later = ms(ev.last_seen) > last;
    // The same Event object updated in place carries its running total; a new object for the
    // same occurrence (the old one expired) starts counting again.
    let new_count = if source_id.is_some() && source_id == ev.source_id {
        count.max(incoming)
    } else if later {
        count + incoming
    } else {
        count
    };
    if new_count == count && !later {
        return Ok(Upsert::Unchanged { id });
    }
    sqlx::query(
        "UPDATE events SET count = $1, last_seen = $2, first_seen = $3, source_id = $4, \
         severity = $5, severity_rank = $6 WHERE id = $7",
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
    .execute(&mut **tx)
    .await
    .ctx("update event")?;
    Ok(Upsert::Updated {
        id,
        added: u32::try_from(new_count - count).unwrap_or(0),
    })
}

static CUSTOM_SEQ: AtomicU64 = AtomicU64::new(0);

/// Stores custom events (deploys posted by CI) in one transaction — the server batches
/// concurrent posts so that one commit serves many. Each post is its own occurrence, except
/// that posts carrying the same idempotency key from the same source are stored once.
/// Returns each stored event and whether this call created it.
pub(crate) async fn insert_custom(
    store: &SqlStore,
    items: &[(Event, Option<String>)],
) -> Result<Vec<(StoredEvent, bool)>, StoreError> {
    let keys: Vec<String> = items
        .iter()
        .map(|(ev, idempotency_key)| match idempotency_key {
            Some(k) => format!("custom\u{1f}{}\u{1f}{k}", ev.source),
            None => format!(
                "custom\u{1f}{}\u{1f}{}\u{1f}{}",
                jiff::Timestamp::now().as_nanosecond(),
                std::process::id(),
                CUSTOM_SEQ.fetch_add(1, Ordering::Relaxed)
            ),
        })
        .collect();
    let rows: Vec<(String, &Event)> = keys
        .iter()
        .cloned()
        .zip(items.iter().map(|(e, _)| e))
        .collect();
    let _guard = store.write.lock().await;
    let mut tx = store.begin_write("begin custom events").await?;
    let mut ids = insert_many(&mut tx, store.backend(), &rows).await?;
    let mut out = Vec::with_capacity(items.len());
    for (key, ev) in rows {
        // Inserted now (the first of equal keys in the batch takes the row), or stored before.
        match ids.remove(&key) {
            Some(id) => out.push((
                StoredEvent {
                    id,
                    event: ev.clone(),
                },
                true,
            )),
            None => {
                let row = sqlx::query("SELECT * FROM events WHERE dedup_key = $1")
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await
                    .ctx("read custom event")?;
                out.push((event_from_row(&row)?, false));
            }
        }
    }
    tx.commit().await.ctx("commit custom events")?;
    Ok(out)
}

/// One event by id.
pub(crate) async fn get(store: &SqlStore, id: i64) -> Result<Option<StoredEvent>, StoreError> {
    let row = sqlx::query("SELECT * FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await
        .ctx("read event")?;
    row.as_ref().map(event_from_row).transpose()
}

/// A bound value of a dynamically built query.
enum Arg {
    Int(i64),
    Text(String),
}

/// `q`'s filters (time, scope, reason, source, text; not its severity, cursor or limit)
/// appended to `sql` as ` AND …` conditions, their values in `args`.
fn filter_sql(q: &EventQuery, sql: &mut String, args: &mut Vec<Arg>) {
    let cond = |sql: &mut String, args: &mut Vec<Arg>, text: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&text.replace('?', &format!("${}", args.len())));
    };

    if let Some(t) = q.since {
        cond(sql, args, " AND last_seen >= ?", Arg::Int(ms(t)));
    }
    if let Some(t) = q.until {
        cond(sql, args, " AND last_seen < ?", Arg::Int(ms(t)));
    }
    for (field, col) in [
        (&q.cluster, "cluster"),
        (&q.namespace, "namespace"),
        (&q.node, "node"),
        (&q.workload_kind, "workload_kind"),
        (&q.workload_name, "workload_name"),
        (&q.pod, "pod"),
        (&q.reason, "reason"),
        (&q.source, "source"),
    ] {
        if let Some(v) = field {
            cond(sql, args, &format!(" AND {col} = ?"), Arg::Text(v.clone()));
        }
    }
    for (col, v) in &q.excluded {
        // The column name comes from a closed set, never from the caller.
        let col = col.name();
        cond(
            sql,
            args,
            &format!(" AND ({col} IS NULL OR {col} <> ?)"),
            Arg::Text(v.clone()),
        );
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", text.to_lowercase());
        cond(
            sql,
            args,
            " AND (LOWER(message) LIKE ? OR LOWER(reason) LIKE ?)",
            Arg::Text(pattern),
        );
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        query = match a {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    query
}

/// A field the feed's events are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Cluster,
    Reason,
    Namespace,
    Workload,
    Source,
    Severity,
    Node,
}

impl Facet {
    pub const ALL: [Facet; 7] = [
        Facet::Cluster,
        Facet::Reason,
        Facet::Namespace,
        Facet::Workload,
        Facet::Source,
        Facet::Severity,
        Facet::Node,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Facet::Cluster => "cluster",
            Facet::Reason => "reason",
            Facet::Namespace => "namespace",
            Facet::Workload => "workload",
            Facet::Source => "source",
            Facet::Severity => "severity",
            Facet::Node => "node",
        }
    }
}

/// Events counted from the newest of the matching ones: counting them all would read the
/// whole feed on every page at millions of events.
pub const FACET_SAMPLE: u32 = 10_000;

/// What the feed's counts and its events-over-time strip are made from: the newest
/// [`FACET_SAMPLE`] events matching a query, read once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedSample {
    /// For each [`Facet`], how many of the sample have each of its values, most first (ties by
    /// value), at most `top` values.
    pub counts: Vec<(Facet, Vec<(String, i64)>)>,
    /// When each event of the sample was last seen and its severity, newest first.
    pub times: Vec<(Timestamp, Severity)>,
}

/// The [`FeedSample`] of the events matching `q`.
pub(crate) async fn sample(
    store: &SqlStore,
    q: &EventQuery,
    top: usize,
) -> Result<FeedSample, StoreError> {
    let mut sql = String::from(
        "SELECT last_seen, cluster, reason, namespace, workload_kind, workload_name, source, \
         severity, node FROM events WHERE 1=1",
    );
    let mut args: Vec<Arg> = Vec::new();
    filter_sql(q, &mut sql, &mut args);
    if let Some(min) = q.min_severity {
        args.push(Arg::Int(rank(min)));
        sql.push_str(&format!(" AND severity_rank >= ${}", args.len()));
    }
    args.push(Arg::Int(i64::from(FACET_SAMPLE)));
    sql.push_str(&format!(
        " ORDER BY last_seen DESC, id DESC LIMIT ${}",
        args.len()
    ));
    let rows = bind_all(sqlx::query(&sql), args)
        .fetch_all(&store.pool)
        .await
        .ctx("count events")?;
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); Facet::ALL.len()];
    let mut times = Vec::with_capacity(rows.len());
    for r in &rows {
        let text = |col: &str| r.try_get::<Option<String>, _>(col).ok().flatten();
        let at = r
            .try_get::<i64, _>("last_seen")
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
        let severity = text("severity").and_then(|s| Severity::from_str(&s).ok());
        if let (Some(at), Some(severity)) = (at, severity) {
            times.push((at, severity));
        }
        let workload = match (text("workload_kind"), text("workload_name")) {
            (Some(k), Some(n)) => Some(format!("{k}/{n}")),
            _ => None,
        };
        for (i, f) in Facet::ALL.iter().enumerate() {
            let value = match f {
                Facet::Cluster => text("cluster"),
                Facet::Reason => text("reason"),
                Facet::Namespace => text("namespace"),
                Facet::Workload => workload.clone(),
                Facet::Source => text("source"),
                Facet::Severity => text("severity"),
                Facet::Node => text("node"),
            };
            if let Some(v) = value {
                *counts[i].entry(v).or_default() += 1;
            }
        }
    }
    let counts = Facet::ALL
        .into_iter()
        .zip(counts)
        .map(|(f, c)| {
            let mut values: Vec<(String, i64)> = c.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(top);
            (f, values)
        })
        .collect();
    Ok(FeedSample { counts, times })
}

pub(crate) async fn list(store: &SqlStore, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
    let mut sql = String::from("SELECT * FROM events WHERE 1=1");
    let mut args: Vec<Arg> = Vec::new();
    filter_sql(q, &mut sql, &mut args);
    if let Some(Cursor { last_seen, id }) = q.before {
        args.push(Arg::Int(last_seen));
        let a = args.len();
        args.push(Arg::Int(id));
        let b = args.len();
        sql.push_str(&format!(
            " AND (last_seen < ${a} OR (last_seen = ${a} AND id < ${b}))"
        ));
    }
    const ORDER: &str = " ORDER BY last_seen DESC, id DESC";
    let limit = q.limit.map(|l| {
        args.push(Arg::Int(i64::from(l)));
        format!(" LIMIT ${}", args.len())
    });
    let limit = limit.unwrap_or_default();
    let sql = match q.min_severity {
        None => format!("{sql}{ORDER}{limit}"),
        // "Warning or worse" as one range would walk the whole feed index past every info
        // event; one newest-first walk per severity (index on severity_rank, last_seen, id),
        // merged, reads only what the page needs.
        Some(min) => {
            Severity::ALL
                .iter()
                .filter(|s| **s >= min)
                .map(|s| {
                    format!(
                        "SELECT * FROM ({sql} AND severity_rank = {}{ORDER}{limit}) AS r{}",
                        rank(*s),
                        rank(*s)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
                + ORDER
                + &limit
        }
    };
    let rows = bind_all(sqlx::query(&sql), args)
        .fetch_all(&store.pool)
        .await
        .ctx("list events")?;
    Ok(store.decoded("event", &rows, event_from_row))
}
