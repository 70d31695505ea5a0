//! The bounded fuzz run of `make test`: a few thousand mutants per target, every one of
//! them answered — no panic, no hang, no damage read as complete, no server error. The
//! long run is `make fuzz`.

use crashscope_fuzz::{quiet_panics, Report, Run};

fn run(iterations: u64, seed: u64) -> Run {
    Run {
        iterations,
        seed,
        budget: None,
        out: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz"),
    }
}

fn clean(r: &Report) {
    assert_eq!(r.findings(), 0, "{r:#?}");
    assert!(r.inputs > 0, "{r:#?}");
}

#[test]
fn captures() {
    quiet_panics();
    let r = crashscope_fuzz::scap::run(&run(3000, 11));
    clean(&r);
    // Framing damage was tried and every one reported.
    assert!(r.reported_damage > 500, "{r:#?}");
}

#[test]
fn filters() {
    quiet_panics();
    clean(&crashscope_fuzz::filter::run(&run(1500, 12)));
}

#[test]
fn manifests() {
    quiet_panics();
    clean(&crashscope_fuzz::manifest::run(&run(1500, 13)));
}

#[test]
fn api_requests() {
    quiet_panics();
    let r = crashscope_fuzz::api::run(&run(1500, 14));
    clean(&r);
    assert!(r.refused > 100, "{r:#?}");
}
