//! The web UI in a real browser: Debian's Chromium driven through chromedriver (WebDriver)
//! against a real server. Logging in through the form, the feed drawn with the vendored
//! htmx running under the page's Content-Security-Policy, filtering from the keyboard with
//! the feed swapped in place, row selection and the help dialog, and axe-core (vendored)
//! finding no accessibility violation on any page. Screenshots go to
//! `target/screenshots/` for review. Waits are on conditions, never on fixed sleeps.
//!
//! Needs `chromium` and `chromium-driver`: skipped with a message without them, and a
//! failure when `CI` is set.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const TOKEN: &str = "browser-test-token-0123456789";
const ENTER: char = '\u{E007}';

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, or None (with the reason printed) when it is not installed.
fn chromedriver() -> Option<Driver> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = "chromedriver is not installed (apt-get install chromium chromium-driver)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Waits until `js` (an expression) is true in the page, up to 10 s.
async fn until(c: &Client, js: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c
            .execute(&format!("return !!({js});"), vec![])
            .await
            .unwrap();
        if v == Value::Bool(true) {
            return;
        }
        if Instant::now() >= deadline {
            let state = c
                .execute(
                    "return document.querySelector('main').innerHTML.slice(0, 3000);",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; the page: {state}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key pressed on the page (as the document's keydown listeners receive it).
async fn press(c: &Client, key: &str) {
    c.execute(
        "document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: arguments[0], bubbles: true}));",
        vec![json!(key)],
    )
    .await
    .unwrap();
}

/// axe-core's violations on the current page.
async fn accessibility_violations(c: &Client) -> Vec<Value> {
    let axe = include_str!("vendor/axe-core-4.14.1.min.js");
    c.execute(&format!("{axe}\nreturn true;"), vec![])
        .await
        .unwrap();
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, help: v.help,
                 nodes: v.nodes.map(n => n.html)}))), e => done([{id: 'axe-error', help: String(e)}]));",
            vec![],
        )
        .await
        .unwrap();
    r.as_array().cloned().unwrap_or_default()
}

/// axe-core finds nothing on the current page, `what`.
async fn assert_accessible(c: &Client, what: &str) {
    let violations = accessibility_violations(c).await;
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), c.screenshot().await.unwrap()).unwrap();
}

