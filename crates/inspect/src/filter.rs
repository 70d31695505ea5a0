//! sysdig's filter language: checks `FIELD OP VALUE` (or `FIELD exists`) joined by `and`,
//! `or`, `not` and parentheses, e.g.
//! `proc.name=nginx and (fd.name contains resolv or fd.sport=53) and not evt.failed=false`.
//!
//! As in libsinsp, `and` binds tighter than `or`, keywords are lower case, values are bare
//! words or quoted with `'` or `"`, lists for `in`/`intersects`/`pmatch` are parenthesised
//! and separated by commas or spaces, and a check on a field the event lacks is false (so
//! `fd.name!=x` does not match events without an fd).

use std::fmt;

use crate::event::Ev;
use crate::fields::{lookup, Field, Kind, Val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    StartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    Pmatch,
    Exists,
}

const WORD_OPS: [(&str, Op); 11] = [
    ("contains", Op::Contains),
    ("icontains", Op::IContains),
    ("startswith", Op::StartsWith),
    ("endswith", Op::EndsWith),
    ("glob", Op::Glob),
    ("iglob", Op::IGlob),
    ("regex", Op::Regex),
    ("in", Op::In),
    ("intersects", Op::Intersects),
    ("pmatch", Op::Pmatch),
    ("exists", Op::Exists),
];

/// The comparison value, prepared for fast matching.
#[derive(Debug, Clone)]
enum Rhs {
    None,
    Text(String),
    Number(i64),
    Bool(bool),
    List(Vec<String>),
    Glob(glob::Pattern),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
struct Check {
    field: Field,
    op: Op,
    rhs: Rhs,
}

#[derive(Debug, Clone)]
enum Expr {
    Check(Check),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    expr: Option<Expr>,
    text: String,
}

/// Why a filter could not be parsed, with the character position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub pos: usize,
    pub msg: String,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The filter with a caret under the place the problem starts.
        let col = self.text[..self.pos.min(self.text.len())].chars().count();
        write!(
            f,
            "at column {}: {}\n  {}\n  {}^",
            col + 1,
            self.msg,
            self.text,
            " ".repeat(col)
        )
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let mut p = Parser {
            s: text,
            pos: 0,
            depth: 0,
        };
        p.ws();
        if p.pos == text.len() {
            return Ok(Filter::default());
        }
        let expr = p.or()?;
        p.ws();
        if p.pos < text.len() {
            return Err(p.err("expected 'and', 'or' or the end of the filter"));
        }
        Ok(Filter {
            expr: Some(expr),
            text: text.to_string(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `ev` matches; `first_ts` is the capture's first event time (`evt.reltime`).
    pub fn matches(&self, ev: &Ev, first_ts: u64) -> bool {
        self.expr.as_ref().is_none_or(|e| eval(e, ev, first_ts))
    }
}

fn eval(e: &Expr, ev: &Ev, first_ts: u64) -> bool {
    match e {
        Expr::Check(c) => check(c, ev, first_ts),
        Expr::Not(e) => !eval(e, ev, first_ts),
        Expr::And(v) => v.iter().all(|e| eval(e, ev, first_ts)),
        Expr::Or(v) => v.iter().any(|e| eval(e, ev, first_ts)),
    }
}

fn check(c: &Check, ev: &Ev, first_ts: u64) -> bool {
    if matches!(&c.field, Field::Simple(f) if f.name == "fd.port") {
        return port_check(c, ev);
    }
    let Some(v) = c.field.value(ev, first_ts) else {
        return false;
    };
    if c.op == Op::Exists {
        return true;
    }
    match (&v, &c.rhs) {
        (Val::Number(a), Rhs::Number(b)) => cmp(c.op, a.cmp(b)),
        (Val::Bool(a), Rhs::Bool(b)) => match c.op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
        (_, Rhs::List(items)) => {
            let t = v.text();
            match c.op {
                Op::Pmatch => items.iter().any(|p| {
                    t.strip_prefix(p.trim_end_matches('/'))
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                }),
                _ => items.iter().any(|i| *i == t),
            }
        }
        (_, Rhs::Glob(g)) => {
            let t = v.text();
            if c.op == Op::IGlob {
                let opts = glob::MatchOptions {
                    case_sensitive: false,
                    ..Default::default()
                };
                g.matches_with(&t, opts)
            } else {
                g.matches(&t)
            }
        }
        (_, Rhs::Regex(r)) => r.is_match(&v.text()),
        (_, Rhs::Text(b)) => {
            let a = v.text();
            match c.op {
                Op::Contains => a.contains(b.as_str()),
                Op::IContains => a.to_lowercase().contains(&b.to_lowercase()),
                Op::StartsWith => a.starts_with(b.as_str()),
                Op::EndsWith => a.ends_with(b.as_str()),
                op => cmp(op, str::cmp(&a, b.as_str())),
            }
        }
        _ => false,
    }
}

/// `fd.port` compares with either end of a socket; `!=` means neither end.
fn port_check(c: &Check, ev: &Ev) -> bool {
    let Some((client, server)) = ev.fd().and_then(crate::fields::endpoints) else {
        return false;
    };
    let ports: Vec<i64> = [client, server]
        .into_iter()
        .flatten()
        .map(|(_, p)| i64::from(p))
        .collect();
    match (&c.rhs, c.op) {
        (_, Op::Exists) => !ports.is_empty(),
        (Rhs::Number(n), Op::Ne) => !ports.is_empty() && ports.iter().all(|p| p != n),
        (Rhs::Number(n), op) => ports.iter().any(|p| cmp(op, p.cmp(n))),
        (Rhs::List(items), _) => ports
            .iter()
            .any(|p| items.iter().any(|i| *i == p.to_string())),
        _ => false,
    }
}

fn cmp(op: Op, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => o == Equal,
        Op::Ne => o != Equal,
        Op::Lt => o == Less,
        Op::Le => o != Greater,
        Op::Gt => o == Greater,
        Op::Ge => o != Less,
        _ => false,
    }
}

/// Deepest nesting of parentheses and `not` a filter may have: the parser and the matcher
/// recurse once per level, and 7,000 levels overflowed the stack. sysdig's filters in the
/// wild nest a handful.
pub const MAX_DEPTH: usize = 100;

struct Parser<'s> {
    s: &'s str,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn err(&self, msg: impl Into<String>) -> ParseError {
        self.err_at(self.pos, msg)
    }

