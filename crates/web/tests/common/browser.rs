//! Driving Debian's Chromium through chromedriver (WebDriver) in tests: starting the
//! driver, a headless session, waiting on a condition in the page, pressing keys, axe-core's
//! accessibility check and screenshots (`target/screenshots/`). Shared by the UI's browser
//! test and the reference story's (`crates/cli/tests/serve.rs` includes this file).
//!
//! Needs `chromium` and `chromium-driver`: [`chromedriver`] is `None` (with the reason
//! printed) without them, and a failure when `CI` is set.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// WebDriver's Enter key.
pub const ENTER: char = '\u{E007}';

pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, or None (with the reason printed) when it is not installed.
pub fn chromedriver() -> Option<Driver> {
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

pub async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
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
pub async fn until(c: &Client, js: &str, what: &str) {
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

/// A key pressed on the keyboard (WebDriver key actions: the browser's own key events, to
/// whatever has the focus). `Escape` and `Enter` by name, anything else one character.
pub async fn press(c: &Client, key: &str) {
    use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
    let value = match key {
        "Escape" => '\u{E00C}',
        "Enter" => ENTER,
        "Tab" => '\u{E004}',
        k => k.chars().next().expect("a key"),
    };
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    c.perform_actions(keys).await.unwrap();
    c.release_actions().await.unwrap();
}

/// axe-core's violations on the current page.
pub async fn accessibility_violations(c: &Client) -> Vec<Value> {
    let axe = include_str!("../vendor/axe-core-4.14.1.min.js");
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
pub async fn assert_accessible(c: &Client, what: &str) {
    let violations = accessibility_violations(c).await;
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

pub async fn screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), c.screenshot().await.unwrap()).unwrap();
}

/// Follows the link whose text is `text`.
pub async fn click_link(c: &Client, text: &str) {
    c.find(fantoccini::Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Drags the mouse across the element `css` from `from` to `to` (fractions of its width, at
/// its middle height), as a person brushing a chart does.
pub async fn drag(c: &Client, css: &str, from: f64, to: f64) {
    use fantoccini::actions::{InputSource as _, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
    let el = c
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("nothing to drag across at {css:?}: {e}"));
    let width = c
        .execute(
            "return arguments[0].getBoundingClientRect().width;",
            vec![serde_json::to_value(&el).unwrap()],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let steps = 8;
    let mut moves = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: el,
            duration: None,
            x: (from - 0.5) * width,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        });
    for _ in 0..steps {
        moves = moves.then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(20)),
            x: (to - from) * width / f64::from(steps),
            y: 0.0,
        });
    }
    moves = moves.then(PointerAction::Up {
        button: MOUSE_BUTTON_LEFT,
    });
    c.perform_actions(moves).await.unwrap();
    c.release_actions().await.unwrap();
}
