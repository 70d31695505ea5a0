//! Alerts and silences (`/ui/alerts`, `/ui/silences`): the rules with their state now and
//! their history (episodes in the last week), the rule engine's alerts with their state and
//! cause, and the silences in force; a session that may write silences an alert from
//! a form prefilled with its labels, which says how many of the alerts active now the silence
//! would cover before it is created.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use crashscope_rules::silence::Matcher;
use crashscope_server::api::views::{add_silence, alert_items, AlertItem, NewSilence};
use crashscope_server::AppState;
use crashscope_store::AlertRecord;
use serde::Deserialize;

use super::{render, say, short, Chrome};
use crate::session::Viewer;

/// Labels that change as an alert goes on (the pods restarting now): a silence on them
/// would stop matching.
const VOLATILE: [&str; 1] = ["pods"];

/// One alert as the table shows it.
pub struct AlertRow {
    pub id: i64,
    pub rule: String,
    pub state: String,
    pub severity: &'static str,
    pub summary: String,
    pub labels: String,
    pub since: String,
    pub resolved: String,
    pub cause: String,
}

impl AlertRow {
    fn new(item: &AlertItem) -> AlertRow {
        let a = &item.alert;
        AlertRow {
            id: a.id,
            rule: a.rule.clone(),
            state: a.state.as_str().to_string(),
            severity: a.severity.as_str(),
            summary: a.summary.clone(),
            labels: a
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            since: short(a.active_since),
            resolved: a.resolved_at.map(short).unwrap_or_default(),
            cause: item.cause.clone().unwrap_or_default(),
        }
    }
}

/// One rule as the rules table shows it.
pub struct RuleRow {
    pub name: String,
    /// What the rule watches, in words: `kubernetes.pod.restart.count by pod over 4m >= 3`.
    pub condition: String,
    pub severity: &'static str,
    pub group_by: String,
    /// Its alerts now: `2 firing, 1 pending`, or `ok`.
    pub now: String,
    /// Episodes that began within the last week.
    pub week: usize,
    pub last_fired: String,
    /// The alerts list narrowed to this rule's.
    pub firing: bool,
}

/// Alert episodes read for the rules' history, newest first.
const HISTORY_EPISODES: u32 = 5000;

/// How far back a rule's history is counted.
const HISTORY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 7);

fn rule_rows(rules: &crashscope_rules::RuleFile, alerts: &[AlertRecord]) -> Vec<RuleRow> {
    use crashscope_model::alert::AlertPhase;
    use crashscope_model::duration::format_go;
    let week_ago = jiff::Timestamp::now() - HISTORY;
    rules
        .rules
        .iter()
        .map(|r| {
            let condition = match (&r.metric, &r.event) {
                (Some(m), _) => format!(
                    "{} by {} over {} {} {}",
                    m.name.as_str(),
                    group_name(m.by),
                    format_go(m.window),
                    m.op.as_str(),
                    m.threshold
                ),
                (None, Some(e)) => {
                    let reasons = if e.reason.is_empty() {
                        "any event".to_string()
                    } else {
                        e.reason.iter().cloned().collect::<Vec<_>>().join(" or ")
                    };
                    format!(
                        "{reasons} at least {} within {}",
                        e.min_count,
                        format_go(e.window)
                    )
                }
                (None, None) => String::new(),
            };
            let mine: Vec<&AlertRecord> = alerts.iter().filter(|a| a.rule == r.name).collect();
            let count = |p: AlertPhase| mine.iter().filter(|a| a.state == p).count();
            let (firing, pending) = (count(AlertPhase::Firing), count(AlertPhase::Pending));
            let now = match (firing, pending) {
                (0, 0) => "ok".to_string(),
                (f, 0) => format!("{f} firing"),
                (0, p) => format!("{p} pending"),
                (f, p) => format!("{f} firing, {p} pending"),
            };
            RuleRow {
                name: r.name.clone(),
                condition,
                severity: r.severity.as_str(),
                group_by: group_name(r.group_by),
                now,
                week: mine.iter().filter(|a| a.active_since >= week_ago).count(),
                last_fired: mine
                    .iter()
                    .filter_map(|a| a.fired_at)
                    .max()
                    .map(short)
                    .unwrap_or_else(|| "never".into()),
                firing: firing > 0,
            }
        })
        .collect()
}

