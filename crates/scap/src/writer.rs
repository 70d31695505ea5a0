//! Writing `.scap` files that sysdig and Falco read: section header 1.2, machine info,
//! interface list, user/group list, process list (V9), one fd list (V2) per thread, then
//! event blocks (V2, V2_LARGE for large payloads, EVF_V2 when flags are set), optionally gzip.

use std::io::Write;

use crate::block::{
    self, EventRecord, FdInfo, FdKind, Interface, MachineInfo, ThreadInfo, UserEntry,
};

/// Writes blocks to any byte sink.
pub struct Writer<W: Write> {
    w: W,
    /// Event blocks framed before they are written, all of a batch in one write.
    framed: Vec<u8>,
}

fn str16(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

fn blob16(out: &mut Vec<u8>, items: &[String]) {
    let mut b = Vec::new();
    for i in items {
        b.extend_from_slice(i.as_bytes());
        b.push(0);
    }
    b.truncate(u16::MAX as usize);
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(&b);
}

/// An IPv4 or IPv6 connected-socket fd entry: type, both addresses, both ports, transport.
fn socket_entry(e: &mut Vec<u8>, code: u8, sip: &[u8], dip: &[u8], sport: u16, dport: u16, l4: u8) {
    e.push(code);
    e.extend_from_slice(sip);
    e.extend_from_slice(dip);
    e.extend_from_slice(&sport.to_le_bytes());
    e.extend_from_slice(&dport.to_le_bytes());
    e.push(l4);
}

impl<W: Write> Writer<W> {
    /// Starts a capture with a 1.2 section header.
    pub fn new(w: W) -> std::io::Result<Self> {
        let mut me = Writer {
            w,
            framed: Vec::new(),
        };
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&block::BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&2u16.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        me.block(block::SHB, &body)?;
        Ok(me)
    }

    fn block(&mut self, ty: u32, body: &[u8]) -> std::io::Result<()> {
        self.block_of(ty, &[body])
    }

    /// A block whose body is `parts` one after the other (no copy into one buffer first:
    /// events are written by the million).
    fn block_of(&mut self, ty: u32, parts: &[&[u8]]) -> std::io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = len.div_ceil(4) * 4;
        let total = u32::try_from(8 + padded + 4).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "block too large")
        })?;
        self.w.write_all(&ty.to_le_bytes())?;
        self.w.write_all(&total.to_le_bytes())?;
        for p in parts {
            self.w.write_all(p)?;
        }
        self.w.write_all(&[0u8; 3][..padded - len])?;
        self.w.write_all(&total.to_le_bytes())
    }

    pub fn machine_info(&mut self, mi: &MachineInfo) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(180);
        b.extend_from_slice(&mi.num_cpus.to_le_bytes());
        b.extend_from_slice(&mi.memory_size_bytes.to_le_bytes());
        b.extend_from_slice(&mi.max_pid.to_le_bytes());
        let mut host = [0u8; 128];
        let h = mi.hostname.as_bytes();
        let n = h.len().min(127);
        host[..n].copy_from_slice(&h[..n]);
        b.extend_from_slice(&host);
        b.extend_from_slice(&mi.boot_ts_epoch.to_le_bytes());
        b.extend_from_slice(&mi.flags.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        self.block(block::MI, &b)
    }

    pub fn interfaces(&mut self, list: &[Interface]) -> std::io::Result<()> {
        let mut b = Vec::new();
        for i in list {
            let mut e = Vec::new();
            let v6 = i.addr.len() == 16;
            e.extend_from_slice(&(if v6 { 2u16 } else { 1u16 }).to_le_bytes());
            e.extend_from_slice(&(i.name.len() as u16).to_le_bytes());
            let alen = if v6 { 16 } else { 4 };
            let mut addr = i.addr.clone();
            addr.resize(alen, 0);
            e.extend_from_slice(&addr);
            e.extend_from_slice(&vec![0u8; alen * 2]);
            e.extend_from_slice(&0u64.to_le_bytes());
            e.extend_from_slice(i.name.as_bytes());
            b.extend_from_slice(&(e.len() as u32).to_le_bytes());
            b.extend_from_slice(&e);
        }
        self.block(block::IL_V2, &b)
    }

    pub fn users(&mut self, list: &[UserEntry]) -> std::io::Result<()> {
        let mut b = Vec::new();
        for u in list {
            let mut e = Vec::new();
            match u {
                UserEntry::User {
                    uid,
                    gid,
                    name,
                    home,
                    shell,
                } => {
                    e.push(0);
                    e.extend_from_slice(&uid.to_le_bytes());
                    e.extend_from_slice(&gid.to_le_bytes());
                    str16(&mut e, name);
                    str16(&mut e, home);
                    str16(&mut e, shell);
                }
                UserEntry::Group { gid, name } => {
                    e.push(1);
                    e.extend_from_slice(&gid.to_le_bytes());
                    str16(&mut e, name);
                }
            }
            b.extend_from_slice(&((e.len() + 4) as u32).to_le_bytes());
            b.extend_from_slice(&e);
        }
        self.block(block::UL_V2, &b)
    }

    pub fn processes(&mut self, list: &[ThreadInfo]) -> std::io::Result<()> {
        let mut b = Vec::new();
        for t in list {
            let mut e = Vec::new();
            for v in [t.tid, t.pid, t.ptid, t.sid, t.vpgid] {
                e.extend_from_slice(&v.to_le_bytes());
            }
            str16(&mut e, &t.comm);
            str16(&mut e, &t.exe);
            str16(&mut e, &t.exepath);
            blob16(&mut e, &t.args);
            str16(&mut e, &t.cwd);
            e.extend_from_slice(&t.fdlimit.to_le_bytes());
            for v in [t.flags, t.uid, t.gid, t.vmsize_kb, t.vmrss_kb, t.vmswap_kb] {
                e.extend_from_slice(&v.to_le_bytes());
            }
            e.extend_from_slice(&t.pfmajor.to_le_bytes());
            e.extend_from_slice(&t.pfminor.to_le_bytes());
            let env = &t.env[..t.env.len().min(u16::MAX as usize)];
            e.extend_from_slice(&(env.len() as u16).to_le_bytes());
            e.extend_from_slice(env);
            e.extend_from_slice(&t.vtid.to_le_bytes());
            e.extend_from_slice(&t.vpid.to_le_bytes());
            blob16(&mut e, &t.cgroups);
            str16(&mut e, &t.root);
            // Only loginuid of the optional tail: readers take a short tail as the pre-0.10
            // layout, which starts with loginuid.
            e.extend_from_slice(&t.loginuid.to_le_bytes());
            b.extend_from_slice(&((e.len() + 4) as u32).to_le_bytes());
            b.extend_from_slice(&e);
        }
        self.block(block::PL_V9, &b)
    }

    pub fn fds(&mut self, tid: i64, list: &[FdInfo]) -> std::io::Result<()> {
        let mut b = Vec::new();
        b.extend_from_slice(&tid.to_le_bytes());
        for f in list {
            let mut e = Vec::new();
            e.extend_from_slice(&f.fd.to_le_bytes());
            e.extend_from_slice(&f.ino.to_le_bytes());
            match &f.kind {
                FdKind::File { name, flags } => {
                    e.push(16);
                    e.extend_from_slice(&flags.to_le_bytes());
                    str16(&mut e, name);
                    e.extend_from_slice(&0u32.to_le_bytes());
                }
                FdKind::Directory { name } => {
                    e.push(2);
                    str16(&mut e, name);
                }
                FdKind::Ipv4 {
                    sip,
                    dip,
                    sport,
                    dport,
                    l4,
                } => socket_entry(&mut e, 3, sip, dip, *sport, *dport, *l4),
                FdKind::Ipv6 {
                    sip,
                    dip,
                    sport,
                    dport,
                    l4,
                } => socket_entry(&mut e, 4, sip, dip, *sport, *dport, *l4),
                FdKind::Ipv4Server { ip, port, l4 } => {
                    e.push(5);
                    e.extend_from_slice(ip);
                    e.extend_from_slice(&port.to_le_bytes());
                    e.push(*l4);
                }
                FdKind::Ipv6Server { ip, port, l4 } => {
                    e.push(6);
                    e.extend_from_slice(ip);
                    e.extend_from_slice(&port.to_le_bytes());
                    e.push(*l4);
                }
                FdKind::Unix { source, dest, name } => {
                    e.push(8);
                    e.extend_from_slice(&source.to_le_bytes());
                    e.extend_from_slice(&dest.to_le_bytes());
                    str16(&mut e, name);
                }
                FdKind::Other { code, name } => {
                    e.push(*code);
                    str16(&mut e, name);
                }
            }
            b.extend_from_slice(&((e.len() + 4) as u32).to_le_bytes());
            b.extend_from_slice(&e);
        }
        self.block(block::FDL_V2, &b)
    }

    /// An event given as the bytes of its V2 record (header, lengths, data) from CPU 0 with
    /// no flags: what a recorder that encodes events itself writes.
    pub fn event_raw(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.events_raw([raw])
    }

    /// Events given as [`Writer::event_raw`] takes them, framed into blocks and written in
    /// one write: a recorder writes millions a second, and a write per field of each block
    /// was a third of its writing cost.
    pub fn events_raw<'a>(
        &mut self,
        raws: impl IntoIterator<Item = &'a [u8]>,
    ) -> std::io::Result<()> {
        self.framed.clear();
        for raw in raws {
            let code = raw
                .get(20..22)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            let ty = if block::large_payload(code) {
                block::EV_V2_LARGE
            } else {
                block::EV_V2
            };
            let len = 2 + raw.len();
            let padded = len.div_ceil(4) * 4;
            let total = u32::try_from(8 + padded + 4).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "block too large")
            })?;
            let b = &mut self.framed;
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&total.to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(raw);
            b.extend_from_slice(&[0u8; 3][..padded - len]);
            b.extend_from_slice(&total.to_le_bytes());
        }
        self.w.write_all(&self.framed)
    }

    pub fn event(&mut self, ev: &EventRecord) -> std::io::Result<()> {
        let large = block::large_payload(ev.event_type());
        let cpu = ev.cpu.to_le_bytes();
        let flags = ev.flags.to_le_bytes();
        if ev.flags != 0 {
            let ty = if large {
                block::EVF_V2_LARGE
            } else {
                block::EVF_V2
            };
            self.block_of(ty, &[&cpu, &flags, &ev.raw])
        } else {
            let ty = if large {
                block::EV_V2_LARGE
            } else {
                block::EV_V2
            };
            self.block_of(ty, &[&cpu, &ev.raw])
        }
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Cuts a capture file that a failed write left mid-block (a full disk) back to its last whole
/// block, so that it reads cleanly up to there. Returns the length kept.
pub fn cut_to_whole_blocks(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut pos = 0u64;
    let mut head = [0u8; 8];
    while pos + 8 <= len {
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut head)?;
        let total = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        if total < 12 || total % 4 != 0 || pos + total > len {
            break;
        }
        pos += total;
    }
    if pos < len {
        f.set_len(pos)?;
    }
    Ok(pos)
}
