//! "Done" for the server, as an operator runs it: `crashscope serve --local` with the demo's
//! nginx (deployed before the flask Service), a webhook receiver and a real Alertmanager
//! (Debian's prometheus-alertmanager). A deploy event posted first sits in the feed next to
//! the BackOff events; the restart rule fires and both receivers get it; once the Service is
//! applied, nginx starts and the alert resolves.
//! Needs root, nginx and Alertmanager: under CI their absence fails the test; elsewhere it is
//! skipped with the reason.

mod common;

use common::free_port;
use common::Guard;

// The web UI's browser helpers (Chromium through chromedriver, axe-core).
#[path = "../../web/tests/common/browser.rs"]
mod browser;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const TOKEN: &str = "serve-test-token-0123456789";

fn ready(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing = if !root {
        Some("root")
    } else if !Path::new("/usr/sbin/nginx").exists() {
        Some("nginx (apt-get install nginx)")
    } else if !Path::new(ALERTMANAGER).exists() {
        Some("Alertmanager (apt-get install prometheus-alertmanager)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test} needs {why} and CI must provide it")
        }
        Some(why) => {
            eprintln!("skipping {test}: needs {why}");
            false
        }
    }
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Runs the binary on `data` and fails the test when it fails.
fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crashscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn get(url: &str) -> Option<serde_json::Value> {
    let r = reqwest::blocking_get(url)?;
    Some(r)
}

mod reqwest {
    //! Tiny blocking helpers over the async client (the test is synchronous).
    pub use ::reqwest::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn blocking_get(url: &str) -> Option<serde_json::Value> {
        rt().block_on(async {
            let r = Client::new()
                .get(url)
                .bearer_auth(super::TOKEN)
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.json().await.ok()
        })
    }

