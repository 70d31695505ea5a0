//! DNS as the capture shows it: the questions the program sent and the answers it got. A name
//! for which every question (each search-list expansion, A and AAAA) came back NXDOMAIN does
//! not exist; one for which none came back, or only SERVFAIL, means DNS is unavailable. Only
//! the final outcome counts: a name that resolved in any form is fine.

use std::collections::BTreeMap;

use crate::candidate::Candidates;
use crate::case::Case;
use crate::evidence::{Evidence, Source, Tier};

use super::syscalls::Crash;

#[derive(Default)]
struct Outcome {
    asked: Vec<(u64, String, String, Option<String>)>,
    resolved: bool,
    nxdomain: bool,
    unanswered: bool,
    last_num: u64,
}

/// The name as the program asked it: the first label of a search-list expansion.
fn base(name: &str) -> String {
    name.trim_end_matches('.')
        .split('.')
        .next()
        .unwrap_or(name)
        .to_string()
}

pub fn propose(case: &Case, crash: &Crash, out: &mut Candidates) {
    let mut by_name: BTreeMap<String, Outcome> = BTreeMap::new();
    for q in crash
        .facts
        .dns
        .iter()
        .filter(|q| crash.family.contains(&q.pid) && q.num < crash.end)
    {
        let o = by_name.entry(base(&q.name)).or_default();
        o.asked
            .push((q.num, q.name.clone(), q.qtype.clone(), q.result.clone()));
        o.last_num = o.last_num.max(q.num);
        match q.result.as_deref() {
            Some("No Error") | Some("NoError") if !q.answers.is_empty() => o.resolved = true,
            Some("Non-Existent Domain") | Some("NXDomain") => o.nxdomain = true,
            Some("No Error") | Some("NoError") => {}
            _ => o.unanswered = true,
        }
    }
    // Connections made after the last failed lookup show the program got past it.
    let connected_after = |num: u64| {
        crash.facts.connects.iter().any(|c| {
            c.num > num && c.errno == 0 && crash.family.contains(&c.pid) && !c.peer.ends_with(":53")
        })
    };
    for (name, o) in by_name {
        if o.resolved {
            continue;
        }
        let printed = crash
            .printed(case, &format!("\"{name}\""))
            .or_else(|| crash.printed(case, &name));
        if printed.is_none() && connected_after(o.last_num) {
            continue;
        }
        let shown: Vec<String> = o
            .asked
            .iter()
            .take(4)
            .map(|(_, n, t, r)| {
                format!(
                    "{} {t} → {}",
                    n.trim_end_matches('.'),
                    r.as_deref().unwrap_or("no answer")
                )
            })
            .collect();
        let first = o.asked.first().map(|a| a.0).unwrap_or(0);
        let text = format!("{} question(s): {}", o.asked.len(), shown.join("; "));
        let ev = Evidence::new(Source::Capture, crash.facts.pointer(first), text);
        let (id, summary) = if o.nxdomain && !o.unanswered {
            ("dns-nxdomain", format!("the name \"{name}\" does not exist: DNS answered NXDOMAIN for every form of it the program asked"))
        } else if o.nxdomain {
            ("dns-nxdomain", format!("the name \"{name}\" does not resolve: DNS answered NXDOMAIN (some questions got no answer)"))
        } else {
            (
                "dns-unavailable",
                format!("DNS did not answer the program's questions for \"{name}\""),
            )
        };
        out.add(id, Tier::Capture, ev, summary.clone());
        out.subject(id, name.clone());
        if let Some(p) = printed {
            out.add(id, Tier::Log, p, summary);
        }
        if id == "dns-nxdomain" {
            out.rule_out("dns-unavailable", format!("DNS answered (NXDOMAIN) for \"{name}\": the server works, the name does not exist"));
        } else {
            out.rule_out(
                "dns-nxdomain",
                format!("no NXDOMAIN answer for \"{name}\" was seen: DNS itself did not answer"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_expansions_share_their_base() {
        assert_eq!(super::base("flask.shop.svc.cluster.local."), "flask");
        assert_eq!(super::base("flask"), "flask");
    }
}