fn group_name(g: crashscope_rules::rule::GroupBy) -> String {
    serde_json::to_value(g)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
pub struct AlertQuery {
    #[serde(default)]
    state: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    state: String,
    states: &'static [&'static str],
    rows: Vec<AlertRow>,
    rules: Vec<RuleRow>,
    can_silence: bool,
    error: Option<String>,
}

/// `GET /ui/alerts`.
pub async fn list(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<AlertQuery>,
    Query(scope): Query<super::scope::Scope>,
) -> Response {
    let state = Some(q.state.as_str()).filter(|s| !s.is_empty());
    let (status, rows, error) = match alert_items(&app, state, Some(200)).await {
        Ok(items) => (
            StatusCode::OK,
            items
                .iter()
                .filter(|i| {
                    let l = &i.alert.labels;
                    let get = |k: &str| l.get(k).map(String::as_str);
                    let pods = i.alert.pods();
                    scope.admits(&super::scope::Scoped {
                        cluster: get("cluster"),
                        namespace: get("namespace").unwrap_or(""),
                        workload: get("workload_kind").zip(get("workload")),
                        // An alert is in a pod's scope when the pod is one of its.
                        pod: pods
                            .iter()
                            .find(|p| **p == scope.pod.trim())
                            .map(String::as_str)
                            .or(get("pod")),
                        container: get("container"),
                    })
                })
                .map(AlertRow::new)
                .collect(),
            None,
        ),
        Err(e) => (e.status, Vec::new(), Some(say(&e))),
    };
    // The rules' state and history read the recent episodes, whatever the filter (the
    // records alone: no cause is shown there; the API's alert list stops at 1,000).
    let rules = match app.store.alerts(None, HISTORY_EPISODES).await {
        Ok(all) => rule_rows(&app.rules, &all),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the alerts for the rules' history");
            rule_rows(&app.rules, &[])
        }
    };
    render(
        status,
        &AlertsPage {
            can_silence: viewer.can_write() && viewer.csrf.is_some(),
            chrome: Chrome::for_viewer("alerts", &viewer)
                .scoped(scope.bar("/ui/alerts", &[("state", q.state.as_str())])),
            state: q.state,
            states: &["", "pending", "firing", "resolved"],
            rows,
            rules,
            error,
        },
    )
}

/// One silence as the table shows it.
pub struct SilenceRow {
    pub id: i64,
    pub matchers: String,
    pub comment: String,
    pub created_by: String,
    pub starts: String,
    pub ends: String,
}

#[derive(Template)]
#[template(path = "silences.html")]
struct SilencesPage {
    chrome: Chrome,
    rows: Vec<SilenceRow>,
    /// The session's CSRF token when it may expire silences.
    csrf: Option<String>,
    error: Option<String>,
}

/// `GET /ui/silences`: the silences in force.
pub async fn silences(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let (status, rows, error) = match app.store.silences(jiff::Timestamp::now()).await {
        Ok(list) => {
            let rows = list
                .into_iter()
                .map(|s| {
                    let matchers: Vec<Matcher> =
                        serde_json::from_value(s.matchers.clone()).unwrap_or_default();
                    SilenceRow {
                        id: s.id,
                        matchers: matchers_text(&matchers).replace('\n', " "),
                        comment: s.comment,
                        created_by: s.created_by,
                        starts: short(s.starts_at),
                        ends: short(s.ends_at),
                    }
                })
                .collect();
            (StatusCode::OK, rows, None)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Vec::new(),
            Some(format!("cannot read the silences: {e}")),
        ),
    };
    render(
        status,
        &SilencesPage {
            csrf: viewer.csrf.clone().filter(|_| viewer.can_write()),
            chrome: Chrome::for_viewer("alerts", &viewer),
            rows,
            error,
        },
    )
}

