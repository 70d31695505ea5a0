//! The web UI served by a real server over SQLite, driven over HTTP as a browser drives it:
//! logging in, the events feed (filters, escaping, paging), what every page may load, and
//! the vendored files' digests. (Pages in a real browser: `tests/browser.rs`.)

mod common;

use std::sync::Arc;

use crashscope_model::{Event, EventType, Severity};
use crashscope_server::Running;
use crashscope_store::{SqlStore, Store as _};
use reqwest::redirect::Policy;
use scraper::{Html, Selector};

const TOKEN: &str = "web-test-token-0123456789";
const READ_TOKEN: &str = "web-read-token-0123456789";

async fn start() -> (Running, String, Arc<SqlStore>) {
    common::start(&format!("{TOKEN}\n{READ_TOKEN} read\n")).await
}

/// A warning from the local runtime's kubelet, now.
fn event(reason: &str, message: &str) -> Event {
    let now = jiff::Timestamp::now();
    Event {
        source: "local".into(),
        reporter: Some("kubelet".into()),
        reason: reason.into(),
        message: message.into(),
        event_type: EventType::Warning,
        severity: Severity::Warning,
        scope: Default::default(),
        involved: None,
        count: 1,
        first_seen: now,
        last_seen: now,
        source_id: None,
        tags: Default::default(),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

async fn post_event(base: &str, body: serde_json::Value) {
    common::post_event(base, TOKEN, body).await;
}

async fn page(base: &str, path: &str) -> (u16, Html) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, Html::parse_document(&r.text().await.unwrap()))
}

/// The page's error box's text.
fn error_box(doc: &Html) -> String {
    doc.select(&sel(".error-box"))
        .next()
        .map(|e| e.text().collect())
        .unwrap_or_else(|| panic!("no error box on the page"))
}

