//! `dns`: every DNS query found in UDP/TCP port-53 payloads — client process, server, name,
//! type — with its response code and answers, or why none came: "no answer", or "connection
//! refused" when the server's port was closed (an ICMP port unreachable surfaces as
//! ECONNREFUSED on the client's socket). Decoding is hickory-proto's.

use hickory_proto::op::{Message, MessageType};

use crate::event::{errno_text, tuple_parts, Ev, IoDir};
use crate::report::{Cell, Table};
use crate::scan::View;

/// One DNS question a process sent, and what became of it.
#[derive(Debug, Clone)]
pub struct Query {
    /// The capture event that carried the question.
    pub num: u64,
    pub ts: u64,
    pub process: String,
    pub pid: i64,
    pub server: String,
    pub proto: &'static str,
    pub id: u16,
    pub name: String,
    pub qtype: String,
    /// The response code (`NXDomain`, `NoError`, `ServFail`, ...), a socket error, or `None`
    /// when no answer came.
    pub result: Option<String>,
    pub answers: Vec<String>,
    pub answered: Option<u64>,
    /// The capture event that carried the answer or the error.
    pub answer_num: Option<u64>,
}

/// Follows DNS questions and answers through a capture; the `dns` view and the diagnosis
/// both read its queries.
#[derive(Default)]
pub struct Dns {
    queries: Vec<Query>,
    undecodable: u64,
}

impl Dns {
    /// The questions seen so far, in the order they were sent.
    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    /// Feeds one event (what the view does for each matching event).
    pub fn observe(&mut self, ev: &Ev) {
        View::event(self, ev)
    }
}

/// The DNS server a port-53 event talks to (`ip:53`) and the transport, if it is one.
fn server(ev: &Ev) -> Option<(String, &'static str)> {
    let fd = ev.fd();
    let proto = match fd.and_then(|f| f.l4) {
        Some('t') => "tcp",
        _ => "udp",
    };
    let peer = fd
        .map(|f| f.name.clone())
        .filter(|n| n.contains("->"))
        .or_else(|| ev.peer())?;
    if let Some((cip, cport, sip, sport)) = tuple_parts(&peer) {
        return match (cport, sport) {
            (_, 53) => Some((format!("{sip}:53"), proto)),
            (53, _) => Some((format!("{cip}:53"), proto)),
            _ => None,
        };
    }
    peer.ends_with(":53").then_some((peer, proto))
}

fn decode(data: &[u8], proto: &str) -> Option<Message> {
    if let Ok(m) = Message::from_vec(data) {
        return Some(m);
    }
    // DNS over TCP prefixes each message with its length.
    if proto == "tcp" && data.len() > 2 {
        return Message::from_vec(&data[2..]).ok();
    }
    None
}

impl View for Dns {
    fn event(&mut self, ev: &Ev) {
        if ev.is_enter() {
            return;
        }
        let Some((server, proto)) = server(ev) else {
            return;
        };
        if let Some(r) = ev.res().filter(|r| *r < 0 && *r != -11 && *r != -115) {
            // A refused or unreachable server fails the queries still waiting on it.
            for q in self.queries.iter_mut().rev() {
                if q.pid == ev.pid() && q.server == server && q.result.is_none() {
                    q.answer_num = Some(ev.num);
                    q.result = Some(match errno_text(r).as_str() {
                        "ECONNREFUSED" => "connection refused (port unreachable)".into(),
                        e => e.to_string(),
                    });
                }
            }
            return;
        }
        let Some(dir) = ev.io() else {
            return;
        };
        let Some(msg) = ev.data().and_then(|d| decode(d, proto)) else {
            self.undecodable += 1;
            return;
        };
        let first = msg.queries().first();
        let name = first.map(|q| q.name().to_string()).unwrap_or_default();
        let qtype = first
            .map(|q| q.query_type().to_string())
            .unwrap_or_default();
        match (msg.message_type(), dir) {
            (MessageType::Query, IoDir::Write) => self.queries.push(Query {
                num: ev.num,
                ts: ev.ts(),
                process: ev.proc_name().to_string(),
                pid: ev.pid(),
                server,
                proto,
                id: msg.id(),
                name,
                qtype,
                result: None,
                answers: Vec::new(),
                answered: None,
                answer_num: None,
            }),
            (MessageType::Response, IoDir::Read) => {
                let q = self.queries.iter_mut().rev().find(|q| {
                    q.id == msg.id() && q.name == name && q.qtype == qtype && q.answered.is_none()
                });
                if let Some(q) = q {
                    q.answered = Some(ev.ts());
                    q.answer_num = Some(ev.num);
                    q.result = Some(msg.response_code().to_str().to_string());
                    q.answers = msg
                        .answers()
                        .iter()
                        .map(|r| format!("{} {}", r.record_type(), r.data()))
                        .collect();
                }
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(
            "dns",
            &[
                "time", "process", "pid", "server", "proto", "query", "type", "result", "answers",
                "latency",
            ],
        );
        for q in self.queries {
            t.push(vec![
                Cell::Time(q.ts),
                q.process.into(),
                Cell::Int(q.pid),
                q.server.into(),
                q.proto.into(),
                q.name.into(),
                q.qtype.into(),
                q.result.unwrap_or_else(|| "no answer".into()).into(),
                if q.answers.is_empty() {
                    Cell::Empty
                } else {
                    q.answers.join(", ").into()
                },
                q.answered
                    .map(|a| Cell::Duration(a.saturating_sub(q.ts)))
                    .unwrap_or(Cell::Empty),
            ]);
        }
        if self.undecodable > 0 {
            t.notes.push(format!(
                "{} port-53 payloads could not be decoded (snapshot too short?)",
                self.undecodable
            ));
        }
        t
    }
}