    pub fn blocking_status(url: &str) -> u16 {
        rt().block_on(async {
            Client::new()
                .get(url)
                .bearer_auth(super::TOKEN)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    }

    pub fn blocking_post(url: &str, body: serde_json::Value) -> u16 {
        rt().block_on(async {
            Client::new()
                .post(url)
                .bearer_auth(super::TOKEN)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    }
}

#[test]
fn serve_local_fires_notifies_and_resolves_the_restart_alert() {
    if !ready("serve --local") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let nginx_port = free_port();
    let nginx = std::fs::read_to_string(repo.join("examples/demo/nginx.yaml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{nginx_port}"));
    std::fs::write(d.join("nginx.yaml"), nginx).unwrap();
    std::fs::write(d.join("tokens"), format!("{TOKEN}\n")).unwrap();

    let am_port = free_port();
    std::fs::write(
        d.join("am.yml"),
        "route:\n  receiver: keep\nreceivers:\n- name: keep\n",
    )
    .unwrap();
    let _am = Guard(
        Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", d.join("am.yml").display()))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        "alertmanager",
    );
    let am = format!("http://127.0.0.1:{am_port}");
    // The shipped rule with its window shortened as the runtime's clock is (time scale 0.05);
    // Alertmanager as the rule file's receiver (the webhook comes from the flag).
    std::fs::write(
        d.join("rules.yaml"),
        format!(
            "notify:\n- alertmanager: {am}\n\
             rules:\n- name: PodRestartingFrequently\n  summary: '{{workload}} restarted {{value}} times within {{window}}'\n  \
             severity: error\n  metric: {{name: kubernetes.pod.restart.count, by: pod, window: 15s, op: '>=', threshold: 3}}\n  \
             group_by: workload\n  actions:\n    capture: {{duration: 10s}}\n"
        ),
    )
    .unwrap();
    wait("Alertmanager to start", 30, || {
        get(&format!("{am}/api/v2/status"))
    });

    let (hook, seen) = common::receiver();
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let log = std::fs::File::create(d.join("serve.log")).unwrap();
    let _serve = Guard(
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(d.join("data"))
            .args(["serve", "--listen", &format!("127.0.0.1:{api_port}")])
            .arg("--token-file")
            .arg(d.join("tokens"))
            .arg("--rules")
            .arg(d.join("rules.yaml"))
            .args([
                "--eval-interval",
                "500ms",
                "--webhook",
                &format!("http://{hook}/hook"),
            ])
            .args(["--time-scale", "0.05", "--dns", "127.0.99.31", "--local"])
            .arg(d.join("nginx.yaml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
        "crashscope serve",
    );
    let serve_log = || std::fs::read_to_string(d.join("serve.log")).unwrap_or_default();
    wait("the API", 30, || get(&format!("{base}/api/v1/pods")));
    let status = reqwest::blocking_post(
        &format!("{base}/api/v1/events"),
        serde_json::json!({"name": "deploy nginx", "source": "jenkins",
                           "scope": {"namespace": "default", "workload": "deployment/nginx"}}),
    );
    assert_eq!(status, 201, "{}", serve_log());

    let firing = wait("the firing webhook", 90, || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|v| v["status"] == "firing")
            .cloned()
    });
    assert_eq!(
        firing["alert"]["group"], "default/deployment/nginx",
        "{firing}"
    );
    let pods = firing["alert"]["pods"].as_array().unwrap();
    assert!(pods[0].as_str().unwrap().starts_with("nginx-"), "{firing}");
    // The notification says why: the engine's cause, from the previous log at least.
    let why = &firing["alert"]["diagnosis"];
    assert_eq!(why["cause"], "dns-nxdomain", "{firing}");
    assert!(
        why["summary"].as_str().unwrap().contains("flask"),
        "{firing}"
    );
    assert!(why["remedy"].as_str().is_some(), "{firing}");
    // The alerts API carries the cause too, for whoever looks at the alert later.
    let listed = wait("the alert with its cause in /api/v1/alerts", 30, || {
        let v = get(&format!("{base}/api/v1/alerts?state=firing"))?;
        v["items"]
            .as_array()?
            .iter()
            .find(|a| a["cause"] == "dns-nxdomain")
            .cloned()
    });
    assert_eq!(listed["rule"], "PodRestartingFrequently", "{listed}");
    let am_alerts = wait("the alert in Alertmanager", 30, || {
        let v = get(&format!("{am}/api/v2/alerts"))?;
        v.as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "PodRestartingFrequently")
            .cloned()
    });
    assert_eq!(am_alerts["labels"]["workload"], "nginx", "{am_alerts}");
    assert_eq!(
        am_alerts["annotations"]["cause"], "dns-nxdomain",
        "{am_alerts}"
    );
    assert!(
        am_alerts["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Cause: dns-nxdomain"),
        "{am_alerts}"
    );
    assert_eq!(am_alerts["status"]["state"], "active", "{am_alerts}");

    // The feed: the deploy, then the BackOff events after it.
    let feed = get(&format!("{base}/api/v1/events?namespace=default&limit=200")).unwrap();
    let reasons: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"deploy nginx")
            && reasons.contains(&"BackOff")
            && reasons.contains(&"Diagnosed"),
        "{reasons:?}"
    );
    // The flight recorder's capture of a crash is indexed in the store and listed by the API.
    let capture = wait("a capture in /api/v1/captures", 30, || {
        let v = get(&format!("{base}/api/v1/captures"))?;
        v["items"]
            .as_array()?
            .iter()
            .find(|c| c["container"] == "nginx")
            .cloned()
    });
    assert!(capture["events"].as_i64().unwrap() > 0, "{capture}");
    assert!(capture["bytes"].as_i64().unwrap() > 0, "{capture}");
    assert!(
        Path::new(capture["path"].as_str().unwrap()).exists(),
        "{capture}"
    );
    assert!(
        capture["window_from"].as_str() <= capture["window_to"].as_str(),
        "{capture}"
    );
    // The diagnosis endpoint cites the capture once it is indexed.
    let pod = pods[0].as_str().unwrap();
    let diagnosis = wait("a diagnosis citing the capture", 30, || {
        let v = get(&format!("{base}/api/v1/pods/default/{pod}/diagnosis"))?;
        let top = v["items"][0]["causes"][0].clone();
        top["evidence"]
            .as_array()?
            .iter()
            .any(|e| e["source"] == "capture")
            .then_some(top)
    });
    assert_eq!(diagnosis["id"], "dns-nxdomain", "{diagnosis}");
    // The incident carries the cause the server diagnosed.
    let incidents = get(&format!("{base}/api/v1/incidents")).unwrap();
    assert_eq!(
        incidents["items"][0]["cause"], "dns-nxdomain",
        "{incidents}"
    );
    let missing = reqwest::blocking_status(&format!("{base}/api/v1/pods/default/nope/diagnosis"));
    assert_eq!(missing, 404);
    // The alert's action: a capture request, which the local runtime's flight recorder
    // fulfils (with the crash it lets through the rate limit, or a copy of the running
    // container's window); the capture is in the index.
    let taken = wait("the capture request to be taken", 60, || {
        let v = get(&format!("{base}/api/v1/capture-requests"))?;
        v["items"]
            .as_array()?
            .iter()
            .find(|r| r["state"] == "taken")
            .cloned()
    });
    let path = taken["capture"]
        .as_str()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    assert!(
        path.ends_with(".scap") && Path::new(&path).exists(),
        "{taken}"
    );
    let captures = get(&format!("{base}/api/v1/captures")).unwrap();
    assert!(
        captures["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == path.as_str()),
        "{captures}"
    );
    // `crashscope captures` lists the same index, newest first, with each instance named.
    let out = cli(&d.join("data"), &["captures", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["file"] == path.as_str())
        .unwrap_or_else(|| panic!("{path} not in {listed}"));
    assert_eq!(entry["container"], "nginx", "{entry}");

    // The same story in the web UI, in Chromium.
    story_in_the_browser(&base, pod);

    // Create the Service (and its backend): nginx starts, restarts stop, the alert resolves.
    let flask = repo.join("examples/demo/flask.yaml");
    cli(&d.join("data"), &["apply", "-f", flask.to_str().unwrap()]);
    let resolved = wait("the resolved webhook", 120, || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|v| v["status"] == "resolved")
            .cloned()
    });
    assert_eq!(resolved["alert"]["group"], "default/deployment/nginx");
    let alerts = get(&format!("{base}/api/v1/alerts")).unwrap();
    assert_eq!(alerts["items"][0]["state"], "resolved", "{alerts}");
    let firing_count = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "firing")
        .count();
    assert_eq!(firing_count, 1, "one notification per firing");
}

