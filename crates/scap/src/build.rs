//! Building event records from typed values: what a probe (or a test) needs to emit
//! standard events — the record layout, and the encodings of socket addresses and tuples
//! that libscap uses.

use std::net::{IpAddr, SocketAddr};

use crate::block::{large_payload, EventRecord};

impl EventRecord {
    /// An event of type `code` for thread `tid` at `ts` (ns since the epoch) with `params`
    /// in schema order. Parameters longer than their length field allows are cut.
    pub fn build(ts: u64, tid: i64, code: u16, params: &[&[u8]]) -> EventRecord {
        let large = large_payload(code);
        let width = if large { 4 } else { 2 };
        let max = if large {
            u32::MAX as usize
        } else {
            u16::MAX as usize
        };
        let data_len: usize = params.iter().map(|p| p.len().min(max)).sum();
        let len = 26 + width * params.len() + data_len;
        let mut raw = Vec::with_capacity(len);
        raw.extend_from_slice(&ts.to_le_bytes());
        raw.extend_from_slice(&tid.to_le_bytes());
        raw.extend_from_slice(&(len as u32).to_le_bytes());
        raw.extend_from_slice(&code.to_le_bytes());
        raw.extend_from_slice(&(params.len() as u32).to_le_bytes());
        for p in params {
            let n = p.len().min(max);
            if large {
                raw.extend_from_slice(&(n as u32).to_le_bytes());
            } else {
                raw.extend_from_slice(&(n as u16).to_le_bytes());
            }
        }
        for p in params {
            raw.extend_from_slice(&p[..p.len().min(max)]);
        }
        EventRecord {
            cpu: 0,
            flags: 0,
            raw,
        }
    }
}

fn ip_bytes(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

fn family(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 2,
        IpAddr::V6(_) => 10,
    }
}

/// A `SOCKADDR` parameter.
pub fn sockaddr(a: SocketAddr) -> Vec<u8> {
    let mut v = vec![family(a.ip())];
    ip_bytes(&mut v, a.ip());
    v.extend_from_slice(&a.port().to_le_bytes());
    v
}

/// A `SOCKTUPLE` parameter: source, then destination (same family).
pub fn socktuple(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut v = vec![family(src.ip())];
    ip_bytes(&mut v, src.ip());
    v.extend_from_slice(&src.port().to_le_bytes());
    ip_bytes(&mut v, dst.ip());
    v.extend_from_slice(&dst.port().to_le_bytes());
    v
}

/// An integer parameter of `N` bytes.
pub fn int<const N: usize>(v: i64) -> Vec<u8> {
    v.to_le_bytes()[..N].to_vec()
}

/// A string parameter (NUL-terminated).
pub fn string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{addr_name, tuple_name};

    #[test]
    fn encodings_read_back() {
        let a: SocketAddr = "10.0.0.1:53".parse().unwrap();
        assert_eq!(addr_name(&sockaddr(a)).unwrap(), "10.0.0.1:53");
        let b: SocketAddr = "[2001:db8::1]:4242".parse().unwrap();
        let c: SocketAddr = "[2001:db8::2]:53".parse().unwrap();
        assert_eq!(
            tuple_name(&socktuple(b, c)).unwrap(),
            ('6', "2001:db8::1:4242->2001:db8::2:53".to_string())
        );
        let r = EventRecord::build(7, 42, 9, &[&int::<8>(3), b"abc"]);
        assert_eq!(
            (r.ts(), r.tid(), r.event_type(), r.nparams()),
            (7, 42, 9, 2)
        );
        assert_eq!(
            crate::event::params(&r).to_vec(),
            vec![&int::<8>(3)[..], b"abc"]
        );
    }
}
