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

use std::path::PathBuf;

use common::browser::*;
use fantoccini::Locator;
use serde_json::json;

const TOKEN: &str = "browser-test-token-0123456789";

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
    click_link(&c, "web-7d9c").await;
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

    // The alerts, and a silence started from one: its form says what it would silence.
    store
        .save_alert(&common::alert(
            "shop/web",
            "web",
            crashscope_model::alert::AlertPhase::Firing,
        ))
        .await
        .unwrap();
    press(&c, "g").await;
    press(&c, "a").await;
    until(&c, "location.pathname === '/ui/alerts'", "the alerts page").await;
    assert_accessible(&c, "alerts page").await;
    click_link(&c, "silence…").await;
    until(
        &c,
        "document.querySelector('.preview') && document.querySelector('.preview').textContent.startsWith('Would silence 1 ')",
        "the silence form's preview",
    )
    .await;
    assert_accessible(&c, "new silence page").await;
    screenshot(&c, "silence-new.png").await;
    c.find(Locator::Css("form.silence button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "location.pathname === '/ui/silences' && document.querySelectorAll('table.feed tbody tr').length === 1", "the silence in force").await;
    assert_accessible(&c, "silences page").await;

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
    click_link(&c, &format!("#{id}")).await;
    until(
        &c,
        "document.querySelectorAll('table.feed tbody tr').length > 0",
        "the summary view",
    )
    .await;
    click_link(&c, "procs").await;
    until(
        &c,
        "location.search.includes('view=procs')",
        "the procs view",
    )
    .await;
    assert_accessible(&c, "capture view").await;
    screenshot(&c, "capture-procs.png").await;
    click_link(&c, "events").await;
    until(&c, "location.pathname.endsWith('/events') && document.querySelectorAll('table.feed tbody tr').length > 0", "the capture's events").await;
    assert_accessible(&c, "capture events").await;
    screenshot(&c, "capture-events.png").await;
    c.close().await.unwrap();
}

#[test]
fn vendored_test_files_match_their_recorded_digests() {
    common::check_digests(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vendor"));
}
