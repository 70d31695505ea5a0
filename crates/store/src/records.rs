//! The server's records: alerts as they move through their states, silences, capture requests
//! an alert's action made, the index of captures written, and the latest state of each pod.

use std::collections::BTreeMap;

use crashscope_model::alert::AlertPhase;
use crashscope_model::capture::{RequestEvent, RequestState};
use crashscope_model::{PodState, Severity};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

use crate::error::{Ctx, StoreError};
use crate::sql::{from_json, json, ms, ts, SqlStore};

/// An alert episode: one rule, one group, from the time its condition started holding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub group_key: String,
    pub state: AlertPhase,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub value: f64,
    pub active_since: Timestamp,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub last_notified_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl AlertRecord {
    /// The labels a silence's matchers are matched with: the stored ones and the rule's
    /// name and severity (`alertname`, `severity`), as the engine matches them.
    pub fn silence_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert("alertname".into(), self.rule.clone());
        l.insert("severity".into(), self.severity.as_str().into());
        l
    }

    /// The pods the alert is about (its `pods` label, comma-separated).
    pub fn pods(&self) -> Vec<String> {
        self.labels
            .get("pods")
            .map(|p| {
                p.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A silence as stored; `matchers` is the JSON the server wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    pub id: i64,
    pub matchers: serde_json::Value,
    pub comment: String,
    pub created_by: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// A request for a capture of a pod, for the node agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureRequest {
    pub id: i64,
    pub alert_id: Option<i64>,
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub duration_ms: i64,
    pub state: RequestState,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
    /// The capture that fulfilled it.
    pub capture: Option<String>,
}

/// A capture file the store knows about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureRecord {
    pub id: i64,
    pub path: String,
    /// The cluster the agent that sent it belongs to, when it says.
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub restart: Option<i64>,
    pub window_from: Timestamp,
    pub window_to: Timestamp,
    pub bytes: i64,
    pub events: i64,
    pub drops: i64,
    /// Why it was taken: crash, request, manual.
    pub reason: String,
    pub created_at: Timestamp,
}

fn opt_ts(row: &AnyRow, col: &str, what: &'static str) -> Result<Option<Timestamp>, StoreError> {
    row.try_get::<Option<i64>, _>(col)
        .ctx(what)?
        .map(ts)
        .transpose()
}

fn alert_from_row(r: &AnyRow) -> Result<AlertRecord, StoreError> {
    const W: &str = "read alert";
    let severity: String = r.try_get("severity").ctx(W)?;
    let state: String = r.try_get("state").ctx(W)?;
    Ok(AlertRecord {
        id: r.try_get("id").ctx(W)?,
        rule: r.try_get("rule").ctx(W)?,
        group_key: r.try_get("group_key").ctx(W)?,
        state: AlertPhase::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: "alert state",
            detail: format!("unknown alert state {state:?}"),
        })?,
        severity: Severity::from_str(&severity).map_err(|e| StoreError::Corrupt {
            what: "alert severity",
            detail: e.to_string(),
        })?,
        labels: from_json("alert labels", &r.try_get::<String, _>("labels").ctx(W)?)?,
        summary: r.try_get("summary").ctx(W)?,
        value: r.try_get("value").ctx(W)?,
        active_since: ts(r.try_get("active_since").ctx(W)?)?,
        fired_at: opt_ts(r, "fired_at", W)?,
        resolved_at: opt_ts(r, "resolved_at", W)?,
        last_notified_at: opt_ts(r, "last_notified_at", W)?,
        updated_at: ts(r.try_get("updated_at").ctx(W)?)?,
    })
}

