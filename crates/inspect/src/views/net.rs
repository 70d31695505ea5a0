//! `net`: connections and sockets — tuple, transport, direction (out for connect, in for
//! accept, listen for servers), bytes each way, first activity, duration and failures
//! (sysdig's `topconns`, `topprocs_net` and port bindings).

use std::collections::HashMap;

use crashscope_scap::state::addr_name;

use crate::event::{errno_text, Ev, IoDir};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default)]
struct Conn {
    proto: String,
    direction: &'static str,
    process: String,
    bytes_in: u64,
    bytes_out: u64,
    first: u64,
    last: u64,
    closed: Option<u64>,
    result: String,
}

#[derive(Default)]
pub struct Net {
    /// By (pid, fd, tuple): a socket reused for another peer is another connection.
    conns: HashMap<(i64, i64, String), Conn>,
    order: Vec<(i64, i64, String)>,
}

fn proto(ev: &Ev) -> String {
    match ev.fd().and_then(|f| f.l4) {
        Some('t') => "tcp",
        Some('u') => "udp",
        Some('i') => "icmp",
        Some('r') => "raw",
        _ => match ev.fd().map(|f| f.kind) {
            Some('u') => "unix",
            _ => "ip",
        },
    }
    .to_string()
}

impl Net {
    fn conn(&mut self, ev: &Ev, fd: i64, tuple: String) -> &mut Conn {
        let key = (ev.pid(), fd, tuple);
        if !self.conns.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.conns.entry(key).or_insert_with(|| Conn {
            proto: proto(ev),
            direction: "?",
            process: ev.proc_name().to_string(),
            first: ev.ts(),
            last: ev.ts(),
            result: "ok".into(),
            ..Conn::default()
        })
    }
}

impl View for Net {
    fn event(&mut self, ev: &Ev) {
        if ev.is_enter() {
            return;
        }
        let Some(fd_num) = ev.fd_num().or_else(|| ev.num_param("fd")) else {
            return;
        };
        let fd = ev.fd();
        let is_sock = fd.is_some_and(|f| matches!(f.kind, '4' | '6' | 'u'));
        let name = ev.info.name.as_str();
        let res = ev.res().unwrap_or(0);
        match name {
            "connect" => {
                let tuple = fd
                    .map(|f| f.name.clone())
                    .filter(|n| n.contains("->"))
                    .or_else(|| ev.peer())
                    .unwrap_or_default();
                let c = self.conn(ev, fd_num, tuple);
                c.direction = "out";
                if res < 0 && res != -115 {
                    c.result = errno_text(res);
                }
                return;
            }
            "getsockopt" => {
                // A non-blocking connect's outcome (SO_ERROR).
                if let Some(err) = ev.pending_error() {
                    let tuple = fd.map(|f| f.name.clone()).unwrap_or_default();
                    let c = self.conn(ev, fd_num, tuple);
                    c.direction = "out";
                    c.result = errno_text(err);
                }
                return;
            }
            "accept" | "accept4" if res >= 0 => {
                let tuple = fd.map(|f| f.name.clone()).unwrap_or_default();
                self.conn(ev, fd_num, tuple).direction = "in";
                return;
            }
            "listen" | "bind" if res == 0 && is_sock => {
                let addr = fd
                    .map(|f| f.name.clone())
                    .filter(|n| !n.is_empty())
                    .or_else(|| ev.param("addr").and_then(addr_name))
                    .unwrap_or_default();
                self.conn(ev, fd_num, addr).direction = "listen";
                return;
            }
            "close" if is_sock => {
                let tuple = fd.map(|f| f.name.clone()).unwrap_or_default();
                let key = (ev.pid(), fd_num, tuple);
                if let Some(c) = self.conns.get_mut(&key) {
                    c.closed = Some(ev.ts());
                }
                return;
            }
            _ => {}
        }
        if !is_sock {
            return;
        }
        let connected = fd.map(|f| f.name.clone()).filter(|n| n.contains("->"));
        let tuple = connected.or_else(|| ev.peer()).unwrap_or_default();
        if res < 0 {
            if res != -11 {
                self.conn(ev, fd_num, tuple).result = errno_text(res);
            }
            return;
        }
        let Some(dir) = ev.io() else {
            return;
        };
        let n = ev.io_bytes();
        let c = self.conn(ev, fd_num, tuple);
        c.last = ev.ts();
        match dir {
            IoDir::Read => c.bytes_in += n,
            IoDir::Write => c.bytes_out += n,
        }
    }

    fn finish(mut self: Box<Self>) -> Table {
        let mut t = Table::new(
            "net",
            &[
                "proto",
                "connection",
                "direction",
                "process",
                "pid",
                "fd",
                "bytes in",
                "bytes out",
                "first",
                "duration",
                "result",
            ],
        );
        for key in std::mem::take(&mut self.order) {
            let Some(c) = self.conns.remove(&key) else {
                continue;
            };
            let (pid, fd, tuple) = key;
            let end = c.closed.unwrap_or(c.last);
            t.push(vec![
                c.proto.into(),
                if tuple.is_empty() {
                    Cell::Empty
                } else {
                    tuple.into()
                },
                c.direction.into(),
                c.process.into(),
                Cell::Int(pid),
                Cell::Int(fd),
                Cell::Bytes(c.bytes_in),
                Cell::Bytes(c.bytes_out),
                Cell::Time(c.first),
                Cell::Duration(end.saturating_sub(c.first)),
                c.result.into(),
            ]);
        }
        t
    }
}