    fn err_at(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            msg: msg.into(),
            text: self.s.to_string(),
        }
    }

    fn rest(&self) -> &'s str {
        &self.s[self.pos..]
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    /// Consumes `kw` when it is the next whole word.
    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let r = self.rest();
        let after = r.get(kw.len()..).and_then(|a| a.chars().next());
        if r.starts_with(kw) && after.is_none_or(|c| c.is_whitespace() || c == '(') {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.and()?];
        while self.keyword("or") {
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.not()?];
        while self.keyword("and") {
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    /// Enters one level of nesting, refusing past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!(
                "nested more than {MAX_DEPTH} levels of parentheses and 'not'"
            )));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.keyword("not") {
            self.deeper()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        if self.rest().starts_with('(') {
            self.pos += 1;
            self.deeper()?;
            let e = self.or()?;
            self.depth -= 1;
            self.ws();
            if !self.rest().starts_with(')') {
                return Err(self.err("expected ')'"));
            }
            self.pos += 1;
            return Ok(e);
        }
        self.check().map(Expr::Check)
    }

    fn check(&mut self) -> Result<Check, ParseError> {
        let start = self.pos;
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || "._[]-".contains(c));
        if name.is_empty() {
            return Err(if self.rest().is_empty() {
                self.err("expected a field name, found the end of the filter")
            } else {
                self.err("expected a field name such as proc.name")
            });
        }
        if ["and", "or", "not"].contains(&name) {
            return Err(self.err_at(start, format!("expected a field name, found '{name}'")));
        }
        let field = lookup(name).map_err(|m| self.err_at(start, m))?;
        self.ws();
        let op_pos = self.pos;
        let op = self.op().ok_or_else(|| {
            self.err(format!(
                "expected an operator after {name} (=, !=, <, <=, >, >=, contains, icontains, \
                 startswith, endswith, glob, iglob, regex, in, intersects, pmatch, exists)"
            ))
        })?;
        if op == Op::Exists {
            return Ok(Check {
                field,
                op,
                rhs: Rhs::None,
            });
        }
        self.ws();
        let val_pos = self.pos;
        let rhs = if matches!(op, Op::In | Op::Intersects | Op::Pmatch) {
            Rhs::List(self.list()?)
        } else {
            let v = self.value()?;
            self.prepare(&field, op, v, op_pos, val_pos)?
        };
        // As sysdig: an event type nothing can record is a typo, not a filter matching nothing.
        let exact = matches!(op, Op::Eq | Op::Ne | Op::In | Op::Intersects);
        if exact && matches!(&field, Field::Simple(f) if f.name == "evt.type") {
            let names: Vec<&str> = match &rhs {
                Rhs::Text(t) => vec![t.as_str()],
                Rhs::List(items) => items.iter().map(String::as_str).collect(),
                _ => vec![],
            };
            if let Some(bad) = names
                .into_iter()
                .find(|n| !crashscope_scap::schema::is_type_name(n))
            {
                return Err(self.err_at(val_pos, format!("unknown event type {bad:?}")));
            }
        }
        Ok(Check { field, op, rhs })
    }

    fn prepare(
        &self,
        field: &Field,
        op: Op,
        v: String,
        op_pos: usize,
        val_pos: usize,
    ) -> Result<Rhs, ParseError> {
        let text_op = matches!(
            op,
            Op::Contains
                | Op::IContains
                | Op::StartsWith
                | Op::EndsWith
                | Op::Glob
                | Op::IGlob
                | Op::Regex
        );
        match field.kind() {
            Kind::Number if text_op => Err(self.err_at(
                op_pos,
                format!(
                    "{} is a number: use =, !=, <, <=, >, >= or in",
                    field.name()
                ),
            )),
            Kind::Number => v.parse().map(Rhs::Number).map_err(|_| {
                self.err_at(
                    val_pos,
                    format!("{} is a number, {v:?} is not one", field.name()),
                )
            }),
            Kind::Bool => match (op, v.as_str()) {
                (Op::Eq | Op::Ne, "true") => Ok(Rhs::Bool(true)),
                (Op::Eq | Op::Ne, "false") => Ok(Rhs::Bool(false)),
                (Op::Eq | Op::Ne, _) => Err(self.err_at(
                    val_pos,
                    format!("{} is true or false, not {v:?}", field.name()),
                )),
                _ => Err(self.err_at(op_pos, format!("{} takes = or != only", field.name()))),
            },
            Kind::Any if !text_op => Ok(v.parse().map(Rhs::Number).unwrap_or(Rhs::Text(v))),
            Kind::Text | Kind::Any => match op {
                Op::Glob | Op::IGlob => glob::Pattern::new(&v)
                    .map(Rhs::Glob)
                    .map_err(|e| self.err_at(val_pos, format!("invalid glob pattern: {e}"))),
                Op::Regex => regex::Regex::new(&v)
                    .map(Rhs::Regex)
                    .map_err(|e| self.err_at(val_pos, format!("invalid regular expression: {e}"))),
                _ => Ok(Rhs::Text(v)),
            },
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'s str {
        let r = self.rest();
        let n = r.find(|c: char| !f(c)).unwrap_or(r.len());
        self.pos += n;
        &r[..n]
    }

    fn op(&mut self) -> Option<Op> {
        let r = self.rest();
        for (sym, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if r.starts_with(sym) {
                self.pos += sym.len();
                return Some(op);
            }
        }
        WORD_OPS
            .iter()
            .find(|(w, _)| self.keyword(w))
            .map(|(_, op)| *op)
    }

    /// A bare word (up to whitespace or a parenthesis) or a quoted string.
    fn value(&mut self) -> Result<String, ParseError> {
        let r = self.rest();
        match r.chars().next() {
            Some(q @ ('"' | '\'')) => self.quoted(q),
            Some(c) if !c.is_whitespace() && c != ')' && c != '(' => Ok(self
                .take_while(|c| !c.is_whitespace() && c != ')')
                .to_string()),
            _ => Err(self.err("expected a value")),
        }
    }

    fn quoted(&mut self, q: char) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        e => e,
                    }),
                    None => break,
                },
                c if c == q => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(self.err_at(start, format!("unterminated string: missing closing {q}")))
    }

    fn list(&mut self) -> Result<Vec<String>, ParseError> {
        if !self.rest().starts_with('(') {
            return Err(self.err("expected a parenthesised list, e.g. (nginx, curl)"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            let r = self.rest();
            match r.chars().next() {
                Some(')') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(',') => self.pos += 1,
                Some(q @ ('"' | '\'')) => items.push(self.quoted(q)?),
                Some(_) => items.push(
                    self.take_while(|c| !c.is_whitespace() && c != ',' && c != ')')
                        .to_string(),
                ),
                None => return Err(self.err("expected ')' to close the list")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(f: &str) -> String {
        Filter::parse(f).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_grammar() {
        for f in [
            "proc.name=nginx",
            "proc.name = nginx and fd.name contains resolv",
            "not proc.name in (nginx, 'curl') or (evt.rawres<0 and evt.failed=true)",
            "fd.name pmatch (/etc /var/log)",
            "proc.name glob 'ng*' and proc.name iglob NG* and evt.type regex '^open'",
            "fd.name exists and evt.arg.fd=3 and evt.arg[0] != x",
            "evt.type=openat and evt.dir=<",
            "",
        ] {
            Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn an_unknown_event_type_is_an_error() {
        let e = Filter::parse("evt.type=opne").unwrap_err();
        assert_eq!(e.msg, "unknown event type \"opne\"");
        let e = Filter::parse("evt.type in (open, clsoe)").unwrap_err();
        assert!(e.msg.contains("clsoe"), "{}", e.msg);
        for ok in [
            "evt.type=open",
            "evt.type in (openat, execve, connect)",
            "evt.type=mlock",
            "evt.type contains op",
        ] {
            assert!(Filter::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for text in [
            format!("{}evt.type=open{}", "(".repeat(7000), ")".repeat(7000)),
            format!("{}evt.type=open", "not ".repeat(30_000)),
        ] {
            let e = Filter::parse(&text).unwrap_err();
            assert!(e.msg.contains("nested more than"), "{}", e.msg);
        }
        let ok = format!("{}evt.type=open{}", "(".repeat(50), ")".repeat(50));
        assert!(Filter::parse(&ok).is_ok());
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert!(err("proc.name").contains("expected an operator after proc.name"));
        let e = err("proc.name=nginx and proc.nam=x");
        assert!(e.contains("column 21") && e.contains("proc.name"), "{e}");
        assert!(err("proc.pid=abc").contains("is a number"));
        assert!(err("proc.pid contains 1").contains("is a number"));
        assert!(err("(proc.name=a").contains("expected ')'"));
        assert!(err("proc.name='a").contains("unterminated"));
        assert!(err("proc.name=a b").contains("expected 'and', 'or'"));
        assert!(err("proc.name in nginx").contains("parenthesised list"));
        assert!(err("evt.failed=maybe").contains("true or false"));
        assert!(err("and").contains("found 'and'"));
        assert!(err("proc.name regex '('").contains("invalid regular expression"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn parser_never_panics_on_filter_like_text(
            s in "(not |\\(|\\)| and | or |proc\\.name|fd\\.num|=|!=|<|in|\\(a, b\\)|'x|\"y\"|exists| )*"
        ) {
            let _ = Filter::parse(&s);
        }
    }
}