fn request_from_row(r: &AnyRow) -> Result<CaptureRequest, StoreError> {
    const W: &str = "read capture request";
    Ok(CaptureRequest {
        id: r.try_get("id").ctx(W)?,
        alert_id: r.try_get("alert_id").ctx(W)?,
        namespace: r.try_get("namespace").ctx(W)?,
        pod: r.try_get("pod").ctx(W)?,
        container: r.try_get("container").ctx(W)?,
        duration_ms: r.try_get("duration_ms").ctx(W)?,
        state: {
            let s: String = r.try_get("state").ctx(W)?;
            RequestState::parse(&s).ok_or_else(|| StoreError::Corrupt {
                what: W,
                detail: format!("unknown capture request state {s:?}"),
            })?
        },
        requested_at: ts(r.try_get("requested_at").ctx(W)?)?,
        updated_at: ts(r.try_get("updated_at").ctx(W)?)?,
        capture: r.try_get("capture").ctx(W)?,
    })
}

fn capture_from_row(r: &AnyRow) -> Result<CaptureRecord, StoreError> {
    const W: &str = "read capture";
    Ok(CaptureRecord {
        id: r.try_get("id").ctx(W)?,
        path: r.try_get("path").ctx(W)?,
        cluster: r.try_get("cluster").ctx(W)?,
        namespace: r.try_get("namespace").ctx(W)?,
        pod: r.try_get("pod").ctx(W)?,
        container: r.try_get("container").ctx(W)?,
        restart: r.try_get("restart").ctx(W)?,
        window_from: ts(r.try_get("window_from").ctx(W)?)?,
        window_to: ts(r.try_get("window_to").ctx(W)?)?,
        bytes: r.try_get("bytes").ctx(W)?,
        events: r.try_get("events").ctx(W)?,
        drops: r.try_get("drops").ctx(W)?,
        reason: r.try_get("reason").ctx(W)?,
        created_at: ts(r.try_get("created_at").ctx(W)?)?,
    })
}

