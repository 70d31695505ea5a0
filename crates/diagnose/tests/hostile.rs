//! Whatever a pod, a log or a capture holds, the engine answers: no panic, a diagnosis for
//! every crashed container, and causes from the catalog only.

use std::collections::BTreeMap;

use crashscope_diagnose::capture::scan_capture;
use crashscope_diagnose::cause::cause;
use crashscope_diagnose::{diagnose, Inputs, LogText, World};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;

fn pod(reason: &str, code: i32, message: &str, waiting: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c", "image": "i",
            "livenessProbe": {"httpGet": {"port": "http"}},
            "volumeMounts": [{"name": "v", "mountPath": "/"}]}]},
        "status": {"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 2,
            "state": {"waiting": {"reason": waiting, "message": message}},
            "lastState": {"terminated": {"reason": reason, "exitCode": code, "message": message}}}]}
    }))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_status_and_log_get_an_answer(
        reason in "[A-Za-z]{0,20}",
        code in any::<i32>(),
        message in ".{0,200}",
        waiting in prop::sample::select(vec!["CrashLoopBackOff", "CreateContainerConfigError", "RunContainerError", "", "x"]),
        log in prop::collection::vec(".{0,120}", 0..30),
    ) {
        let p = pod(&reason, code, &message, waiting);
        let mut logs = BTreeMap::new();
        logs.insert("c".to_string(), LogText::new("l", &log.join("\n")));
        let out = diagnose(&Inputs {
            pod: &p,
            events: &[],
            logs: &logs,
            captures: &BTreeMap::new(),
            world: &World::default(),
            now: jiff::Timestamp::UNIX_EPOCH,
        }, None);
        prop_assert_eq!(out.len(), 1);
        for c in &out[0].causes {
            prop_assert!(cause(&c.id).is_some(), "{} is not a catalog id", c.id);
            prop_assert!((0.0..=1.0).contains(&c.confidence));
        }
    }

    #[test]
    fn any_bytes_as_a_capture_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        // Behind a valid section header, so the reader goes on to the blocks.
        let mut file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/scap/sample.scap")).unwrap();
        file.truncate(28.min(file.len()));
        file.extend_from_slice(&bytes);
        if let Ok(reader) = Reader::from_read(std::io::Cursor::new(file)) {
            let mut replay = Replay::new(reader);
            let facts = scan_capture("fuzz.scap", &mut replay);
            let p = pod("Error", 1, "", "CrashLoopBackOff");
            let mut captures = BTreeMap::new();
            captures.insert("c".to_string(), facts);
            let out = diagnose(&Inputs {
                pod: &p,
                events: &[],
                logs: &BTreeMap::new(),
                captures: &captures,
                world: &World::default(),
                now: jiff::Timestamp::UNIX_EPOCH,
            }, None);
            prop_assert_eq!(out.len(), 1);
        }
    }
}

#[test]
fn real_captures_cut_anywhere_keep_what_came_before() {
    let file = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scap/curl_google.scap"
    ))
    .unwrap();
    for cut in [100, 1000, file.len() / 3, file.len() / 2, file.len() - 7] {
        let reader = Reader::from_read(std::io::Cursor::new(file[..cut].to_vec())).unwrap();
        let mut replay = Replay::new(reader);
        let facts = scan_capture("cut.scap", &mut replay);
        assert!(facts.damage.is_some() || facts.events > 0, "cut at {cut}");
    }
}