/// The reference story as an operator sees it in the web UI: the deploy and the BackOff
/// events in the feed, the pod page with the diagnosis, the restart chart and its marks, the
/// crashed instance's log, and the capture's DNS view with the lookup that failed — every
/// page axe-clean. Skipped (fails under CI) without chromedriver.
fn story_in_the_browser(base: &str, pod: &str) {
    use browser::*;
    use fantoccini::Locator;
    let Some(driver) = chromedriver() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let profile = tempfile::tempdir().unwrap();
        let c = browser(&driver, profile.path()).await;
        c.goto(&format!("{base}/ui/events?namespace=default")).await.unwrap();
        until(&c, "location.pathname === '/ui/login'", "the login page").await;
        let token = c.find(Locator::Css("#token")).await.unwrap();
        token.send_keys(&format!("{TOKEN}{ENTER}")).await.unwrap();
        until(&c, "location.pathname === '/ui/events'", "the feed").await;
        let has = |reason: &str| {
            format!(
                "[...document.querySelectorAll('table.feed tbody tr td:nth-child(5)')].some(td => td.textContent.trim() === '{reason}')"
            )
        };
        until(&c, &has("deploy nginx"), "the deploy in the feed").await;
        until(&c, &has("BackOff"), "BackOff in the feed").await;
        assert_accessible(&c, "story: feed").await;
        screenshot(&c, "story-feed.png").await;

        c.goto(&format!("{base}/ui/pods/default/{pod}")).await.unwrap();
        until(
            &c,
            "[...document.querySelectorAll('article.diagnosis .cause.top code')].some(e => e.textContent === 'dns-nxdomain')",
            "the diagnosis on the pod page",
        )
        .await;
        until(
            &c,
            "document.querySelector('[data-chart]').dataset.drawn === 'true' && document.querySelectorAll('.lane .marker').length > 0",
            "the restart chart with its marks",
        )
        .await;
        until(
            &c,
            "[...document.querySelectorAll('pre.log')].some(p => p.textContent.includes('flask'))",
            "nginx's log naming the upstream it could not resolve",
        )
        .await;
        assert_accessible(&c, "story: pod page").await;
        screenshot(&c, "story-pod.png").await;

        click_link(&c, "its captures").await;
        until(&c, "document.querySelectorAll('table.feed tbody tr').length > 0", "the pod's captures").await;
        // The capture written at a crash has the lookup; a requested one may hold only the
        // back-off's quiet: look through the pod's captures for it.
        let links = c
            .execute(
                "return [...document.querySelectorAll('table.feed tbody tr td:first-child a')].map(a => a.getAttribute('href'));",
                vec![],
            )
            .await
            .unwrap();
        let mut found = false;
        let mut seen = Vec::new();
        for link in links.as_array().unwrap() {
            let link = link.as_str().unwrap();
            c.goto(&format!("{base}{link}?view=dns")).await.unwrap();
            until(&c, "document.querySelector('nav.tabs') !== null", "the capture's DNS view").await;
            let failed = c
                .execute(
                    "return [...document.querySelectorAll('table.feed tbody tr')].some(tr => tr.textContent.includes('flask') && /nxdomain|non-existent domain/i.test(tr.textContent));",
                    vec![],
                )
                .await
                .unwrap();
            if failed == serde_json::Value::Bool(true) {
                found = true;
                break;
            }
            seen.push(
                c.execute("return document.querySelector('main').innerText;", vec![])
                    .await
                    .unwrap(),
            );
        }
        assert!(
            found,
            "no capture of {pod} shows the failed lookup of flask in its DNS view: {seen:#?}"
        );
        assert_accessible(&c, "story: capture dns view").await;
        screenshot(&c, "story-dns.png").await;
        c.close().await.unwrap();
    });
}
