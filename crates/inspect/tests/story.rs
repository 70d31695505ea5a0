//! The reference story as a capture: nginx, in a pod's container, reads /etc/resolv.conf,
//! asks the cluster DNS for `flask` and gets no answer, logs `host not found in upstream
//! "flask"` and exits 1. The capture is built with the scap writer the way the flight
//! recorder writes one; the path summary → containers → procs → io → dns → logs must tell
//! that story, and the pod metadata must be filterable.

use std::net::SocketAddr;

use crashscope_inspect::filter::Filter;
use crashscope_inspect::report::{Cell, Table};
use crashscope_inspect::scan::{scan, Scope};
use crashscope_inspect::views;
use crashscope_scap::block::{EventRecord, ThreadInfo};
use crashscope_scap::build::{int, sockaddr, socktuple, string};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use crashscope_scap::writer::Writer;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

const CID: &str = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e";
const T0: u64 = 1_764_349_200_000_000_000; // 2025-11-28T17:00:00Z
const PID: i64 = 4242;
const LOG: &str = "2025/11/28 17:00:00 [emerg] 1#1: host not found in upstream \"flask\" in /etc/nginx/conf.d/default.conf:3\n";

fn capture() -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: PID,
        pid: PID,
        ptid: 4200,
        comm: "nginx".into(),
        exe: "nginx".into(),
        args: vec!["-g".into(), "daemon off;".into()],
        cwd: "/".into(),
        vtid: 1,
        vpid: 1,
        cgroups: vec![format!("memory=/kubepods/besteffort/pod8d1e/{CID}")],
        ..ThreadInfo::default()
    }])
    .unwrap();
    let json = serde_json::json!({"container": {
        "id": &CID[..12], "name": "nginx", "image": "nginx:1.27", "type": 7,
        "labels": {
            "io.kubernetes.pod.name": "nginx-7d4b9c5f6-x2x8k",
            "io.kubernetes.pod.namespace": "shop",
            "io.kubernetes.container.name": "nginx",
        }
    }})
    .to_string();
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    ev(324, &[&string(&json)]);
    let resolv = "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local\n";
    ev(
        306,
        &[
            &int::<8>(-100),
            &string("/etc/resolv.conf"),
            &int::<4>(0),
            &int::<4>(0),
        ],
    );
    ev(
        307,
        &[
            &int::<8>(3),
            &int::<8>(-100),
            &string("/etc/resolv.conf"),
            &int::<4>(0),
            &int::<4>(0),
            &int::<4>(0),
            &int::<8>(0),
        ],
    );
    ev(6, &[&int::<8>(3), &int::<4>(4096)]);
    ev(
        7,
        &[
            &int::<8>(resolv.len() as i64),
            resolv.as_bytes(),
            &int::<8>(3),
            &int::<4>(4096),
        ],
    );
    ev(4, &[&int::<8>(3)]);
    ev(5, &[&int::<8>(0)]);
    ev(18, &[&int::<4>(2), &int::<4>(2), &int::<4>(0)]);
    ev(
        19,
        &[&int::<8>(4), &int::<4>(2), &int::<4>(2), &int::<4>(0)],
    );
    let me: SocketAddr = "10.244.0.5:40000".parse().unwrap();
    let dns: SocketAddr = "10.96.0.10:53".parse().unwrap();
    ev(22, &[&int::<8>(4), &sockaddr(dns)]);
    ev(23, &[&int::<8>(0), &socktuple(me, dns), &int::<8>(4)]);
    let mut q = Message::new();
    q.set_id(0x2a2a)
        .set_recursion_desired(true)
        .add_query(Query::query(
            Name::from_ascii("flask.shop.svc.cluster.local.").unwrap(),
            RecordType::A,
        ));
    let q = q.to_vec().unwrap();
    for _ in 0..2 {
        ev(30, &[&int::<8>(4), &int::<4>(q.len() as i64), &[]]);
        ev(31, &[&int::<8>(q.len() as i64), &q]);
    }
    ev(8, &[&int::<8>(2), &int::<4>(LOG.len() as i64)]);
    ev(
        9,
        &[
            &int::<8>(LOG.len() as i64),
            LOG.as_bytes(),
            &int::<8>(2),
            &int::<4>(LOG.len() as i64),
        ],
    );
    ev(
        186,
        &[&int::<8>(256), &int::<8>(1), &[0], &[0], &int::<8>(0)],
    );
    w.finish().unwrap()
}

