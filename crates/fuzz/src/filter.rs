//! The filter language: any text, and text made of the language's own words, must parse or
//! be refused with a message — and a filter that parses must match events without panicking.

use std::io::Cursor;
use std::time::Duration;

use crashscope_inspect::filter::Filter;
use crashscope_inspect::scan::{scan, Scope};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;

use crate::mutate::{self, Rng};
use crate::{exercise, fixtures, Report, Run};

const BOUND: Duration = Duration::from_secs(2);

/// Words that are not a field, an operator or an operand: connectives, a misspelt field,
/// stray quotes and brackets.
const OTHER: &[&str] = &[
    "and",
    "or",
    "not",
    "(",
    ")",
    "proc.nme",
    "evt.arg.res",
    "exists",
    "\\",
    "\"",
    "'",
    ",",
    "",
];

const FIELDS: &[&str] = &[
    "evt.type",
    "evt.num",
    "evt.res",
    "evt.rawres",
    "evt.failed",
    "evt.dir",
    "evt.arg.fd",
    "evt.arg[0]",
    "evt.arg.name",
    "proc.name",
    "proc.pid",
    "proc.cmdline",
    "fd.name",
    "fd.port",
    "fd.sport",
    "fd.typechar",
    "fd.num",
    "thread.tid",
    "container.id",
    "k8s.pod.name",
    "evt.latency",
    "evt.reltime",
    "evt.arg.res",
];
const OPS: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    " contains ",
    " icontains ",
    " startswith ",
    " endswith ",
    " in ",
    " pmatch ",
    " glob ",
];
const OPERANDS: &[&str] = &[
    "open",
    "openat",
    "connect",
    "ENOENT",
    "-2",
    "0",
    "80",
    "443",
    "1e9",
    "99999999999999999999",
    "/etc",
    "*.so",
    "(open, close, 3)",
    "\"a b\"",
    "'x'",
    "curl",
    "true",
    "<",
    "",
];

fn sample_events() -> Vec<u8> {
    std::fs::read(fixtures().join("scap/curl_google.scap")).unwrap_or_default()
}

pub fn run(run: &Run) -> Report {
    let mut report = Report::new("filter");
    let capture = sample_events();
    let mut rng = Rng::new(run.seed);
    for _ in run.rounds() {
        let mut text: Vec<u8> = Vec::new();
        if rng.chance(2) {
            // Well formed: checks joined by and/or, some negated or grouped.
            for k in 0..1 + rng.below(5) {
                if k > 0 {
                    text.extend_from_slice(rng.pick(&[" and ", " or "][..]).as_bytes());
                }
                if rng.chance(4) {
                    text.extend_from_slice(b"not ");
                }
                let check = format!(
                    "{}{}{}",
                    rng.pick(FIELDS),
                    rng.pick(OPS),
                    rng.pick(OPERANDS)
                );
                if rng.chance(4) {
                    text.extend_from_slice(format!("({check})").as_bytes());
                } else {
                    text.extend_from_slice(check.as_bytes());
                }
            }
        } else {
            for _ in 0..1 + rng.below(12) {
                let words = *rng.pick(&[FIELDS, OPS, OPERANDS, OTHER][..]);
                text.extend_from_slice(rng.pick(words).as_bytes());
                text.push(b' ');
            }
        }
        if rng.chance(4) {
            text = mutate::bytes(&mut rng, &text, b"(((not not", 6);
        }
        if rng.chance(50) {
            // Deep nesting, as an attacker writes it.
            let n = 1 + rng.below(20_000);
            let open = if rng.chance(2) { "(" } else { "not " };
            text = format!("{}evt.type=open{}", open.repeat(n), ")".repeat(n)).into_bytes();
        }
        let s = String::from_utf8_lossy(&text).into_owned();
        let capture = &capture;
        let outcome = exercise(&mut report, run, &text, BOUND, || {
            match Filter::parse(&s) {
                Ok(f) => {
                    // Match it against real events (the first few hundred).
                    if let Ok(reader) = Reader::from_read(Cursor::new(capture.clone())) {
                        let mut replay = Replay::new(reader);
                        let scope = Scope {
                            filter: f,
                            ..Scope::default()
                        };
                        scan(&mut replay, &scope, &mut [], |_| {});
                    }
                    true
                }
                Err(e) => {
                    // A refusal names what is wrong.
                    assert!(!e.to_string().is_empty());
                    false
                }
            }
        });
        if outcome == Some(false) {
            report.refused += 1;
        }
    }
    report
}