#[tokio::test]
async fn in_chromium_a_person_logs_in_and_filters_the_feed_from_the_keyboard() {
    let Some(driver) = chromedriver() else { return };
    let (_srv, base, store) = common::start(&format!("{TOKEN}\n")).await;
    common::store_crashing_pod(&store).await;
    common::post_event(
        &base,
        TOKEN,
        json!({"name": "restarted-by-hand", "description": "an operator's note on the pod",
               "source": "ops", "scope": {"namespace": "shop", "pod": "web-7d9c"}}),
    )
    .await;
    common::post_event(
        &base,
        TOKEN,
        json!({"name": "deploy", "description": "web 1.4.2 rolled out", "source": "ci",
               "scope": {"namespace": "shop", "workload": "deployment/web"}}),
    )
    .await;
    common::post_event(
        &base,
        TOKEN,
        json!({"name": "cache-flush", "description": "cache flushed", "source": "ops",
               "severity": "warning", "scope": {"namespace": "shop"}}),
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    c.goto(&format!("{base}/ui/events")).await.unwrap();
    until(&c, "location.pathname === '/ui/login'", "the login page").await;
    assert_accessible(&c, "login page").await;
    screenshot(&c, "login.png").await;
    let token = c.find(Locator::Css("#token")).await.unwrap();
    token.send_keys(&format!("{TOKEN}{ENTER}")).await.unwrap();
    until(
        &c,
        "location.pathname === '/ui/events'",
        "the feed after login",
    )
    .await;
    until(
        &c,
        "document.querySelectorAll('table.feed tbody tr').length === 3",
        "three rows",
    )
    .await;
    // The vendored htmx ran: the page's policy allows this server's scripts.
    until(&c, "typeof htmx === 'object'", "htmx loaded").await;
    assert_accessible(&c, "events page").await;
    screenshot(&c, "events.png").await;

    // An event arriving while the page is read is offered in a pill, not pushed into the rows.
    common::post_event(&base, TOKEN, json!({"name": "scale-up", "source": "ops"})).await;
    until(
        &c,
        "document.querySelector('.pill') !== null && document.querySelector('.pill').textContent.startsWith('1 new event')",
        "the new-events pill",
    )
    .await;
    assert_eq!(
        c.execute(
            "return document.querySelectorAll('table.feed tbody tr').length;",
            vec![]
        )
        .await
        .unwrap(),
        json!(3)
    );

    // `/` goes to the filter box; typing a word and Enter narrows the feed in place.
    press(&c, "/").await;
    until(
        &c,
        "document.activeElement.name === 'q'",
        "the filter box focused",
    )
    .await;
    let q = c.find(Locator::Css("input[name=q]")).await.unwrap();
    q.send_keys(&format!("rolled{ENTER}")).await.unwrap();
    until(
        &c,
        "document.querySelectorAll('table.feed tbody tr').length === 1",
        "one row after filtering",
    )
    .await;
    until(
        &c,
        "location.search.includes('q=rolled')",
        "the filter in the URL",
    )
    .await;
    // The swap kept the page (the filter box still holds the text): no full reload.
    let still = c
        .execute(
            "return document.querySelector('input[name=q]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(still, json!("rolled"));

    // Esc leaves the box; j selects the first row; ? opens the help.
    press(&c, "Escape").await;
    press(&c, "j").await;
    until(
        &c,
        "document.querySelector('table.feed tbody tr').getAttribute('aria-selected') === 'true'",
        "the first row selected",
    )
    .await;
    press(&c, "?").await;
    until(
        &c,
        "document.getElementById('help').open",
        "the help dialog",
    )
    .await;
    screenshot(&c, "events-help.png").await;

    // `g p` goes to the pods; the crash-looping pod links to its page and its diagnosis.
    press(&c, "Escape").await;
    press(&c, "g").await;
    press(&c, "p").await;
    until(&c, "location.pathname === '/ui/pods'", "the pods page").await;
    assert_accessible(&c, "pods page").await;
    c.find(Locator::LinkText("web-7d9c"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "document.querySelector('article.diagnosis .cause.top') !== null",
        "the pod page's diagnosis",
    )
    .await;
    // The restart chart drew, with the operator's note on the pod marked in the lane below it.
    until(
        &c,
        "document.querySelector('[data-chart]').dataset.drawn === 'true'",
        "the restart chart",
    )
    .await;
    until(
        &c,
        "document.querySelector('.uplot canvas') !== null && document.querySelectorAll('.lane .marker').length >= 1",
        "the chart's canvas and its event marks",
    )
    .await;
    assert_accessible(&c, "pod page").await;
    screenshot(&c, "pod.png").await;

    // The incidents: the pod's crash loop, linked to its page.
    press(&c, "g").await;
    press(&c, "i").await;
    until(
        &c,
        "location.pathname === '/ui/incidents'",
        "the incidents page",
    )
    .await;
    assert_accessible(&c, "incidents page").await;

    // The capture inspector: the list, a view, and a page of events, each axe-clean.
    let id = common::upload_sample(&base, TOKEN).await;
    press(&c, "g").await;
    press(&c, "c").await;
    until(
        &c,
        "location.pathname === '/ui/captures'",
        "the captures page",
    )
    .await;
    assert_accessible(&c, "captures page").await;
    c.find(Locator::LinkText(&format!("#{id}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "document.querySelectorAll('table.feed tbody tr').length > 0",
        "the summary view",
    )
    .await;
    c.find(Locator::LinkText("procs"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "location.search.includes('view=procs')",
        "the procs view",
    )
    .await;
    assert_accessible(&c, "capture view").await;
    screenshot(&c, "capture-procs.png").await;
    c.find(Locator::LinkText("events"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "location.pathname.endsWith('/events') && document.querySelectorAll('table.feed tbody tr').length > 0", "the capture's events").await;
    assert_accessible(&c, "capture events").await;
    screenshot(&c, "capture-events.png").await;
    c.close().await.unwrap();
}

#[test]
fn vendored_test_files_match_their_recorded_digests() {
    common::check_digests(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vendor"));
}