/// Matchers one per line, `name=value` or `name!=value`.
fn matchers_text(m: &[Matcher]) -> String {
    m.iter()
        .map(|m| format!("{}{}{}", m.name, if m.negate { "!=" } else { "=" }, m.value))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads matchers written one per line; the line at fault when one is not `name=value`.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value, negate) = match l.split_once("!=") {
                Some((n, v)) => (n, v, true),
                None => match l.split_once('=') {
                    Some((n, v)) => (n, v, false),
                    None => {
                        return Err(format!("matchers: {l:?} is not name=value or name!=value"))
                    }
                },
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("matchers: {l:?} has no label name"));
            }
            Ok(Matcher {
                name: name.to_string(),
                value: value.trim().to_string(),
                negate,
            })
        })
        .collect()
}

/// The silence form's fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub matchers: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub comment: String,
    /// The alert it was started from.
    #[serde(default)]
    pub alert: Option<i64>,
}

#[derive(Template)]
#[template(path = "silence_new.html")]
struct NewSilencePage {
    chrome: Chrome,
    form: SilenceForm,
    csrf: String,
    durations: &'static [(&'static str, &'static str)],
    preview: String,
    error: Option<String>,
}

const DURATIONS: [(&str, &str); 4] = [
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
];

/// How many of the alerts active now the matchers cover, in words.
async fn preview(app: &AppState, matchers: &[Matcher]) -> String {
    let active: Vec<AlertItem> = match alert_items(app, None, Some(1000)).await {
        Ok(items) => items
            .into_iter()
            .filter(|i| i.alert.state.as_str() != "resolved")
            .collect(),
        Err(e) => return format!("(cannot count the active alerts: {})", e.message),
    };
    let n = active
        .iter()
        .filter(|i| crashscope_rules::silence::covers(matchers, &i.alert.silence_labels()))
        .count();
    format!(
        "Would silence {n} of the {} alerts active now.",
        active.len()
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    alert: Option<i64>,
}

/// `GET /ui/silences/new?alert=ID`: the form, prefilled with the alert's labels.
pub async fn new_form(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<NewQuery>,
) -> Response {
    let Some(csrf) = viewer.csrf.clone().filter(|_| viewer.can_write()) else {
        return (
            StatusCode::FORBIDDEN,
            "silencing needs a session with a write token",
        )
            .into_response();
    };
    let mut form = SilenceForm {
        duration: "4h".into(),
        alert: q.alert,
        ..SilenceForm::default()
    };
    if let Some(id) = q.alert {
        if let Ok(items) = alert_items(&app, None, Some(1000)).await {
            if let Some(item) = items.iter().find(|i| i.alert.id == id) {
                let m: Vec<Matcher> = item
                    .alert
                    .labels
                    .iter()
                    .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                    .map(|(k, v)| Matcher {
                        name: k.clone(),
                        value: v.clone(),
                        negate: false,
                    })
                    .collect();
                form.matchers = matchers_text(&m);
                form.comment = format!("silenced from alert {id} ({})", item.alert.rule);
            }
        }
    }
    let preview = match parse_matchers(&form.matchers) {
        Ok(m) => preview(&app, &m).await,
        Err(e) => e,
    };
    render(
        StatusCode::OK,
        &NewSilencePage {
            chrome: Chrome::for_viewer("alerts", &viewer),
            form,
            csrf,
            durations: &DURATIONS,
            preview,
            error: None,
        },
    )
}

/// `POST /ui/silences`: creates the silence as `POST /api/v1/silences` does.
pub async fn create(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<SilenceForm>,
) -> Response {
    if let Some(refused) = crate::session::refuse_write(&viewer, &form.csrf) {
        return refused;
    }
    let result = match parse_matchers(&form.matchers) {
        Ok(matchers) => add_silence(
            &app,
            NewSilence {
                matchers,
                comment: form.comment.trim().to_string(),
                created_by: "web UI".into(),
                starts_at: None,
                ends_at: None,
                duration: Some(form.duration.clone()),
            },
        )
        .await
        .map_err(|e| (e.status, say(&e))),
        Err(e) => Err((StatusCode::BAD_REQUEST, e)),
    };
    match result {
        Ok(_) => Redirect::to("/ui/silences").into_response(),
        Err((status, error)) => {
            let preview = match parse_matchers(&form.matchers) {
                Ok(m) => preview(&app, &m).await,
                Err(e) => e,
            };
            let csrf = viewer.csrf.clone().unwrap_or_default();
            render(
                status,
                &NewSilencePage {
                    chrome: Chrome::for_viewer("alerts", &viewer),
                    form,
                    csrf,
                    durations: &DURATIONS,
                    preview,
                    error: Some(error),
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_read_one_per_line_and_say_which_line_is_wrong() {
        let m = parse_matchers("namespace=shop\n\n workload != web \n").unwrap();
        assert_eq!(matchers_text(&m), "namespace=shop\nworkload!=web");
        assert!(parse_matchers("namespace shop")
            .unwrap_err()
            .contains("\"namespace shop\""));
        assert!(parse_matchers("=shop")
            .unwrap_err()
            .contains("no label name"));
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ExpireForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/silences/{id}/expire`: ends a silence now, as `DELETE /api/v1/silences/{id}`.
pub async fn expire(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(f): Form<ExpireForm>,
) -> Response {
    if let Some(refused) = crate::session::refuse_write(&viewer, &f.csrf) {
        return refused;
    }
    match app.store.expire_silence(id, jiff::Timestamp::now()).await {
        Ok(true) => Redirect::to("/ui/silences").into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, format!("no silence {id} in force")).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot expire silence {id}: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod rule_table_tests {
    use super::*;
    use crashscope_model::alert::AlertPhase;

    fn episode(rule: &str, state: AlertPhase, days_ago: i64) -> AlertRecord {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
        AlertRecord {
            id: 0,
            rule: rule.into(),
            group_key: "shop/web".into(),
            state,
            severity: crashscope_model::Severity::Error,
            labels: Default::default(),
            summary: String::new(),
            value: 1.0,
            active_since: at,
            fired_at: (state != AlertPhase::Pending).then_some(at),
            resolved_at: None,
            last_notified_at: None,
            updated_at: at,
        }
    }

    #[test]
    fn each_rule_says_what_it_watches_its_alerts_now_and_its_week() {
        let rules =
            crashscope_rules::RuleFile::parse("rules.yaml", crashscope_rules::rule::DEFAULT_RULES)
                .unwrap();
        let alerts = [
            episode("PodRestartingFrequently", AlertPhase::Firing, 0),
            episode("PodRestartingFrequently", AlertPhase::Pending, 0),
            episode("PodRestartingFrequently", AlertPhase::Resolved, 2),
            episode("PodRestartingFrequently", AlertPhase::Resolved, 30),
        ];
        let rows = rule_rows(&rules, &alerts);
        assert_eq!(rows.len(), rules.rules.len());
        let restarts = &rows[0];
        assert_eq!(
            restarts.condition,
            "kubernetes.pod.restart.count by pod over 4m0s >= 3"
        );
        assert_eq!(restarts.group_by, "workload");
        assert_eq!(restarts.now, "1 firing, 1 pending");
        assert!(restarts.firing);
        assert_eq!(
            restarts.week, 3,
            "the episode of a month ago is not this week's"
        );
        let backoff = &rows[1];
        assert_eq!(
            backoff.condition,
            "BackOff or CrashLoopBackOff at least 1 within 5m0s"
        );
        assert_eq!((backoff.now.as_str(), backoff.week), ("ok", 0));
        assert_eq!(backoff.last_fired, "never");
    }
}