impl SqlStore {
    /// Saves an alert episode (keyed by rule, group and `active_since`); returns its id.
    pub async fn save_alert(&self, a: &AlertRecord) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO alerts (rule, group_key, state, severity, labels, summary, value, \
             active_since, fired_at, resolved_at, last_notified_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) \
             ON CONFLICT (rule, group_key, active_since) DO UPDATE SET state = excluded.state, \
             severity = excluded.severity, labels = excluded.labels, summary = excluded.summary, \
             value = excluded.value, fired_at = excluded.fired_at, \
             resolved_at = excluded.resolved_at, last_notified_at = excluded.last_notified_at, \
             updated_at = excluded.updated_at RETURNING id",
        )
        .bind(&a.rule)
        .bind(&a.group_key)
        .bind(a.state.as_str())
        .bind(a.severity.as_str())
        .bind(json(&a.labels))
        .bind(&a.summary)
        .bind(a.value)
        .bind(ms(a.active_since))
        .bind(a.fired_at.map(ms))
        .bind(a.resolved_at.map(ms))
        .bind(a.last_notified_at.map(ms))
        .bind(ms(a.updated_at))
        .fetch_one(&self.pool)
        .await
        .ctx("save alert")?;
        row.try_get::<i64, _>(0).ctx("save alert")
    }

    /// Alerts, most recently updated first; only those in `state` when given.
    pub async fn alerts(
        &self,
        state: Option<AlertPhase>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM alerts WHERE ($1 IS NULL OR state = $1) \
             ORDER BY updated_at DESC, id DESC LIMIT $2",
        )
        .bind(state.map(AlertPhase::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .ctx("list alerts")?;
        Ok(self.decoded("alert", &rows, alert_from_row))
    }

    /// Adds a silence.
    pub async fn add_silence(
        &self,
        matchers: &serde_json::Value,
        comment: &str,
        created_by: &str,
        starts_at: Timestamp,
        ends_at: Timestamp,
    ) -> Result<SilenceRecord, StoreError> {
        let row = sqlx::query(
            "INSERT INTO silences (matchers, comment, created_by, starts_at, ends_at) \
             VALUES ($1,$2,$3,$4,$5) RETURNING id",
        )
        .bind(matchers.to_string())
        .bind(comment)
        .bind(created_by)
        .bind(ms(starts_at))
        .bind(ms(ends_at))
        .fetch_one(&self.pool)
        .await
        .ctx("add silence")?;
        Ok(SilenceRecord {
            id: row.try_get(0).ctx("add silence")?,
            matchers: matchers.clone(),
            comment: comment.into(),
            created_by: created_by.into(),
            starts_at,
            ends_at,
        })
    }

    /// Silences that have not ended by `now`.
    pub async fn silences(&self, now: Timestamp) -> Result<Vec<SilenceRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM silences WHERE ends_at > $1 ORDER BY id")
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await
            .ctx("list silences")?;
        self.silence_rows(&rows)
    }

    /// Silences in force at some time between `from` and `to` (ended ones included).
    pub async fn silences_during(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SilenceRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM silences WHERE ends_at > $1 AND starts_at < $2 ORDER BY id")
                .bind(ms(from))
                .bind(ms(to))
                .fetch_all(&self.pool)
                .await
                .ctx("list silences")?;
        self.silence_rows(&rows)
    }

    fn silence_rows(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<SilenceRecord>, StoreError> {
        Ok(self.decoded("silence", rows, |r| {
            const W: &str = "read silence";
            Ok(SilenceRecord {
                id: r.try_get("id").ctx(W)?,
                matchers: from_json(
                    "silence matchers",
                    &r.try_get::<String, _>("matchers").ctx(W)?,
                )?,
                comment: r.try_get("comment").ctx(W)?,
                created_by: r.try_get("created_by").ctx(W)?,
                starts_at: ts(r.try_get("starts_at").ctx(W)?)?,
                ends_at: ts(r.try_get("ends_at").ctx(W)?)?,
            })
        }))
    }

    /// Ends a silence now; false when there is no such silence.
    pub async fn expire_silence(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE silences SET ends_at = $1 WHERE id = $2 AND ends_at > $1")
            .bind(ms(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("expire silence")?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a capture request.
    pub async fn request_capture(
        &self,
        alert_id: Option<i64>,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        duration_ms: i64,
        now: Timestamp,
    ) -> Result<CaptureRequest, StoreError> {
        let row = sqlx::query(
            "INSERT INTO capture_requests (alert_id, namespace, pod, container, duration_ms, \
             state, requested_at, updated_at) VALUES ($1,$2,$3,$4,$5,'requested',$6,$6) \
             RETURNING *",
        )
        .bind(alert_id)
        .bind(namespace)
        .bind(pod)
        .bind(container)
        .bind(duration_ms)
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .ctx("request capture")?;
        self.requests.send_modify(|n| *n += 1);
        request_from_row(&row)
    }

    /// Changes whenever a capture request is made through this store.
    pub fn watch_requests(&self) -> tokio::sync::watch::Receiver<u64> {
        self.requests.subscribe()
    }

    /// Moves capture request `id` by `event` (see [`RequestState::step`]), adding `capture`
    /// to the captures that fulfilled it. None when there is no such request.
    ///
    /// The update applies only if the request is still in the state it was read in: when two
    /// agents (through two server replicas) take the same pending request, one wins and the
    /// other is refused as the state machine refuses taking a taken request.
    pub async fn move_capture_request(
        &self,
        id: i64,
        event: RequestEvent,
        capture: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<CaptureRequest>, StoreError> {
        let _one = self.write.lock().await;
        for _ in 0..3 {
            let Some(mut req) = self.capture_request(id).await? else {
                return Ok(None);
            };
            let before = req.state;
            req.state = req.state.step(event).map_err(|e| StoreError::Refused {
                what: "capture request",
                detail: e.to_string(),
            })?;
            if let Some(c) = capture {
                req.capture = Some(match req.capture.take() {
                    Some(before) if !before.is_empty() => format!("{before},{c}"),
                    _ => c.to_string(),
                });
            }
            req.updated_at = now;
            let done = sqlx::query(
                "UPDATE capture_requests SET state = $1, capture = $2, updated_at = $3 \
                 WHERE id = $4 AND state = $5",
            )
            .bind(req.state.as_str())
            .bind(req.capture.as_deref())
            .bind(ms(now))
            .bind(id)
            .bind(before.as_str())
            .execute(&self.pool)
            .await
            .ctx("update capture request")?;
            if done.rows_affected() == 1 {
                return Ok(Some(req));
            }
            // Another replica moved it between our read and our write: read it again.
        }
        Err(StoreError::Conflict {
            what: "capture request",
        })
    }

    /// Capture requests, newest first; only those in `state` when given.
    pub async fn capture_requests(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<CaptureRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM capture_requests WHERE ($1 IS NULL OR state = $1) \
             ORDER BY requested_at DESC, id DESC",
        )
        .bind(state.map(RequestState::as_str))
        .fetch_all(&self.pool)
        .await
        .ctx("list capture requests")?;
        Ok(self.decoded("capture request", &rows, request_from_row))
    }

    /// Adds a capture to the index (or refreshes the entry for the same path).
    pub async fn index_capture(&self, c: &CaptureRecord) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO captures (path, namespace, pod, container, restart, window_from, \
             window_to, bytes, events, drops, reason, created_at, cluster) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) \
             ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, events = excluded.events, \
             drops = excluded.drops, window_to = excluded.window_to RETURNING id",
        )
        .bind(&c.path)
        .bind(&c.namespace)
        .bind(&c.pod)
        .bind(&c.container)
        .bind(c.restart)
        .bind(ms(c.window_from))
        .bind(ms(c.window_to))
        .bind(c.bytes)
        .bind(c.events)
        .bind(c.drops)
        .bind(&c.reason)
        .bind(ms(c.created_at))
        .bind(&c.cluster)
        .fetch_one(&self.pool)
        .await
        .ctx("index capture")?;
        row.try_get::<i64, _>(0).ctx("index capture")
    }

    /// One capture request by id.
    pub async fn capture_request(&self, id: i64) -> Result<Option<CaptureRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM capture_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("read capture request")?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// One indexed capture by id.
    pub async fn capture(&self, id: i64) -> Result<Option<CaptureRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM captures WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("read capture")?;
        row.as_ref().map(capture_from_row).transpose()
    }

    /// Indexed captures, newest first.
    pub async fn captures(&self) -> Result<Vec<CaptureRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM captures ORDER BY created_at DESC, id DESC")
            .fetch_all(&self.pool)
            .await
            .ctx("list captures")?;
        Ok(self.decoded("capture", &rows, capture_from_row))
    }

    /// The latest recorded state of every pod, without when it was observed.
    pub async fn current_pods(&self) -> Result<Vec<PodState>, StoreError> {
        Ok(self
            .latest_pods()
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect())
    }

    /// The latest recorded state of every pod, by namespace and name.
    pub async fn latest_pods(&self) -> Result<Vec<(Timestamp, PodState)>, StoreError> {
        let rows = sqlx::query(
            "SELECT observed_at, state FROM pod_states WHERE id IN \
             (SELECT MAX(id) FROM pod_states GROUP BY cluster, namespace, name) \
             ORDER BY namespace, name",
        )
        .fetch_all(&self.pool)
        .await
        .ctx("latest pods")?;
        Ok(self.decoded("pod state", &rows, |r| {
            let at: i64 = r.try_get("observed_at").ctx("latest pods")?;
            let state: String = r.try_get("state").ctx("latest pods")?;
            Ok((ts(at)?, from_json("pod state", &state)?))
        }))
    }

    /// Counts per table, for `/metrics` and health.
    pub async fn count(&self, table: Table) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        let row = sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await
            .ctx("count rows")?;
        row.try_get::<i64, _>(0).ctx("count rows")
    }
}

/// Tables [`SqlStore::count`] can count.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Events,
    RestartSamples,
    Alerts,
    Captures,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::RestartSamples => "restart_samples",
            Table::Alerts => "alerts",
            Table::Captures => "captures",
        }
    }
}
