//! One file descriptor as the replay knows it, and the names sysdig gives sockets (tuples,
//! addresses) and fd types.

use crate::block::{FdInfo, FdKind};
use crate::event::as_str;

/// An open file descriptor: sysdig's type letter and its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fd {
    /// `f` file, `d` directory, `4`/`6` IPv4/IPv6 socket, `u` unix socket, `p` pipe,
    /// `e` eventfd, `s` signalfd, `l` eventpoll, `i` inotify, `t` timerfd, `n` netlink, `b` bpf.
    pub kind: char,
    pub name: String,
    /// Transport of a socket: `t` TCP, `u` UDP, `r` raw, `i` ICMP (sysdig shows `<4t>`).
    pub l4: Option<char>,
}

impl Fd {
    pub(super) fn new(kind: char, name: String) -> Fd {
        Fd {
            kind,
            name,
            l4: None,
        }
    }

    /// Appends sysdig's tag to `out`: the type letter, and for IP sockets the transport
    /// letter (no temporary string: every fd parameter shows it).
    pub fn push_type_tag(&self, out: &mut String) {
        out.push(self.kind);
        match self.l4 {
            // An unconnected socket has no tuple yet and sysdig shows just the family.
            Some(l) if (self.kind == '4' || self.kind == '6') && !self.name.is_empty() => {
                out.push(l)
            }
            _ => {}
        }
    }
}

fn l4_letter(code: u8) -> Option<char> {
    match code {
        2 => Some('t'),
        3 => Some('u'),
        4 => Some('i'),
        5 => Some('r'),
        _ => None,
    }
}

fn ip4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn ip6(b: &[u8]) -> String {
    let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
    std::net::Ipv6Addr::from(a).to_string()
}

/// sysdig's rendering of a socket tuple parameter, with the fd type letter.
pub fn tuple_name(p: &[u8]) -> Option<(char, String)> {
    match p.first()? {
        2 if p.len() >= 13 => {
            let sport = u16::from_le_bytes([p[5], p[6]]);
            let dport = u16::from_le_bytes([p[11], p[12]]);
            Some((
                '4',
                format!("{}:{sport}->{}:{dport}", ip4(&p[1..5]), ip4(&p[7..11])),
            ))
        }
        10 if p.len() >= 37 => {
            let sport = u16::from_le_bytes([p[17], p[18]]);
            let dport = u16::from_le_bytes([p[35], p[36]]);
            Some((
                '6',
                format!("{}:{sport}->{}:{dport}", ip6(&p[1..17]), ip6(&p[19..35])),
            ))
        }
        1 if p.len() >= 17 => Some(('u', as_str(&p[17..]))),
        _ => None,
    }
}

/// A socket tuple whose unspecified source address is replaced by the destination address.
pub(super) fn fill_source(t: &[u8]) -> Vec<u8> {
    let mut t = t.to_vec();
    match t.first() {
        Some(2) if t.len() >= 13 && t[1..5] == [0; 4] => {
            let d: [u8; 4] = [t[7], t[8], t[9], t[10]];
            t[1..5].copy_from_slice(&d);
        }
        Some(10) if t.len() >= 37 && t[1..17] == [0; 16] => {
            let d = t[19..35].to_vec();
            t[1..17].copy_from_slice(&d);
        }
        _ => {}
    }
    t
}

/// sysdig's rendering of a socket address parameter.
pub fn addr_name(p: &[u8]) -> Option<String> {
    match p.first()? {
        2 if p.len() >= 7 => Some(format!(
            "{}:{}",
            ip4(&p[1..5]),
            u16::from_le_bytes([p[5], p[6]])
        )),
        10 if p.len() >= 19 => Some(format!(
            "{}:{}",
            ip6(&p[1..17]),
            u16::from_le_bytes([p[17], p[18]])
        )),
        1 => Some(as_str(&p[1..])),
        _ => None,
    }
}

impl Fd {
    pub(super) fn from_info(f: &FdInfo) -> Fd {
        match &f.kind {
            FdKind::File { name, .. } => Fd::new('f', name.clone()),
            FdKind::Directory { name } => Fd::new('d', name.clone()),
            FdKind::Ipv4 {
                sip,
                dip,
                sport,
                dport,
                l4,
            } => Fd {
                kind: '4',
                name: format!("{}:{sport}->{}:{dport}", ip4(sip), ip4(dip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv6 {
                sip,
                dip,
                sport,
                dport,
                l4,
            } => Fd {
                kind: '6',
                name: format!("{}:{sport}->{}:{dport}", ip6(sip), ip6(dip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv4Server { ip, port, l4 } => Fd {
                kind: '4',
                name: format!("{}:{port}", ip4(ip)),
                l4: l4_letter(*l4),
            },
            FdKind::Ipv6Server { ip, port, l4 } => Fd {
                kind: '6',
                name: format!("{}:{port}", ip6(ip)),
                l4: l4_letter(*l4),
            },
            FdKind::Unix { name, .. } => Fd::new('u', name.clone()),
            FdKind::Other { code, name } => Fd {
                l4: None,
                kind: match code {
                    7 => 'p',
                    9 => 'e',
                    11 => 's',
                    12 => 'l',
                    13 => 'i',
                    14 => 't',
                    15 => 'n',
                    17 => 'b',
                    _ => 'o',
                },
                name: name.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_render_like_sysdig() {
        let mut t = vec![2u8, 10, 0, 0, 1];
        t.extend(40000u16.to_le_bytes());
        t.extend([8, 8, 8, 8]);
        t.extend(53u16.to_le_bytes());
        assert_eq!(
            tuple_name(&t),
            Some(('4', "10.0.0.1:40000->8.8.8.8:53".to_string()))
        );
        assert_eq!(tuple_name(&[2, 1]), None);
    }
}
