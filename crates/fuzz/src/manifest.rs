//! The manifest loader (kubectl-style files, recorded API traffic, the local runtime's
//! manifests): mutated real files and crafted ones (deep nesting, alias bombs, huge lists)
//! must load what they can and name the rest, quickly and without panicking.

use std::time::Duration;

use crashscope_kube::load::{Loaded, Want};

use crate::mutate::{self, Rng};
use crate::{exercise, fixtures, scenarios, seeds, Report, Run};

/// Longest one input may take (they are at most a few hundred KB).
const BOUND: Duration = Duration::from_secs(2);

fn crafted(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(100_000);
    match rng.below(5) {
        0 => format!("x: {}", "[".repeat(n)).into_bytes(),
        1 => "{\"a\":".repeat(n.min(20_000)).into_bytes(),
        2 => {
            // An alias bomb: each level refers to the one before ten times.
            let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            for i in 1..(1 + rng.below(12)) {
                let refs = vec![format!("*a{}", i - 1); 10].join(", ");
                s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
            }
            s.into_bytes()
        }
        3 => {
            let items = vec!["{}"; n].join(",");
            format!("{{\"kind\":\"List\",\"items\":[{items}]}}").into_bytes()
        }
        _ => {
            let line = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}}\n";
            line.repeat(n.min(20_000)).into_bytes()
        }
    }
}

pub fn run(run: &Run) -> Report {
    let mut report = Report::new("manifest");
    let mut corpus = seeds(&fixtures().join("k8s"));
    corpus.extend(seeds(&fixtures().join("k8s/api-replays-v1-34")));
    corpus.extend(seeds(&scenarios()));
    if corpus.is_empty() {
        return report;
    }
    let mut rng = Rng::new(run.seed);
    for _ in run.rounds() {
        let input = if rng.chance(20) {
            crafted(&mut rng)
        } else {
            let seed = rng.pick(&corpus).clone();
            let other = rng.pick(&corpus).clone();
            mutate::bytes(&mut rng, &seed, &other, 6)
        };
        let text = String::from_utf8_lossy(&input).into_owned();
        let refused = exercise(&mut report, run, &input, BOUND, || {
            let mut loaded = Loaded::default();
            loaded.add_text(
                "fuzz.yaml",
                &text,
                Want {
                    pods: true,
                    events: true,
                },
            );
            let (_, errors) = crashscope_local::manifest::parse("fuzz.yaml", &text);
            // Every refusal names the file.
            for e in loaded.errors.iter().chain(&errors) {
                assert_eq!(e.file, "fuzz.yaml");
            }
            !loaded.errors.is_empty() || !errors.is_empty()
        });
        if refused == Some(true) {
            report.refused += 1;
        }
    }
    report
}