fn rows(doc: &Html) -> Vec<Vec<String>> {
    doc.select(&sel("table[data-rows] tbody tr"))
        .map(|tr| {
            tr.select(&sel("td"))
                .map(|td| td.text().collect::<String>().trim().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_browser_without_a_session_logs_in_with_a_token_and_out_again() {
    let (_srv, base, _) = start().await;
    let http = client();
    let r = http
        .get(format!("{base}/ui/events?reason=BackOff"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/login?next=/ui/events%3Freason%3DBackOff");
    let login = http
        .get(format!(
            "{base}/ui/login?next=/ui/events%3Freason%3DBackOff"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let doc = Html::parse_document(&login.text().await.unwrap());
    let next = doc.select(&sel("input[name=next]")).next().unwrap();
    assert_eq!(next.attr("value"), Some("/ui/events?reason=BackOff"));
    assert!(doc.select(&sel("label[for=token]")).next().is_some());

    let wrong = http
        .post(format!("{base}/ui/login"))
        .form(&[("token", "not-a-token-0123456789"), ("next", "/ui/events")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("not one of this server"));

    let r = http
        .post(format!("{base}/ui/login"))
        .form(&[("token", TOKEN), ("next", "/ui/events?reason=BackOff")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/events?reason=BackOff");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();

    let feed = http
        .get(format!("{base}/ui/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let doc = Html::parse_document(&feed.text().await.unwrap());
    let csrf = doc
        .select(&sel("form[action='/ui/logout'] input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .expect("a logout form with its CSRF token")
        .to_string();

    // A form without the session's CSRF token, or posted from another site, does nothing.
    let r = http
        .post(format!("{base}/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{base}/ui/logout"))
        .header("cookie", &session)
        .header("origin", "https://elsewhere.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = http
        .post(format!("{base}/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = http
        .get(format!("{base}/ui/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the session ended at logout");

    // A login never sends anyone to another site.
    let r = http
        .post(format!("{base}/ui/login"))
        .form(&[("token", TOKEN), ("next", "//elsewhere.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/ui/events");
}

#[tokio::test]
async fn the_feed_lists_events_newest_first_escaped_filtered_and_in_pages() {
    let (_srv, base, store) = start().await;
    post_event(
        &base,
        serde_json::json!({"name": "deploy", "description": "nginx 1.27 rolled out",
            "source": "ci", "scope": {"namespace": "shop", "workload": "deployment/web"}}),
    )
    .await;
    // An event whose text is markup: shown as text, never run.
    let mut ev = event(
        "BackOff",
        "Back-off restarting failed container <script>alert(1)</script>",
    );
    ev.scope.namespace = Some("shop".into());
    ev.scope.pod = Some("web-7d9c".into());
    ev.count = 14;
    store.upsert_event(&ev).await.unwrap();

    let (status, doc) = page(&base, "/ui/events").await;
    assert_eq!(status, 200);
    let r = rows(&doc);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0][4], "BackOff", "newest first: {r:?}");
    assert_eq!(r[0][1], "warning", "severity in words, not colour alone");
    assert_eq!(r[0][5], "pod shop/web-7d9c");
    assert_eq!(r[0][7], "14");
    assert!(r[0][6].contains("<script>alert(1)</script>"), "{r:?}");
    assert_eq!(
        doc.select(&sel("td script")).count(),
        0,
        "markup in a message stays text"
    );
    assert_eq!(r[1][4], "deploy");
    assert_eq!(r[1][5], "deployment shop/web");
    // The reason links to the feed narrowed to it, and the pod to its events.
    let links: Vec<_> = doc
        .select(&sel("table.feed tbody tr a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert!(links.contains(&"/ui/events?reason=BackOff"), "{links:?}");
    assert!(
        links.contains(&"/ui/events?namespace=shop&pod=web-7d9c"),
        "{links:?}"
    );
    assert!(
        links.contains(&"/ui/events?namespace=shop&workload=deployment%2Fweb"),
        "{links:?}"
    );
    let (_, doc) = page(&base, "/ui/events?namespace=shop&workload=deployment%2Fweb").await;
    assert_eq!(rows(&doc).len(), 1);

    let (_, doc) = page(&base, "/ui/events?reason=deploy&source=&q=").await;
    let r = rows(&doc);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][6], "nginx 1.27 rolled out");
    let (_, doc) = page(&base, "/ui/events?q=rolled").await;
    assert_eq!(rows(&doc).len(), 1);
    let (_, doc) = page(&base, "/ui/events?severity=warning").await;
    assert_eq!(rows(&doc).len(), 1);

    // A bad filter is said on the page, naming the field, with a 400.
    let (status, doc) = page(&base, "/ui/events?from=yesterdayish").await;
    assert_eq!(status, 400);
    let err = error_box(&doc);
    assert!(err.starts_with("from:"), "{err}");

    // Pages of 200 with a link to older events; the link keeps the filters.
    for i in 0..205 {
        let mut e = event("Pulled", &format!("image pulled {i}"));
        e.severity = Severity::Info;
        e.event_type = EventType::Normal;
        e.scope.namespace = Some("batch".into());
        store.upsert_event(&e).await.unwrap();
    }
    // Repeats (the same reason, object and message but for its numbers) are one row.
    let (_, doc) = page(&base, "/ui/events?namespace=batch").await;
    let grouped = rows(&doc);
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert_eq!(grouped[0][7], "200 (200 grouped)");
    assert_eq!(grouped[0][6], "image pulled 204");
    let every = doc
        .select(&sel("a.grouping"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    assert_eq!(every, "/ui/events?namespace=batch&ungrouped=on");
    let (_, doc) = page(&base, &every).await;
    assert_eq!(rows(&doc).len(), 200);
    let older = doc
        .select(&sel("a[rel=next]"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    assert!(
        older.starts_with("/ui/events?namespace=batch&ungrouped=on&cursor="),
        "{older}"
    );
    let (_, doc) = page(&base, &older).await;
    assert_eq!(rows(&doc).len(), 5);
    assert!(doc.select(&sel("a[rel=next]")).next().is_none());
}

#[tokio::test]
async fn pages_load_only_this_servers_files_and_forbid_inline_script() {
    let (_srv, base, store) = start().await;
    // Every page with something on it: a crash-looping pod with its events, an incident, a
    // capture.
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(common::crashing_pod()).unwrap();
    let mut earlier = crashscope_model::PodState::from_pod(&pod);
    earlier.containers[0].restart_count = 3;
    store
        .record_pod(
            jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120),
            &earlier,
        )
        .await
        .unwrap();
    common::store_crashing_pod(&store).await;
    let mut backoff = event("BackOff", "Back-off restarting failed container app");
    backoff.scope.namespace = Some("shop".into());
    backoff.scope.pod = Some("web-7d9c".into());
    store.upsert_event(&backoff).await.unwrap();
    let id = stored_id(&store, "BackOff").await;
    let capture = common::upload_sample(&base, TOKEN).await;
    let routes = [
        "/ui/login".to_string(),
        "/ui/events".into(),
        format!("/ui/events/{id}"),
        "/ui/incidents".into(),
        "/ui/incidents/detail?namespace=shop&workload=pod%2Fweb-7d9c&container=app&reason=Error"
            .into(),
        "/ui/alerts".into(),
        "/ui/silences".into(),
        "/ui/pods".into(),
        "/ui/pods/shop/web-7d9c".into(),
        "/ui/captures".into(),
        format!("/ui/captures/{capture}"),
        format!("/ui/captures/{capture}?view=dns"),
        format!("/ui/captures/{capture}/events"),
        format!("/ui/captures/{capture}/io"),
    ];
    for path in routes.iter().map(String::as_str) {
        let r = client()
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} names an outside URL"
        );
        let doc = Html::parse_document(&html);
        for s in doc.select(&sel("script")) {
            let src = s
                .attr("src")
                .unwrap_or_else(|| panic!("{path}: an inline script"));
            assert!(src.starts_with("/ui/static/"), "{src}");
        }
        let mut urls: Vec<String> = doc
            .select(&sel("script[src], link[href]"))
            .filter_map(|e| e.attr("src").or(e.attr("href")))
            .map(str::to_string)
            .collect();
        urls.sort();
        // The style sheet, htmx and the keys on every page; each one an embedded file.
        assert!(urls.len() >= 3, "{urls:?}");
        let embedded: Vec<String> = crashscope_web::assets::ASSETS
            .iter()
            .map(|a| a.url())
            .collect();
        assert!(urls.iter().all(|u| embedded.contains(u)), "{urls:?}");
        for u in urls {
            let r = client().get(format!("{base}{u}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{u}");
            let ty = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(
                ty.starts_with("text/css") || ty.starts_with("text/javascript"),
                "{u}: {ty}"
            );
            assert!(!r.bytes().await.unwrap().is_empty());
        }
    }
    let r = client()
        .get(format!("{base}/ui/static/000000/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(location(&r), "/ui/events");
}

#[test]
fn vendored_files_match_their_recorded_digests() {
    common::check_digests(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/vendor"));
}

#[tokio::test]
async fn the_pod_page_shows_containers_the_apis_diagnosis_and_the_pods_events() {
    let (_srv, base, store, data_dir) =
        common::start_with_dir(&format!("{TOKEN}\n{READ_TOKEN} read\n")).await;
    let state = common::store_crashing_pod(&store).await;
    // The local runtime's log of the instance that ended (restart 3; the 4th waits), with
    // markup in it and more lines than the page shows.
    let log = crashscope_model::logfile::log_path(&data_dir, "shop", "web-7d9c", "u-1", "app", 3);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut text: String = (0..250).map(|i| format!("line {i}\n")).collect();
    text.push_str("<script>x</script> config file /etc/web/config.yaml not found\n");
    std::fs::write(&log, text).unwrap();
    let mut healthy = state.clone();
    healthy.name = "api-1".into();
    healthy.containers[0].state = crashscope_model::ContainerState::Running { started_at: None };
    healthy.containers[0].restart_count = 0;
    healthy.containers[0].last_state = None;
    store
        .record_pod(jiff::Timestamp::now(), &healthy)
        .await
        .unwrap();
    let mut ev = event(
        "BackOff",
        "Back-off restarting failed container app in pod web-7d9c",
    );
    ev.scope.namespace = Some("shop".into());
    ev.scope.pod = Some("web-7d9c".into());
    store.upsert_event(&ev).await.unwrap();

    // The list: crash-looping first, its last exit, a link to its page.
    let (status, doc) = page(&base, "/ui/pods").await;
    assert_eq!(status, 200);
    let r = rows(&doc);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0][1], "web-7d9c");
    assert_eq!(r[0][3], "CrashLoopBackOff");
    assert_eq!(r[0][4], "4");
    assert_eq!(r[0][5], "Error, exit 1");
    assert_eq!(r[1][1], "api-1");
    let (_, doc) = page(&base, "/ui/pods?crashing=on").await;
    assert_eq!(rows(&doc).len(), 1);

    let (status, doc) = page(&base, "/ui/pods/shop/web-7d9c").await;
    assert_eq!(status, 200);
    let text: String = doc.root_element().text().collect();
    assert!(text.contains("Waiting: CrashLoopBackOff"), "{text}");
    assert!(text.contains("Terminated: Error, exit code 1"), "{text}");
    // The page's diagnosis is the API's: the same top cause for the container.
    let api: serde_json::Value = client()
        .get(format!("{base}/api/v1/pods/shop/web-7d9c/diagnosis"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want = api["items"][0]["causes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let article = doc
        .select(&sel("article.diagnosis"))
        .next()
        .expect("a diagnosis of the crashed container");
    assert_eq!(
        article.attr("aria-label"),
        Some("Diagnosis of container app")
    );
    let top = article
        .select(&sel(".cause.top .cause-head code"))
        .next()
        .unwrap();
    assert_eq!(top.text().collect::<String>(), want);
    let head: String = article
        .select(&sel(".cause.top .confidence"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(
        head.starts_with("confidence ") && head.contains(" %"),
        "{head}"
    );
    // The crash loop: the run the status tells of (20 s long, exit 1), and the kubelet's
    // next start counted down from its message's back-off (1m20s after the exit).
    let runs: Vec<String> = doc
        .select(&sel("ol.crashloop li"))
        .map(|l| l.text().collect())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.ends_with("a run ended after 20s: Error, exit code 1")),
        "{runs:?}"
    );
    let next = doc
        .select(&sel("time[data-countdown]"))
        .next()
        .and_then(|t| t.attr("datetime"))
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let finished = match &state.containers[0].last_state {
        Some(crashscope_model::ContainerState::Terminated {
            finished_at: Some(f),
            ..
        }) => *f,
        other => panic!("{other:?}"),
    };
    assert_eq!(next, finished + jiff::SignedDuration::from_secs(80));
    // kubectl's own row for it.
    let kubectl: Vec<(String, String)> = doc
        .select(&sel("table.kubectl th"))
        .zip(doc.select(&sel("table.kubectl td")))
        .map(|(h, d)| (h.text().collect(), d.text().collect()))
        .collect();
    assert_eq!(kubectl[0], ("READY".into(), "0/1".into()));
    assert_eq!(kubectl[1], ("STATUS".into(), "CrashLoopBackOff".into()));
    assert!(kubectl[2].1.starts_with("4 ("), "{kubectl:?}");
    let no_capture: String = doc
        .select(&sel("#captures-title + p.empty, section p.empty"))
        .map(|p| p.text().collect::<String>())
        .collect();
    assert!(
        no_capture.contains("No capture of this pod is stored."),
        "{no_capture}"
    );
    // kubectl's describe text of the pod.
    let described: String = doc
        .select(&sel("details.describe pre"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(described.contains("Restart Count:  4"), "{described}");
    // The previous instance's log: its last 200 lines, as text.
    let pre: String = doc.select(&sel("pre.log")).next().unwrap().text().collect();
    assert!(
        pre.ends_with("<script>x</script> config file /etc/web/config.yaml not found"),
        "{pre}"
    );
    assert_eq!(pre.lines().count(), 200);
    assert!(pre.starts_with("line 51\n"), "{}", &pre[..40]);
    // The current instance's log is one click away (this one has not started: none kept).
    let toggle = doc
        .select(&sel("a.log-toggle"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    assert_eq!(toggle, "?log=current#logs-title");
    let (_, current) = page(&base, "/ui/pods/shop/web-7d9c?log=current").await;
    let title: String = current
        .select(&sel("#logs-title"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(title.starts_with("Logs of the current instance"), "{title}");
    assert!(current.select(&sel("pre.log")).next().is_none());
    assert_eq!(doc.select(&sel("pre.log script")).count(), 0);
    // Its events, newest first, and a link to all of them.
    let events = rows(&doc);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0][4], "BackOff");
    let captures: Vec<_> = doc
        .select(&sel("a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert!(
        captures.contains(&"/ui/captures?namespace=shop&pod=web-7d9c"),
        "{captures:?}"
    );
    let more = doc.select(&sel("a.all-events")).next().unwrap();
    assert_eq!(
        more.attr("href"),
        Some("/ui/events?namespace=shop&pod=web-7d9c")
    );

    let (status, _) = page(&base, "/ui/pods/shop/nothing-here").await;
    assert_eq!(status, 404);
}

/// Logs in through the form; the session cookie to send.
async fn login(base: &str, token: &str) -> String {
    let r = client()
        .post(format!("{base}/ui/login"))
        .form(&[("token", token), ("next", "/ui/events")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn session_page(base: &str, cookie: &str, path: &str) -> Html {
    let r = client()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Html::parse_document(&r.text().await.unwrap())
}

/// The add-event form's hidden fields (CSRF token, idempotency key), if the page has it.
fn form_fields(doc: &Html) -> Option<(String, String)> {
    let form = doc
        .select(&sel("form[action='/ui/events'][method=post]"))
        .next()?;
    let field = |n: &str| {
        form.select(&sel(&format!("input[name={n}]")))
            .next()
            .and_then(|i| i.attr("value"))
            .unwrap_or_default()
            .to_string()
    };
    Some((field("csrf"), field("key")))
}

#[tokio::test]
async fn a_writer_adds_an_event_from_the_form_once_and_a_reader_sees_no_form() {
    let (_srv, base, _) = start().await;
    let reader = login(&base, READ_TOKEN).await;
    assert!(form_fields(&session_page(&base, &reader, "/ui/events").await).is_none());
    let (_, doc) = page(&base, "/ui/events").await;
    assert!(
        form_fields(&doc).is_none(),
        "a bearer token has no session: no form"
    );

    let writer = login(&base, TOKEN).await;
    let (csrf, key) = form_fields(&session_page(&base, &writer, "/ui/events").await).unwrap();
    assert!(!csrf.is_empty() && !key.is_empty());
    let form = |csrf: &str, source: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("key", key.clone()),
            ("name", "deploy web 1.4.3".to_string()),
            ("description", "config reload <b>fix</b>".to_string()),
            ("severity", "info".to_string()),
            ("source", source.to_string()),
            ("namespace", "shop".to_string()),
            ("workload", "deployment/web".to_string()),
            ("pod", String::new()),
        ]
    };
    let post = |body: Vec<(&'static str, String)>| {
        let base = base.clone();
        let writer = writer.clone();
        async move {
            client()
                .post(format!("{base}/ui/events"))
                .header("cookie", writer)
                .form(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(post(form("guess", "web")).await.status(), 403);
    // A source the API reserves is refused as the API refuses it, the form kept.
    let r = post(form(&csrf, "kubernetes")).await;
    let code = r.status();
    assert!(code.is_client_error(), "{code}");
    let doc = Html::parse_document(&r.text().await.unwrap());
    let err: String = doc
        .select(&sel("details.add-event .error-box"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(err.starts_with("source:"), "{err}");
    let kept = doc
        .select(&sel("details.add-event input[name=name]"))
        .next()
        .unwrap();
    assert_eq!(kept.attr("value"), Some("deploy web 1.4.3"));

    let r = post(form(&csrf, "web")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/events");
    // Sent twice (a double click, a resubmitted page): one event.
    assert_eq!(post(form(&csrf, "web")).await.status(), 303);
    let (_, doc) = page(&base, "/ui/events?source=web").await;
    let r = rows(&doc);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][4], "deploy web 1.4.3");
    assert_eq!(r[0][5], "deployment shop/web");
    assert_eq!(r[0][6], "config reload <b>fix</b>");
}

async fn json_get(base: &str, path: &str) -> (u16, serde_json::Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_pods_chart_has_its_restarts_per_container_and_its_events_to_mark() {
    let (_srv, base, store) = start().await;
    // Seen with 3 restarts two minutes ago, then with 4: one restart in the range.
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(common::crashing_pod()).unwrap();
    let mut earlier = crashscope_model::PodState::from_pod(&pod);
    earlier.containers[0].restart_count = 3;
    let two_minutes_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120);
    store.record_pod(two_minutes_ago, &earlier).await.unwrap();
    common::store_crashing_pod(&store).await;
    let mut backoff = event("BackOff", "Back-off restarting failed container app");
    backoff.scope.namespace = Some("shop".into());
    backoff.scope.pod = Some("web-7d9c".into());
    store.upsert_event(&backoff).await.unwrap();
    post_event(
        &base,
        serde_json::json!({"name": "deploy", "description": "web 1.4.3", "source": "ci",
            "scope": {"namespace": "shop", "workload": "deployment/web"}}),
    )
    .await;
    post_event(
        &base,
        serde_json::json!({"name": "deploy", "source": "ci", "scope": {"namespace": "elsewhere"}}),
    )
    .await;

    let (status, chart) = json_get(
        &base,
        "/ui/pods/shop/web-7d9c/chart.json?range=1h&width=300",
    )
    .await;
    assert_eq!(status, 200, "{chart}");
    let series = chart["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{chart}");
    assert_eq!(series[0]["label"], "app");
    let points = series[0]["points"].as_array().unwrap();
    assert!(points.len() <= 2 * 300 + 1, "{} points", points.len());
    let restarts: f64 = points.iter().map(|p| p[1].as_f64().unwrap()).sum();
    assert!(restarts >= 1.0, "{chart}");
    // The same restarts as the API's range query over the same steps.
    let step = chart["step"].as_f64().unwrap();
    let (_, api) = json_get(
        &base,
        &format!(
            "/api/v1/metrics/query?name=kubernetes.pod.restart.count&from=1h&step={step}s&window={step}s&by=container&namespace=shop&pod=web-7d9c"
        ),
    )
    .await;
    let api_sum: f64 = api["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert_eq!(restarts, api_sum, "{api}");
    // The newest restart is in the last steps, not smeared over the range.
    let last = points
        .iter()
        .rposition(|p| p[1].as_f64().unwrap() > 0.0)
        .unwrap();
    assert!(last + 2 >= points.len(), "{chart}");
    let kinds: Vec<&str> = chart["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "backoff").count(),
        1,
        "{chart}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "change").count(),
        1,
        "the namespace's deploy, not another namespace's: {chart}"
    );
    // Behind the series: the pod's crash loop and, once one fires, the alert about it.
    let bands = |chart: &serde_json::Value| -> Vec<String> {
        chart["bands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(bands(&chart), ["incident"], "{chart}");
    store
        .save_alert(&common::alert(
            "shop/web",
            "web",
            crashscope_model::alert::AlertPhase::Firing,
        ))
        .await
        .unwrap();
    let (_, chart) = json_get(
        &base,
        "/ui/pods/shop/web-7d9c/chart.json?range=1h&width=300",
    )
    .await;
    assert_eq!(bands(&chart), ["alert", "incident"], "{chart}");
    // A silence over that alert is drawn too; one over another rule's is not.
    for (rule, comment) in [
        ("PodRestartingFrequently", "on it"),
        ("SomethingElse", "not this"),
    ] {
        let r = client()
            .post(format!("{base}/api/v1/silences"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({
                "matchers": [{"name": "alertname", "value": rule}, {"name": "namespace", "value": "shop"}],
                "comment": comment, "created_by": "ops", "duration": "30m"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let (_, chart) = json_get(
        &base,
        "/ui/pods/shop/web-7d9c/chart.json?range=1h&width=300",
    )
    .await;
    assert_eq!(bands(&chart), ["alert", "silence", "incident"], "{chart}");
    assert!(chart["bands"][1]["label"]
        .as_str()
        .unwrap()
        .ends_with("on it"));
    let band = &chart["bands"][1];
    assert!(band["from"].as_i64() <= band["to"].as_i64());
    assert!(band["from"].as_i64() >= chart["from"].as_i64());
    let (status, bad) = json_get(&base, "/ui/pods/shop/web-7d9c/chart.json?range=3y").await;
    assert_eq!(status, 400);
    assert!(
        bad["error"].as_str().unwrap().starts_with("range:"),
        "{bad}"
    );

    // The page links its chart's data for the range it shows.
    let (_, doc) = page(&base, "/ui/pods/shop/web-7d9c?range=24h").await;
    let chart = doc.select(&sel("[data-chart]")).next().unwrap();
    assert_eq!(
        chart.attr("data-src"),
        Some("/ui/pods/shop/web-7d9c/chart.json?range=24h")
    );

    // A zoomed chart: absolute bounds, the resolution of the stretch, its events only.
    let now = jiff::Timestamp::now();
    let (a, b) = (
        now - jiff::SignedDuration::from_secs(600),
        now + jiff::SignedDuration::from_secs(60),
    );
    let (status, zoomed) = json_get(
        &base,
        &format!("/ui/pods/shop/web-7d9c/chart.json?from={a}&to={b}&width=300"),
    )
    .await;
    assert_eq!(status, 200, "{zoomed}");
    assert_eq!(zoomed["from"].as_i64(), Some(a.as_second()));
    assert!(
        zoomed["step"].as_f64().unwrap() <= 2.0,
        "660 s over 600 points: {zoomed}"
    );
    assert_eq!(zoomed["markers"].as_array().unwrap().len(), 2, "{zoomed}");
    let (status, _) = json_get(
        &base,
        &format!("/ui/pods/shop/web-7d9c/chart.json?from={b}&to={a}"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, one) = json_get(
        &base,
        &format!("/ui/pods/shop/web-7d9c/chart.json?from={a}"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(one["error"].as_str().unwrap().starts_with("from:"), "{one}");

    // "Show on chart" from the BackOff event opens the pod page with the chart around it.
    let id = stored_id(&store, "BackOff").await;
    let (_, doc) = page(&base, &format!("/ui/events/{id}")).await;
    let show = doc
        .select(&sel("a.show-on-chart"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    assert!(show.starts_with("/ui/pods/shop/web-7d9c?at="), "{show}");
    let (status, doc) = page(&base, &show).await;
    assert_eq!(status, 200);
    let chart = doc.select(&sel("[data-chart]")).next().unwrap();
    let at = backoff.last_seen.as_second();
    assert_eq!(chart.attr("data-mark"), Some(at.to_string().as_str()));
    let src = chart.attr("data-src").unwrap();
    let (status, around) = json_get(&base, src).await;
    assert_eq!(status, 200, "{src}: {around}");
    assert_eq!(around["from"].as_i64(), Some(at - 1800));
    assert_eq!(around["to"].as_i64(), Some(at + 1800));

    // Thousands of BackOff events are all marked (the lane buckets them), not the first page.
    for i in 0..2500 {
        let mut e = backoff.clone();
        e.source_id = Some(format!("backoff-{i}"));
        e.message = format!("Back-off {i}");
        store.upsert_event(&e).await.unwrap();
    }
    let (_, many) = json_get(
        &base,
        "/ui/pods/shop/web-7d9c/chart.json?range=1h&width=300",
    )
    .await;
    let backoffs = many["markers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "backoff")
        .count();
    assert_eq!(backoffs, 2501);
}

#[test]
fn the_pages_scripts_weigh_at_most_100_kb_gzipped() {
    use std::io::Write as _;
    let mut total = 0;
    for a in crashscope_web::assets::ASSETS.iter() {
        if !a.content_type.starts_with("text/javascript") {
            continue;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&a.bytes()).unwrap();
        total += gz.finish().unwrap().len();
    }
    eprintln!("scripts: {total} bytes gzipped");
    assert!(total > 20_000, "the vendored scripts are there");
    assert!(total <= 100 * 1024, "{total} bytes of script, gzipped");
}

#[tokio::test]
async fn a_capture_is_inspected_in_views_and_pages_of_events_as_the_api_reads_it() {
    let (_srv, base, _) = start().await;
    let id = common::upload_sample(&base, TOKEN).await;

    let (_, doc) = page(&base, "/ui/captures").await;
    let r = rows(&doc);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][0], format!("#{id}"));
    assert_eq!(r[0][1], "shop/web-1");
    let links: Vec<_> = doc
        .select(&sel("tbody a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert!(links.contains(&"/ui/pods/shop/web-1"), "{links:?}");
    let (_, doc) = page(&base, "/ui/captures?pod=other").await;
    assert!(rows(&doc).is_empty());

    // Each view is the API's table, cell for cell in its row count; every view has a tab.
    for view in ["summary", "procs", "errors", "files"] {
        let (status, doc) = page(&base, &format!("/ui/captures/{id}?view={view}")).await;
        assert_eq!(status, 200, "{view}");
        let (_, api) = json_get(&base, &format!("/api/v1/captures/{id}/views/{view}")).await;
        let api_rows = api["rows"].as_array().map_or(0, Vec::len);
        assert_eq!(rows(&doc).len(), api_rows, "{view}");
        let current: String = doc
            .select(&sel("nav.tabs a[aria-current=page]"))
            .next()
            .unwrap()
            .text()
            .collect();
        assert_eq!(current, view);
    }
    let (_, doc) = page(&base, &format!("/ui/captures/{id}")).await;
    let tabs = doc.select(&sel("nav.tabs a")).count();
    // Every view, the events, the I/O streams.
    assert_eq!(tabs, crashscope_inspect::views::VIEWS.len() + 2);
    // A filter narrows the view; a broken one is said, naming the filter.
    let (_, all) = page(&base, &format!("/ui/captures/{id}?view=procs")).await;
    let (status, doc) = page(
        &base,
        &format!("/ui/captures/{id}?view=procs&filter=proc.name%3Dno-such-process"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(rows(&doc).len() < rows(&all).len());
    let (status, doc) = page(
        &base,
        &format!("/ui/captures/{id}?view=procs&filter=%28proc.name%3Dx"),
    )
    .await;
    assert_eq!(status, 400);
    let err = error_box(&doc);
    assert!(err.starts_with("filter:"), "{err}");

    // Events as sysdig -r prints them, the same as the API's first page.
    let (status, doc) = page(&base, &format!("/ui/captures/{id}/events")).await;
    assert_eq!(status, 200);
    let (_, api) = json_get(&base, &format!("/api/v1/captures/{id}/events?limit=500")).await;
    let items = api["items"].as_array().unwrap();
    let r = rows(&doc);
    assert_eq!(r.len(), items.len());
    assert_eq!(r[0][0], items[0]["num"].to_string());
    assert_eq!(r[0][6], items[0]["info"].as_str().unwrap().trim());
    assert_eq!(
        doc.select(&sel("a[rel=next]")).next().is_some(),
        api.get("next_after").is_some()
    );
    let (status, _) = page(&base, "/ui/captures/999999").await;
    assert_eq!(status, 404);

    // Export: the page links every row of its view as CSV and JSON, filter kept.
    let (_, doc) = page(
        &base,
        &format!("/ui/captures/{id}?view=files&filter=fd.type%3Dfile"),
    )
    .await;
    let links: Vec<String> = doc
        .select(&sel("a[download]"))
        .filter_map(|a| a.attr("href").map(str::to_string))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links[0].contains("format=csv") && links[0].contains("filter=fd.type"),
        "{links:?}"
    );
    // The data: a view with rows, unfiltered.
    let (_, doc) = page(&base, &format!("/ui/captures/{id}?view=procs")).await;
    let links: Vec<String> = doc
        .select(&sel("a[download]"))
        .filter_map(|a| a.attr("href").map(str::to_string))
        .collect();
    let (status, kind, disposition, csv) = download(&base, &links[0]).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(
        disposition,
        format!("attachment; filename=\"capture-{id}-procs.csv\"")
    );
    let (_, api) = json_get(
        &base,
        &format!("/api/v1/captures/{id}/views/procs?all=true"),
    )
    .await;
    // The header is the page's column headers.
    let columns: Vec<String> = doc
        .select(&sel("thead th"))
        .map(|th| th.text().collect::<String>())
        .collect();
    assert!(!columns.is_empty());
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(lines.next().unwrap(), columns.join(","));
    assert_eq!(
        lines.count(),
        api["rows"].as_array().unwrap().len(),
        "{csv}"
    );
    let (status, kind, _, json) = download(&base, &links[1]).await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["rows"], api["rows"]);
    let (status, _, _, said) = download(
        &base,
        &format!("/ui/captures/{id}/export?view=files&format=xml"),
    )
    .await;
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("format"), "{said}");
}

/// A file the pages link for download: status, content type, disposition, body.
async fn download(base: &str, path: &str) -> (u16, String, String, String) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    (
        r.status().as_u16(),
        kind,
        disposition,
        r.text().await.unwrap(),
    )
}

#[tokio::test]
async fn the_incidents_are_the_apis_with_links_to_their_pods() {
    let (_srv, base, store) = start().await;
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(common::crashing_pod()).unwrap();
    let mut earlier = crashscope_model::PodState::from_pod(&pod);
    earlier.containers[0].restart_count = 3;
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120);
    store.record_pod(before, &earlier).await.unwrap();
    common::store_crashing_pod(&store).await;

    let (status, doc) = page(&base, "/ui/incidents").await;
    assert_eq!(status, 200);
    let (_, api) = json_get(&base, "/api/v1/incidents").await;
    let items = api["items"].as_array().unwrap();
    let r = rows(&doc);
    assert_eq!(r.len(), items.len());
    assert!(!r.is_empty());
    assert_eq!(r[0][0], "shop");
    assert_eq!(r[0][2], items[0]["container"].as_str().unwrap());
    assert_eq!(r[0][3], items[0]["reason"].as_str().unwrap());
    assert_eq!(r[0][4], items[0]["restarts"].to_string());
    let links: Vec<_> = doc
        .select(&sel("tbody a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    let incident =
        "/ui/incidents/detail?namespace=shop&workload=pod%2Fweb-7d9c&container=app&reason=Error";
    assert_eq!(links, [incident, "/ui/pods/shop/web-7d9c"]);

    // The incident's page: its facts, the diagnosis of its pod, and one timeline of its
    // pod's events, the namespace's changes and its captures, oldest first.
    post_event(
        &base,
        serde_json::json!({"name": "deploy", "description": "web 1.4.2 rolled out", "source": "ci",
                           "scope": {"namespace": "shop"}}),
    )
    .await;
    let mut backoff = event("BackOff", "Back-off restarting failed container app");
    backoff.scope.namespace = Some("shop".into());
    backoff.scope.pod = Some("web-7d9c".into());
    store.upsert_event(&backoff).await.unwrap();
    let (status, doc) = page(&base, incident).await;
    assert_eq!(status, 200);
    let text = |css: &str| -> Vec<String> {
        doc.select(&sel(css))
            .map(|e| e.text().collect::<String>())
            .collect()
    };
    let facts = text("dl.fields dd");
    assert_eq!(facts[0], "shop");
    assert_eq!(facts[4], items[0]["restarts"].to_string());
    assert!(
        !text("article.diagnosis .cause.top").is_empty(),
        "the incident page shows its pod's diagnosis"
    );
    let timeline = rows(&doc);
    let kinds: Vec<&str> = timeline.iter().map(|r| r[1].as_str()).collect();
    assert!(kinds.iter().any(|k| k.ends_with("change")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.ends_with("event")), "{kinds:?}");
    assert!(
        timeline.iter().any(|r| r[2].starts_with("deploy (ci)")),
        "{timeline:?}"
    );
    // Each moment opens its source.
    let moment_links: Vec<_> = doc
        .select(&sel("table.timeline tbody a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert_eq!(moment_links.len(), timeline.len());
    assert!(moment_links.iter().all(|l| l.starts_with("/ui/events/")));
    // The scope bar says what the page is about, and clears to the whole list.
    let crumbs = text("nav.scopebar a");
    assert_eq!(
        crumbs,
        [
            "namespace shop",
            "workload pod/web-7d9c",
            "container app",
            "✕ clear the scope"
        ]
    );
    let (status, _) = page(
        &base,
        "/ui/incidents/detail?namespace=shop&workload=pod%2Fweb-7d9c&container=app&reason=OOMKilled",
    )
    .await;
    assert_eq!(status, 404);
    let (_, doc) = page(&base, "/ui/incidents?namespace=elsewhere").await;
    assert!(rows(&doc).is_empty());
    let (status, doc) = page(&base, "/ui/incidents?since=fortnight").await;
    assert_eq!(status, 400);
    let err = error_box(&doc);
    assert!(err.starts_with("since:"), "{err}");
}

/// Reads Server-Sent Events from `r` until `enough` says stop (10 s at most): (id, data) of
/// each `new` message.
async fn sse_until(
    r: &mut reqwest::Response,
    enough: impl Fn(&[(String, u64)]) -> bool,
) -> Vec<(String, u64)> {
    let mut text = String::new();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !enough(&got) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("the stream said enough within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some((message, rest)) = text.split_once("\n\n") {
            let field = |name: &str| {
                message
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            if field("event:").as_deref() == Some("new") {
                got.push((
                    field("id:").unwrap(),
                    field("data:").unwrap().parse().unwrap(),
                ));
            }
            text = rest.to_string();
        }
    }
    got
}

async fn stored_id(store: &SqlStore, reason: &str) -> i64 {
    let q = crashscope_store::EventQuery {
        reason: Some(reason.into()),
        ..Default::default()
    };
    store.events(&q).await.unwrap()[0].id
}

#[tokio::test]
async fn the_feed_counts_new_events_live_and_resumes_from_the_last_one_it_told() {
    let (_srv, base, store) = start().await;
    post_event(&base, serde_json::json!({"name": "first", "source": "ci"})).await;
    let cursor_of = |reason: &'static str| {
        let store = store.clone();
        async move {
            let q = crashscope_store::EventQuery {
                reason: Some(reason.into()),
                ..Default::default()
            };
            crashscope_store::Cursor::after(&store.events(&q).await.unwrap()[0]).encode()
        }
    };
    let first = cursor_of("first").await;
    let (_, doc) = page(&base, "/ui/events").await;
    let src = doc
        .select(&sel("[data-live]"))
        .next()
        .and_then(|e| e.attr("data-live"))
        .unwrap()
        .to_string();
    assert_eq!(src, format!("/ui/events/live?after={first}"));
    let open = |path: String, last: Option<String>| {
        let base = base.clone();
        async move {
            let mut req = client()
                .get(format!("{base}{path}"))
                .bearer_auth(READ_TOKEN);
            if let Some(id) = last {
                req = req.header("last-event-id", id);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "text/event-stream");
            r
        }
    };
    let mut live = open(src.clone(), None).await;
    let mut deploys = open("/ui/events/live?reason=deploy".into(), None).await;
    post_event(&base, serde_json::json!({"name": "note", "source": "ci"})).await;
    post_event(&base, serde_json::json!({"name": "deploy", "source": "ci"})).await;
    let told = sse_until(&mut live, |g| g.iter().map(|m| m.1).sum::<u64>() >= 2).await;
    assert_eq!(told.iter().map(|m| m.1).sum::<u64>(), 2, "{told:?}");
    let deploy = cursor_of("deploy").await;
    assert_eq!(
        told.last().unwrap().0,
        deploy,
        "the id is the newest event's cursor"
    );
    // A filtered feed hears only of its own events.
    let heard = sse_until(&mut deploys, |g| !g.is_empty()).await;
    assert_eq!(heard, [(deploy.clone(), 1)]);
    // Reconnecting with Last-Event-ID resumes after the last event told.
    drop(live);
    let mut again = open(src.clone(), Some(deploy)).await;
    post_event(&base, serde_json::json!({"name": "later", "source": "ci"})).await;
    let told = sse_until(&mut again, |g| !g.is_empty()).await;
    assert_eq!(told, [(cursor_of("later").await, 1)]);
    // A repeat of an event already shown (the same occurrence seen again, counted up) moves
    // to the top of the feed, and is told.
    let mut repeat = event("BackOff", "Back-off restarting failed container app");
    repeat.source_id = Some("uid-backoff".into());
    store.upsert_event(&repeat).await.unwrap();
    let seen_now = cursor_of("BackOff").await;
    let mut watching = open(format!("/ui/events/live?after={seen_now}"), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    repeat.count = 2;
    repeat.last_seen = jiff::Timestamp::now();
    store.upsert_event(&repeat).await.unwrap();
    let told = sse_until(&mut watching, |g| !g.is_empty()).await;
    assert_eq!(told[0].1, 1, "{told:?}");
    assert_eq!(told[0].0, cursor_of("BackOff").await);
}

#[tokio::test]
async fn an_event_shows_every_field_its_json_and_its_objects_events_around_it() {
    let (_srv, base, store) = start().await;
    let mut backoff = event("BackOff", "Back-off restarting failed container app");
    backoff.scope.namespace = Some("shop".into());
    backoff.scope.pod = Some("web-7d9c".into());
    backoff.count = 7;
    store.upsert_event(&backoff).await.unwrap();
    let mut killing = event(
        "Killing",
        "Container app failed liveness probe, will be restarted",
    );
    killing.scope = backoff.scope.clone();
    killing.last_seen = backoff.last_seen - jiff::SignedDuration::from_mins(3);
    killing.first_seen = killing.last_seen;
    store.upsert_event(&killing).await.unwrap();
    let mut long_ago = event("Pulled", "Container image pulled");
    long_ago.scope = backoff.scope.clone();
    long_ago.last_seen = backoff.last_seen - jiff::SignedDuration::from_mins(30);
    long_ago.first_seen = long_ago.last_seen;
    store.upsert_event(&long_ago).await.unwrap();
    let mut elsewhere = event("BackOff", "Back-off restarting failed container api");
    elsewhere.scope.namespace = Some("shop".into());
    elsewhere.scope.pod = Some("api-1".into());
    store.upsert_event(&elsewhere).await.unwrap();
    let q = crashscope_store::EventQuery {
        reason: Some("BackOff".into()),
        pod: Some("web-7d9c".into()),
        ..Default::default()
    };
    let id = store.events(&q).await.unwrap()[0].id;

    // The feed's rows link to each event in full.
    let (_, feed) = page(&base, "/ui/events").await;
    let links: Vec<_> = feed
        .select(&sel("tbody a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert!(
        links.contains(&format!("/ui/events/{id}").as_str()),
        "{links:?}"
    );

    let (status, doc) = page(&base, &format!("/ui/events/{id}")).await;
    assert_eq!(status, 200);
    // The same object's incidents, alerts and captures are a click away.
    let related: Vec<&str> = doc
        .select(&sel("a.related"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert_eq!(
        related,
        [
            "/ui/incidents?namespace=shop&pod=web-7d9c",
            "/ui/alerts?namespace=shop&pod=web-7d9c",
            "/ui/captures?namespace=shop&pod=web-7d9c"
        ]
    );
    let fields: Vec<(String, String)> = doc
        .select(&sel("dl.fields dt"))
        .zip(doc.select(&sel("dl.fields dd")))
        .map(|(t, d)| (t.text().collect(), d.text().collect()))
        .collect();
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(field("reason"), Some("BackOff"));
    assert_eq!(field("count"), Some("7"));
    assert_eq!(field("pod"), Some("web-7d9c"));
    // The raw JSON is the API's item for it.
    let raw: String = doc
        .select(&sel("details pre"))
        .next()
        .unwrap()
        .text()
        .collect();
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let (_, api) = json_get(&base, "/api/v1/events?pod=web-7d9c&reason=BackOff").await;
    assert_eq!(raw, api["items"][0]);
    // Around it: the pod's Killing 3 minutes before; not the pull 30 minutes before, not
    // another pod's events, not itself.
    let around = rows(&doc);
    assert_eq!(around.len(), 1, "{around:?}");
    assert_eq!(around[0][4], "Killing");

    let (status, _) = page(&base, "/ui/events/987654").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_feed_is_counted_by_field_and_each_count_narrows_it() {
    let (_srv, base, store) = start().await;
    for (i, (reason, ns)) in [
        ("BackOff", "shop"),
        ("BackOff", "shop"),
        ("BackOff", "batch"),
        ("Killing", "shop"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(reason, &format!("{reason} {i}"));
        e.scope.namespace = Some(ns.into());
        store.upsert_event(&e).await.unwrap();
    }
    let facet = |doc: &Html, name: &str| -> Vec<(String, String, String)> {
        doc.select(&sel(&format!("section.facet[aria-label='By {name}'] li")))
            .map(|li| {
                let a = li.select(&sel("a")).next().unwrap();
                let n: String = li.select(&sel(".num")).next().unwrap().text().collect();
                (a.text().collect(), n, a.attr("href").unwrap().to_string())
            })
            .collect()
    };
    let (_, doc) = page(&base, "/ui/events").await;
    assert_eq!(
        facet(&doc, "reason"),
        [
            (
                "BackOff".into(),
                "3".into(),
                "/ui/events?reason=BackOff".into()
            ),
            (
                "Killing".into(),
                "1".into(),
                "/ui/events?reason=Killing".into()
            ),
        ]
    );
    assert_eq!(
        facet(&doc, "namespace")
            .iter()
            .map(|(v, n, _)| (v.as_str(), n.as_str()))
            .collect::<Vec<_>>(),
        [("shop", "3"), ("batch", "1")]
    );
    // A narrowing the form has no field for would be invisible: every filter a count link
    // sets is a field of the form, filled in.
    let (_, doc) = page(
        &base,
        "/ui/events?node=node-1&source=local&severity=warning",
    )
    .await;
    for (name, value) in [("node", "node-1"), ("source", "local")] {
        let input = doc
            .select(&sel(&format!("form.filters input[name={name}]")))
            .next()
            .unwrap_or_else(|| panic!("no {name} field"));
        assert_eq!(input.attr("value"), Some(value));
    }
    // Narrowed to a reason: the counts follow, and the reason's own box says nothing more.
    let (_, doc) = page(&base, "/ui/events?reason=BackOff").await;
    assert!(facet(&doc, "reason").is_empty());
    assert_eq!(
        facet(&doc, "namespace")
            .iter()
            .map(|(v, n, l)| (v.as_str(), n.as_str(), l.as_str()))
            .collect::<Vec<_>>(),
        [
            ("shop", "2", "/ui/events?reason=BackOff&namespace=shop"),
            ("batch", "1", "/ui/events?reason=BackOff&namespace=batch")
        ]
    );
    // Events of two clusters: counted by cluster, and a count narrows the feed to one.
    for cluster in ["east", "west", "west"] {
        let mut e = event("Unhealthy", &format!("probe failed in {cluster}"));
        e.scope.cluster = Some(cluster.into());
        store.upsert_event(&e).await.unwrap();
    }
    let (_, doc) = page(&base, "/ui/events?reason=Unhealthy").await;
    let by_cluster = facet(&doc, "cluster");
    assert_eq!(
        by_cluster
            .iter()
            .map(|(v, n, _)| (v.as_str(), n.as_str()))
            .collect::<Vec<_>>(),
        [("east", "1"), ("west", "1")],
        "one event per cluster: the same occurrence twice in west is one event"
    );
    // The strip over the feed: every matching event in one of its bars, counted in words.
    let (_, doc) = page(&base, "/ui/events").await;
    let (_, api) = json_get(&base, "/api/v1/events?limit=1000").await;
    let stored = api["items"].as_array().unwrap().len();
    let in_bars: usize = doc
        .select(&sel("figure.strip a title"))
        .map(|t| {
            let text: String = t.text().collect();
            let n = text.split(": ").nth(1).unwrap().split(' ').next().unwrap();
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(in_bars, stored);
    let label = doc
        .select(&sel("figure.strip svg"))
        .next()
        .and_then(|s| s.attr("aria-label"))
        .unwrap()
        .to_string();
    assert!(
        label.starts_with(&format!("Events over time: {stored} events from")),
        "{label}"
    );
    let (_, doc) = page(&base, &by_cluster[0].2).await;
    let shown = rows(&doc);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].iter().any(|c| c.contains("probe failed in east")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn an_alert_is_silenced_from_a_form_that_says_what_it_would_silence() {
    use crashscope_model::alert::AlertPhase;
    let (_srv, base, store) = start().await;
    let web = store
        .save_alert(&common::alert("shop/web", "web", AlertPhase::Firing))
        .await
        .unwrap();
    store
        .save_alert(&common::alert("shop/api", "api", AlertPhase::Firing))
        .await
        .unwrap();
    let mut old = common::alert("shop/old", "old", AlertPhase::Resolved);
    old.resolved_at = Some(jiff::Timestamp::now());
    store.save_alert(&old).await.unwrap();

    // The list is the API's; a reader sees no silence links.
    let (status, doc) = page(&base, "/ui/alerts").await;
    assert_eq!(status, 200);
    let (_, api) = json_get(&base, "/api/v1/alerts").await;
    assert_eq!(rows(&doc).len(), api["items"].as_array().unwrap().len());
    assert_eq!(doc.select(&sel("a[href^='/ui/silences/new']")).count(), 0);
    let (_, doc) = page(&base, "/ui/alerts?state=firing").await;
    assert_eq!(rows(&doc).len(), 2);
    // Scoped: another namespace has none; a pod of theirs has them.
    let (_, elsewhere) = page(&base, "/ui/alerts?state=firing&namespace=elsewhere").await;
    assert!(rows(&elsewhere).is_empty());
    let (_, of_pod) = page(&base, "/ui/alerts?state=firing&namespace=shop&pod=web-8e1f").await;
    assert_eq!(rows(&of_pod).len(), 2);
    // This server evaluates no rules: the rules table says so.
    let none: String = doc
        .select(&sel("h2 + p.empty"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(none, "No rules.");

    let writer = login(&base, TOKEN).await;
    let doc = session_page(&base, &writer, "/ui/alerts").await;
    let links: Vec<_> = doc
        .select(&sel("a[href^='/ui/silences/new']"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert_eq!(links.len(), 2, "firing alerts only: {links:?}");
    // The form starts from the alert's labels, without the pods (they change), and says it
    // would silence this alert only.
    let doc = session_page(&base, &writer, &format!("/ui/silences/new?alert={web}")).await;
    let matchers: String = doc
        .select(&sel("textarea[name=matchers]"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(matchers, "namespace=shop\nworkload=web");
    let preview: String = doc
        .select(&sel(".preview"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(preview, "Would silence 1 of the 2 alerts active now.");
    let csrf = doc
        .select(&sel("input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .unwrap()
        .to_string();
    let post_for = |m: &str, duration: &str| {
        let body = [
            ("csrf", csrf.as_str()),
            ("matchers", m),
            ("duration", duration),
            ("comment", "deploy in progress"),
        ];
        client()
            .post(format!("{base}/ui/silences"))
            .header("cookie", &writer)
            .form(&body)
            .send()
    };
    let post = |m: &str| post_for(m, "4h");
    // A wrong matcher is said, with what the form held.
    let r = post("namespace shop").await.unwrap();
    assert_eq!(r.status(), 400);
    let doc = Html::parse_document(&r.text().await.unwrap());
    let err = error_box(&doc);
    assert!(err.starts_with("matchers:"), "{err}");
    // The preview matches the rule's name and severity as the engine does (they are not
    // among the stored labels).
    let r = post_for(
        "alertname=PodRestartingFrequently\nseverity=error",
        "not a duration",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let doc = Html::parse_document(&r.text().await.unwrap());
    let preview: String = doc
        .select(&sel(".preview"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(preview, "Would silence 2 of the 2 alerts active now.");
    let r = post(&matchers).await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, silences) = json_get(&base, "/api/v1/silences").await;
    let s = &silences["items"][0];
    assert_eq!(s["comment"], "deploy in progress");
    assert_eq!(s["matchers"].as_array().unwrap().len(), 2);
    let (_, doc) = page(&base, "/ui/silences").await;
    let r = rows(&doc);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][1], "namespace=shop workload=web");
    assert_eq!(
        doc.select(&sel("form[action$='/expire']")).count(),
        0,
        "a reader ends nothing"
    );
    // Ended from the page, it is no longer in force.
    let doc = session_page(&base, &writer, "/ui/silences").await;
    let form = doc.select(&sel("form[action$='/expire']")).next().unwrap();
    let action = form.attr("action").unwrap().to_string();
    let expire = || {
        client()
            .post(format!("{base}{action}"))
            .header("cookie", &writer)
            .form(&[("csrf", csrf.as_str())])
            .send()
    };
    assert_eq!(expire().await.unwrap().status(), 303);
    let (_, silences) = json_get(&base, "/api/v1/silences").await;
    assert!(
        silences["items"].as_array().unwrap().is_empty(),
        "{silences}"
    );
    assert_eq!(expire().await.unwrap().status(), 404, "ended already");
}

#[tokio::test]
async fn a_writer_requests_a_capture_of_a_pod_from_its_page() {
    let (_srv, base, store) = start().await;
    common::store_crashing_pod(&store).await;
    let reader = login(&base, READ_TOKEN).await;
    let doc = session_page(&base, &reader, "/ui/pods/shop/web-7d9c").await;
    assert_eq!(doc.select(&sel("form[action$='/capture']")).count(), 0);

    let writer = login(&base, TOKEN).await;
    let doc = session_page(&base, &writer, "/ui/pods/shop/web-7d9c").await;
    let form = doc
        .select(&sel("form[action='/ui/pods/shop/web-7d9c/capture']"))
        .next()
        .unwrap();
    let csrf = form
        .select(&sel("input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .unwrap()
        .to_string();
    let post = |csrf: String| {
        client()
            .post(format!("{base}/ui/pods/shop/web-7d9c/capture"))
            .header("cookie", &writer)
            .form(&[("csrf", csrf), ("duration", "30s".to_string())])
            .send()
    };
    assert_eq!(post("guess".into()).await.unwrap().status(), 403);
    let r = post(csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/pods/shop/web-7d9c#captures-title");
    // The request is the API's, for the node's recorder to take.
    let (_, api) = json_get(&base, "/api/v1/capture-requests").await;
    let req = &api["items"][0];
    assert_eq!(
        (req["namespace"].as_str(), req["pod"].as_str()),
        (Some("shop"), Some("web-7d9c"))
    );
    assert_eq!(req["state"], "requested");
    assert_eq!(req["duration_ms"], 30_000);
    let doc = session_page(&base, &writer, "/ui/pods/shop/web-7d9c").await;
    let text: String = doc
        .select(&sel("section[aria-labelledby=captures-title] tbody tr"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(text.contains("requested"), "{text}");
}

#[tokio::test]
async fn a_chosen_theme_is_kept_in_a_cookie_and_set_on_every_page() {
    let (_srv, base, _) = start().await;
    let cookie = login(&base, TOKEN).await;
    let theme = |doc: &Html| {
        doc.select(&sel("html"))
            .next()
            .and_then(|h| h.attr("data-theme"))
            .map(str::to_string)
    };
    let doc = session_page(&base, &cookie, "/ui/incidents").await;
    assert_eq!(
        theme(&doc).as_deref(),
        Some("auto"),
        "the OS decides by default"
    );
    let csrf = doc
        .select(&sel("form.theme input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .unwrap()
        .to_string();
    let choose = |csrf: String, value: &'static str| {
        let (base, cookie) = (base.clone(), cookie.clone());
        async move {
            client()
                .post(format!("{base}/ui/theme"))
                .header("cookie", cookie)
                .header("referer", format!("{base}/ui/incidents?since=1h"))
                .form(&[("csrf", csrf.as_str()), ("theme", value)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = choose(csrf.clone(), "dark").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "/ui/incidents?since=1h",
        "back to the page the form was on"
    );
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let chosen = set.split(';').next().unwrap();
    assert_eq!(chosen, "crashscope_theme=dark");
    let doc = session_page(&base, &format!("{cookie}; {chosen}"), "/ui/events").await;
    assert_eq!(theme(&doc).as_deref(), Some("dark"));
    let selected: String = doc
        .select(&sel("form.theme option[selected]"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(selected, "dark");
    // A forged cookie is the default; no CSRF token or an unknown theme is refused.
    let doc = session_page(
        &base,
        &format!("{cookie}; crashscope_theme=\"><x"),
        "/ui/events",
    )
    .await;
    assert_eq!(theme(&doc).as_deref(), Some("auto"));
    assert_eq!(choose(String::new(), "light").await.status(), 403);
    assert_eq!(choose(csrf, "neon").await.status(), 400);
}

#[tokio::test]
async fn every_page_shows_its_scope_and_the_feed_takes_an_absolute_or_brushed_range() {
    let (_srv, base, store) = start().await;
    common::store_crashing_pod(&store).await;
    let now = jiff::Timestamp::now();
    let in_shop = |reason: &str, message: &str, ago: i64| {
        let mut e = event(reason, message);
        e.scope.namespace = Some("shop".into());
        e.scope.pod = Some("web-7d9c".into());
        e.first_seen = now - jiff::SignedDuration::from_secs(ago);
        e.last_seen = e.first_seen;
        e
    };
    store
        .upsert_event(&in_shop("Pulled", "pulled two hours ago", 7200))
        .await
        .unwrap();
    store
        .upsert_event(&in_shop("BackOff", "back-off now", 5))
        .await
        .unwrap();
    let mut elsewhere = event("BackOff", "another namespace");
    elsewhere.scope.namespace = Some("elsewhere".into());
    store.upsert_event(&elsewhere).await.unwrap();
    let reasons =
        |doc: &Html| -> Vec<String> { rows(doc).into_iter().map(|r| r[4].clone()).collect() };
    let hrefs = |doc: &Html, css: &str| -> Vec<String> {
        doc.select(&sel(css))
            .filter_map(|a| a.attr("href").map(str::to_string))
            .collect()
    };

    // The scope is on every page: shown, carried by the navigation, cleared in one click.
    let (_, doc) = page(&base, "/ui/pods?namespace=shop").await;
    assert_eq!(rows(&doc).len(), 1);
    let bar: Vec<String> = doc
        .select(&sel("nav.scopebar a"))
        .map(|a| a.text().collect())
        .collect();
    assert_eq!(bar, ["namespace shop", "✕ clear the scope"]);
    assert_eq!(hrefs(&doc, "nav.scopebar a.clear"), ["/ui/pods"]);
    assert_eq!(
        hrefs(&doc, "header.top nav a"),
        [
            "/ui/events?namespace=shop",
            "/ui/incidents?namespace=shop",
            "/ui/alerts?namespace=shop",
            "/ui/pods?namespace=shop",
            "/ui/captures?namespace=shop"
        ]
    );
    let (_, doc) = page(&base, "/ui/pods?namespace=elsewhere").await;
    assert!(rows(&doc).is_empty());
    let (_, doc) = page(&base, "/ui/pods").await;
    let unscoped: String = doc
        .select(&sel("nav.scopebar"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(
        unscoped.contains("all clusters, all namespaces"),
        "{unscoped}"
    );

    // The feed in the scope over the last hour, then over an absolute range (as the
    // browser's date-and-time fields send it, UTC).
    let (_, doc) = page(&base, "/ui/events?namespace=shop&last=1h").await;
    assert_eq!(reasons(&doc), ["BackOff"]);
    let field = |ago: i64| {
        (now - jiff::SignedDuration::from_secs(ago))
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let (status, doc) = page(
        &base,
        &format!(
            "/ui/events?namespace=shop&from={}&to={}",
            field(3 * 3600),
            field(3600)
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reasons(&doc), ["Pulled"]);
    let shown = |name: &str| {
        doc.select(&sel(&format!("input[name={name}]")))
            .next()
            .and_then(|i| i.attr("value"))
            .map(str::to_string)
    };
    assert_eq!(shown("from"), Some(field(3 * 3600)));
    assert_eq!(shown("to"), Some(field(3600)));

    // A relative range links to its absolute twin: the same events, later too.
    let (_, doc) = page(&base, "/ui/events?namespace=shop&last=3h").await;
    assert_eq!(reasons(&doc), ["BackOff", "Pulled"]);
    let frozen = hrefs(&doc, "a.frozen");
    assert_eq!(frozen.len(), 1);
    assert!(!frozen[0].contains("last="), "{}", frozen[0]);
    let (_, same) = page(&base, &frozen[0]).await;
    assert_eq!(reasons(&same), ["BackOff", "Pulled"]);

    // Each bar of the strip narrows the feed to its time: the bars with events hold them all.
    let bars = hrefs(&doc, "figure.strip a");
    assert_eq!(bars.len(), 48);
    let mut seen = Vec::new();
    for (bar, title) in bars.iter().zip(doc.select(&sel("figure.strip a title"))) {
        let title: String = title.text().collect();
        if title.contains(": 0 events") {
            continue;
        }
        let (_, narrowed) = page(&base, bar).await;
        seen.extend(reasons(&narrowed));
    }
    seen.sort();
    assert_eq!(seen, ["BackOff", "Pulled"]);
    // Captures in the scope: a pod's, not another's; storing one is on the feed.
    let id = common::upload_sample(&base, TOKEN).await;
    let (_, doc) = page(&base, "/ui/captures?namespace=shop&pod=web-1").await;
    assert_eq!(
        hrefs(&doc, "tbody a[href^='/ui/captures/']"),
        [format!("/ui/captures/{id}")]
    );
    let (_, doc) = page(&base, "/ui/captures?namespace=shop&pod=web-2").await;
    assert!(rows(&doc).is_empty());
    let (_, doc) = page(&base, "/ui/events?q=source%3Acapture").await;
    assert_eq!(reasons(&doc), ["CaptureStored"]);
}

/// A `multipart/form-data` body of `fields` (name, file name for a file, bytes), in order.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----crashscope-test-boundary-7d9c";
    let mut body = Vec::new();
    for (name, file, bytes) in fields {
        body.extend(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_capture_file_uploaded_from_the_browser_opens_and_a_bad_one_says_why() {
    let (_srv, base, _, dir) =
        common::start_with_dir(&format!("{TOKEN}\n{READ_TOKEN} read\n")).await;
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scap/sample.scap"
    ))
    .unwrap();
    let writer = login(&base, TOKEN).await;
    let doc = session_page(&base, &writer, "/ui/captures").await;
    let csrf = doc
        .select(&sel("form.upload input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .unwrap()
        .to_string();
    let post = |cookie: &str, fields: &[(&str, Option<&str>, &[u8])]| {
        let (kind, body) = multipart(fields);
        client()
            .post(format!("{base}/ui/captures/upload"))
            .header("cookie", cookie)
            .header("content-type", kind)
            .body(body)
            .send()
    };
    let r = post(
        &writer,
        &[
            ("csrf", None, csrf.as_bytes()),
            ("namespace", None, b"shop"),
            ("pod", None, b""),
            ("file", Some("sample.scap"), &sample),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let opened = location(&r);
    assert!(opened.starts_with("/ui/captures/"), "{opened}");
    let doc = session_page(&base, &writer, &opened).await;
    assert!(
        !rows(&doc).is_empty(),
        "the summary of the uploaded capture"
    );
    let (_, api) = json_get(&base, "/api/v1/captures").await;
    let item = &api["items"][0];
    assert_eq!(item["reason"], "manual");
    assert_eq!(item["namespace"], "shop");
    assert!(item["pod"].is_null(), "{item}");
    // The window and count are the file's own, as the inspector reads them.
    let id = item["id"].as_i64().unwrap();
    let (_, summary) = json_get(&base, &format!("/api/v1/captures/{id}/events?limit=1")).await;
    assert_eq!(item["events"], summary["events"]);

    // Not a capture: refused with what is wrong, nothing kept.
    let files = || {
        std::fs::read_dir(dir.join("captures"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = files();
    let r = post(
        &writer,
        &[
            ("csrf", None, csrf.as_bytes()),
            (
                "file",
                Some("notes.txt"),
                b"these are not the events you are looking for",
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let doc = Html::parse_document(&r.text().await.unwrap());
    let err = error_box(&doc);
    assert!(
        err.starts_with("body: the body is not a .scap capture"),
        "{err}"
    );
    // A capture's header on a truncated body: readable as a header, not as events.
    let r = post(
        &writer,
        &[
            ("csrf", None, csrf.as_bytes()),
            ("file", Some("cut.scap"), &sample[..40]),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let doc = Html::parse_document(&r.text().await.unwrap());
    let err = error_box(&doc);
    assert!(
        err.starts_with("file: crashscope cannot read this capture"),
        "{err}"
    );
    assert_eq!(
        files(),
        before,
        "refused files are removed, with their index"
    );
    let (_, api) = json_get(&base, "/api/v1/captures").await;
    assert_eq!(api["items"].as_array().unwrap().len(), 1);

    // The token must come before the file; a read-only session cannot upload.
    let r = post(
        &writer,
        &[
            ("file", Some("sample.scap"), &sample),
            ("csrf", None, csrf.as_bytes()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let reader = login(&base, READ_TOKEN).await;
    let doc = session_page(&base, &reader, "/ui/captures").await;
    assert!(doc.select(&sel("form.upload")).next().is_none());
    // With its own, valid token (the theme form's): refused for being read-only.
    let own = doc
        .select(&sel("form.theme input[name=csrf]"))
        .next()
        .and_then(|i| i.attr("value"))
        .unwrap()
        .to_string();
    let r = post(
        &reader,
        &[
            ("csrf", None, own.as_bytes()),
            ("file", Some("sample.scap"), &sample),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("this token is read-only"));
    // A text field is read up to a few KiB, never a whole body.
    let long = vec![b'x'; 64 * 1024];
    let r = post(
        &writer,
        &[("csrf", None, csrf.as_bytes()), ("namespace", None, &long)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let doc = Html::parse_document(&r.text().await.unwrap());
    assert!(
        error_box(&doc).starts_with("namespace: longer than"),
        "{}",
        error_box(&doc)
    );
}

#[tokio::test]
async fn a_captures_activity_strip_narrows_every_view_and_its_streams_are_followed() {
    let (_srv, base, _) = start().await;
    let id = common::upload_sample(&base, TOKEN).await;
    let matched = |doc: &Html| -> (u64, u64) {
        let text: String = doc
            .select(&sel("main p.scope"))
            .map(|p| p.text().collect::<String>())
            .find(|t| t.contains("events matched"))
            .unwrap();
        let mut words = text.split(' ');
        let n = words.next().unwrap().parse().unwrap();
        let total = words.nth(1).unwrap().parse().unwrap();
        (n, total)
    };
    let bar_counts = |doc: &Html| -> Vec<(u64, String)> {
        doc.select(&sel("figure.strip svg a"))
            .map(|a| {
                let title: String = a.select(&sel("title")).next().unwrap().text().collect();
                let n = title.split(": ").nth(1).unwrap().split(' ').next().unwrap();
                (n.parse().unwrap(), a.attr("href").unwrap().to_string())
            })
            .collect()
    };
    let (status, doc) = page(&base, &format!("/ui/captures/{id}")).await;
    assert_eq!(status, 200);
    let (all, total) = matched(&doc);
    assert_eq!(all, total);
    let bars = bar_counts(&doc);
    assert!(bars.len() >= 40 && bars.len() <= 50, "{} bars", bars.len());
    assert_eq!(
        bars.iter().map(|b| b.0).sum::<u64>(),
        total,
        "every event in a bar"
    );
    assert!(doc.select(&sel("a.reset")).next().is_none());
    // Each tile drills into its view (with its filter) or into the events.
    let drills: Vec<&str> = doc
        .select(&sel("table.feed tbody a"))
        .filter_map(|a| a.attr("href"))
        .collect();
    assert!(
        drills.contains(&format!("/ui/captures/{id}?view=procs").as_str()),
        "{drills:?}"
    );
    assert!(
        drills
            .contains(&format!("/ui/captures/{id}?view=errors&filter=evt.type%3Dconnect").as_str()),
        "{drills:?}"
    );
    assert!(drills
        .iter()
        .any(|d| d.starts_with(&format!("/ui/captures/{id}/events?"))));
    // A bar's link shows that stretch in the view: the bar's events, and a way back.
    let (n, link) = bars.iter().find(|b| b.0 > 0).unwrap().clone();
    let (status, narrowed) = page(&base, &link).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(matched(&narrowed), (n, total), "{link}");
    assert!(narrowed.select(&sel("a.reset")).next().is_some());
    // The narrowed window's strip spans the window only.
    let inner = bar_counts(&narrowed);
    assert_eq!(inner.iter().map(|b| b.0).sum::<u64>(), n);

    // I/O streams: each process's fd counted; the busiest followed first.
    let (status, doc) = page(&base, &format!("/ui/captures/{id}/io")).await;
    assert_eq!(status, 200);
    let (_, io) = json_get(&base, &format!("/api/v1/captures/{id}/views/io")).await;
    let io_rows = io["rows"].as_array().unwrap();
    let conversations = rows(&doc);
    let distinct: std::collections::BTreeSet<String> = io_rows
        .iter()
        .map(|r| format!("{}/{}", r["pid"], r["fd"]))
        .collect();
    assert_eq!(conversations.len(), distinct.len());
    let turns: u64 = conversations
        .iter()
        .map(|r| r[4].parse::<u64>().unwrap())
        .sum();
    assert_eq!(turns as usize, io_rows.len());
    let followed: Vec<String> = doc
        .select(&sel("li.turn .turn-head strong"))
        .map(|s| s.text().collect())
        .collect();
    assert_eq!(followed.len().to_string(), conversations[0][4]);
    // The same conversation one way only, and as hex.
    let first = doc
        .select(&sel("table.feed tbody a"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    let way = if followed[0].contains("write") {
        "read"
    } else {
        "write"
    };
    let (_, other_way) = page(&base, &format!("/ui/captures/{id}/io{first}&dir={way}")).await;
    assert!(other_way.select(&sel("li.turn")).next().is_none());
    let (_, hex) = page(&base, &format!("/ui/captures/{id}/io{first}&mode=hex")).await;
    let dump: String = hex
        .select(&sel("li.turn pre"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(dump.starts_with("00000000  "), "{dump}");
    // A bad filter is said, not an empty page.
    let (status, bad) = page(
        &base,
        &format!("/ui/captures/{id}/io?filter=evt.type%3Dopne"),
    )
    .await;
    assert_eq!(status, 400);
    let err = error_box(&bad);
    assert!(err.starts_with("filter:"), "{err}");
}

#[tokio::test]
async fn the_feeds_query_narrows_by_field_leaves_values_out_and_says_what_it_cannot_read() {
    let (_srv, base, store) = start().await;
    for (reason, ns) in [
        ("BackOff", "shop"),
        ("Pulled", "shop"),
        ("BackOff", "kube-system"),
    ] {
        let mut e = event(reason, &format!("{reason} in {ns}"));
        e.scope.namespace = Some(ns.into());
        store.upsert_event(&e).await.unwrap();
    }
    let reasons = |doc: &Html| -> Vec<String> {
        let mut r: Vec<String> = rows(doc)
            .into_iter()
            .map(|r| format!("{} {}", r[4], r[6]))
            .collect();
        r.sort();
        r
    };
    let (_, doc) = page(&base, "/ui/events?q=reason%3ABackOff").await;
    assert_eq!(
        reasons(&doc),
        ["BackOff BackOff in kube-system", "BackOff BackOff in shop"]
    );
    let (_, doc) = page(
        &base,
        "/ui/events?q=reason%3ABackOff+-namespace%3Akube-system",
    )
    .await;
    assert_eq!(reasons(&doc), ["BackOff BackOff in shop"]);
    let (_, doc) = page(&base, "/ui/events?q=-reason%3ABackOff+shop").await;
    assert_eq!(reasons(&doc), ["Pulled Pulled in shop"]);
    // The API reads the same language.
    let (status, api) = json_get(&base, "/api/v1/events?q=-namespace%3Ashop").await;
    assert_eq!(status, 200);
    assert_eq!(api["items"].as_array().unwrap().len(), 1);
    // A facet's value can be left out in one click.
    let (_, doc) = page(&base, "/ui/events").await;
    let hide = doc
        .select(&sel(
            "a.exclude[aria-label='Leave out namespace kube-system']",
        ))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    assert_eq!(hide, "/ui/events?q=-namespace%3Akube-system");
    let (_, doc) = page(&base, &hide).await;
    assert_eq!(reasons(&doc).len(), 2);
    // What it cannot read is said, naming the query.
    let (status, doc) = page(&base, "/ui/events?q=reason%3A").await;
    assert_eq!(status, 400);
    assert!(
        error_box(&doc).starts_with("q: reason: needs a value"),
        "{}",
        error_box(&doc)
    );
}

#[tokio::test]
async fn a_workloads_chart_has_a_series_per_pod_and_its_rollouts_marked() {
    let (_srv, base, store) = start().await;
    let now = jiff::Timestamp::now();
    for (pod, hash) in [("web-6b7f9-a", "6b7f9"), ("web-6b7f9-b", "6b7f9")] {
        let mut v = common::crashing_pod();
        v["metadata"]["name"] = serde_json::json!(pod);
        v["metadata"]["uid"] = serde_json::json!(format!("u-{pod}"));
        v["metadata"]["labels"] = serde_json::json!({"app": "web", "pod-template-hash": hash});
        v["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": format!("web-{hash}"), "uid": "rs", "controller": true}]);
        let kube: k8s_openapi::api::core::v1::Pod = serde_json::from_value(v).unwrap();
        let mut state = crashscope_model::PodState::from_pod(&kube);
        state.containers[0].restart_count = 1;
        store
            .record_pod(now - jiff::SignedDuration::from_secs(120), &state)
            .await
            .unwrap();
        state.containers[0].restart_count = 3;
        store.record_pod(now, &state).await.unwrap();
    }
    let mut scaled = event(
        "ScalingReplicaSet",
        "Scaled up replica set web-6b7f9 from 0 to 2",
    );
    scaled.scope.namespace = Some("shop".into());
    scaled.scope.workload = Some(crashscope_model::scope::WorkloadRef {
        kind: "Deployment".into(),
        name: "web".into(),
    });
    store.upsert_event(&scaled).await.unwrap();
    let (status, chart) = json_get(
        &base,
        "/ui/workloads/shop/deployment/web/chart.json?range=1h&width=300",
    )
    .await;
    assert_eq!(status, 200, "{chart}");
    let mut labels: Vec<&str> = chart["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    labels.sort();
    assert_eq!(labels, ["web-6b7f9-a", "web-6b7f9-b"]);
    let restarts: f64 = chart["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap())
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    // Each pod first seen with 1 restart, then 3: three each, as the restart metric counts.
    assert_eq!(restarts, 6.0);
    assert!(
        chart["markers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["label"]
                .as_str()
                .unwrap()
                .starts_with("ScalingReplicaSet")),
        "{chart}"
    );
    // The incident's page draws it.
    let (_, doc) = page(&base, "/ui/incidents").await;
    let link = doc
        .select(&sel("a[href^='/ui/incidents/detail']"))
        .next()
        .and_then(|a| a.attr("href"))
        .unwrap()
        .to_string();
    let (_, incident) = page(&base, &link).await;
    let src = incident
        .select(&sel("[data-chart]"))
        .next()
        .and_then(|c| c.attr("data-src"))
        .unwrap()
        .to_string();
    assert!(
        src.starts_with("/ui/workloads/shop/deployment/web/chart.json?from="),
        "{src}"
    );
    let (status, _) = json_get(&base, &src).await;
    assert_eq!(status, 200);
}
