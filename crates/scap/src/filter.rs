//! A minimal sysdig-style filter for `inspect --events`: comparisons of `proc.name`,
//! `evt.type`, `evt.dir`, `thread.tid`, `fd.name` and `evt.info` with `=`, `!=` and
//! `contains`, joined by `and`. The full filter language comes with the inspector.

use crate::format::Line;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cond {
    field: String,
    op: Op,
    value: String,
}

/// A parsed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    conds: Vec<Cond>,
}

const FIELDS: [&str; 6] = [
    "proc.name",
    "evt.type",
    "evt.dir",
    "thread.tid",
    "fd.name",
    "evt.info",
];

impl Filter {
    /// Parses `expr`; errors say where and what was expected.
    pub fn parse(expr: &str) -> Result<Filter, String> {
        let mut conds = Vec::new();
        for (i, part) in expr.split(" and ").enumerate() {
            let part = part.trim();
            let (field, op, value) = if let Some((f, v)) = part.split_once(" contains ") {
                (f.trim(), Op::Contains, v.trim())
            } else if let Some((f, v)) = part.split_once("!=") {
                (f.trim(), Op::Ne, v.trim())
            } else if let Some((f, v)) = part.split_once('=') {
                (f.trim(), Op::Eq, v.trim())
            } else {
                return Err(format!(
                    "condition {} ({part:?}): expected FIELD=VALUE, FIELD!=VALUE or FIELD contains VALUE",
                    i + 1
                ));
            };
            if !FIELDS.contains(&field) {
                return Err(format!(
                    "condition {} ({part:?}): unknown field {field:?}; supported: {}",
                    i + 1,
                    FIELDS.join(", ")
                ));
            }
            let value = value.trim_matches('"').trim_matches('\'').to_string();
            conds.push(Cond {
                field: field.to_string(),
                op,
                value,
            });
        }
        Ok(Filter { conds })
    }

    /// Whether `line` matches every condition.
    pub fn matches(&self, line: &Line) -> bool {
        self.conds.iter().all(|c| {
            let tid = line.tid.to_string();
            let fd_name = fd_name(&line.info);
            let actual: &str = match c.field.as_str() {
                "proc.name" => &line.proc_name,
                "evt.type" => &line.type_,
                "evt.dir" => line.dir,
                "thread.tid" => &tid,
                "fd.name" => fd_name.unwrap_or(""),
                _ => &line.info,
            };
            match c.op {
                Op::Eq => actual == c.value,
                Op::Ne => actual != c.value,
                Op::Contains => actual.contains(&c.value),
            }
        })
    }
}

/// The name of the fd an event line refers to: what `fd=N(<t>NAME)` shows.
fn fd_name(info: &str) -> Option<&str> {
    let start = info.find("fd=")?;
    let rest = &info[start..];
    let open = rest.find(">")?;
    let close = rest.find(") ")?;
    (open < close).then(|| &rest[open + 1..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(info: &str) -> Line {
        Line {
            num: 1,
            ts: 0,
            cpu: 0,
            proc_name: "nginx".into(),
            tid: 7,
            dir: "<",
            type_: "openat".into(),
            info: info.into(),
        }
    }

    #[test]
    fn filters_match_like_sysdig() {
        let l = line("fd=3(<f>/etc/resolv.conf) dirfd=-100 name=/etc/resolv.conf ");
        assert!(Filter::parse("proc.name=nginx and evt.type=openat")
            .unwrap()
            .matches(&l));
        assert!(Filter::parse("fd.name contains resolv")
            .unwrap()
            .matches(&l));
        assert!(!Filter::parse("proc.name!=nginx").unwrap().matches(&l));
        assert!(Filter::parse("thread.tid=7").unwrap().matches(&l));
        let e = Filter::parse("proc.nam=nginx").unwrap_err();
        assert!(e.contains("unknown field \"proc.nam\""), "{e}");
        assert!(Filter::parse("proc.name")
            .unwrap_err()
            .contains("expected FIELD=VALUE"));
    }
}