fn view(bytes: &[u8], name: &str, filter: &str) -> Table {
    let reader = Reader::from_read(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut replay = Replay::new(reader);
    let mut vs = vec![views::make(name, &views::Options::default()).unwrap()];
    let scope = Scope {
        filter: Filter::parse(filter).unwrap(),
        ..Scope::default()
    };
    let out = scan(&mut replay, &scope, &mut vs, |_| {});
    assert!(out.error.is_none(), "{:?}", out.error);
    vs.pop().unwrap().finish()
}

fn cell(t: &Table, row: usize, col: &str) -> String {
    let i = t.columns.iter().position(|c| *c == col).unwrap();
    t.rows[row][i].text()
}

fn tile(t: &Table, name: &str) -> String {
    let r = t
        .rows
        .iter()
        .position(|r| r[0] == Cell::from(name))
        .unwrap();
    cell(t, r, "value")
}

#[test]
fn the_views_tell_the_nginx_story() {
    let cap = capture();
    let s = view(&cap, "summary", "");
    assert_eq!(tile(&s, "containers"), "1");
    assert_eq!(tile(&s, "failed process exits"), "1");
    assert_eq!(tile(&s, "log lines with errors"), "1");
    assert_eq!(tile(&s, "connections"), "1");

    let c = view(&cap, "containers", "");
    assert_eq!(c.rows.len(), 1);
    assert_eq!(cell(&c, 0, "container id"), &CID[..12]);
    assert_eq!(cell(&c, 0, "name"), "nginx");
    assert_eq!(cell(&c, 0, "pod"), "nginx-7d4b9c5f6-x2x8k");
    assert_eq!(cell(&c, 0, "namespace"), "shop");
    assert_eq!(cell(&c, 0, "status"), "exited 1");

    let p = view(&cap, "procs", "container.name=nginx");
    assert_eq!(cell(&p, 0, "process"), "nginx");
    assert_eq!(cell(&p, 0, "exit"), "1");
    assert_eq!(cell(&p, 0, "command"), "nginx -g daemon off;");

    let io = view(&cap, "io", "fd.name=/etc/resolv.conf");
    assert_eq!(io.rows.len(), 1);
    assert!(cell(&io, 0, "data").starts_with("nameserver 10.96.0.10\n"));

    let d = view(&cap, "dns", "k8s.pod.name startswith nginx-");
    assert_eq!(d.rows.len(), 2, "a query and its retry");
    assert_eq!(cell(&d, 0, "query"), "flask.shop.svc.cluster.local.");
    assert_eq!(cell(&d, 0, "type"), "A");
    assert_eq!(cell(&d, 0, "server"), "10.96.0.10:53");
    assert_eq!(cell(&d, 0, "result"), "no answer");

    let l = view(&cap, "logs", "k8s.ns.name=shop");
    assert_eq!(l.rows.len(), 1);
    assert_eq!(cell(&l, 0, "file"), "stderr");
    assert_eq!(cell(&l, 0, "level"), "error");
    assert!(cell(&l, 0, "line").contains("host not found in upstream \"flask\""));

    let e = view(&cap, "timeline", "");
    assert!(e
        .rows
        .iter()
        .any(|r| r.last().unwrap().text().contains("nginx(4242) exited 1")));

    // Pod metadata is filterable; other pods match nothing.
    assert!(view(&cap, "procs", "k8s.pod.name=other").rows.is_empty());
}

#[test]
fn a_refused_dns_port_is_reported_as_such() {
    let cap = capture();
    // A send on the connected socket fails with ECONNREFUSED: the ICMP port unreachable
    // the server host answered the first datagram with.
    let reader = Reader::from_read(std::io::Cursor::new(cap)).unwrap();
    let mut w = Writer::new(Vec::new()).unwrap();
    for b in reader {
        match b.unwrap() {
            crashscope_scap::reader::Block::Processes(p) => w.processes(&p).unwrap(),
            crashscope_scap::reader::Block::Event(e) => {
                let code = e.event_type();
                w.event(&e).unwrap();
                if code == 31 {
                    let ts = e.ts() + 10;
                    w.event(&EventRecord::build(
                        ts,
                        PID,
                        28,
                        &[&int::<8>(4), &int::<4>(512)],
                    ))
                    .unwrap();
                    w.event(&EventRecord::build(
                        ts + 1,
                        PID,
                        29,
                        &[&int::<8>(-111), &[], &[]],
                    ))
                    .unwrap();
                }
            }
            _ => {}
        }
    }
    let cap = w.finish().unwrap();
    let d = view(&cap, "dns", "");
    assert_eq!(
        cell(&d, 0, "result"),
        "connection refused (port unreachable)"
    );
    let e = view(&cap, "errors", "");
    assert_eq!(cell(&e, 0, "errno"), "ECONNREFUSED");
    assert_eq!(cell(&e, 0, "target"), "10.244.0.5:40000->10.96.0.10:53");
}

#[test]
fn an_endless_line_keeps_its_tail_and_the_lines_after_it_in_the_death_view() {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.processes(&[ThreadInfo {
        tid: PID,
        pid: PID,
        ptid: 1,
        comm: "app".into(),
        exe: "app".into(),
        ..ThreadInfo::default()
    }])
    .unwrap();
    let mut ts = T0;
    let mut ev = |code: u16, params: &[&[u8]]| {
        ts += 1_000;
        w.event(&EventRecord::build(ts, PID, code, params)).unwrap();
    };
    let mut write = |data: &[u8]| {
        ev(8, &[&int::<8>(2), &int::<4>(data.len() as i64)]);
        ev(
            9,
            &[
                &int::<8>(data.len() as i64),
                data,
                &int::<8>(2),
                &int::<4>(data.len() as i64),
            ],
        );
    };
    // A byte at a time, far past the longest line kept, then a line that says why.
    for _ in 0..20_000 {
        write(b"x");
    }
    write(b"\nfatal: boom\n");
    ev(
        186,
        &[&int::<8>(256), &int::<8>(1), &[0], &[0], &int::<8>(0)],
    );
    let cap = w.finish().unwrap();
    let d = view(&cap, "death", "");
    let details = cell(&d, 0, "details");
    assert!(details.contains("fatal: boom"), "{details}");
    let longest = details
        .split(|c: char| c != 'x')
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        (4000..=4096).contains(&longest),
        "the endless line's tail: {longest} bytes"
    );
}
