//! Writing a container instance's window as a self-contained `.scap`: container metadata,
//! the processes it ran and the descriptors they held first, then the events.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Instant;

use crashscope_model::capture::{CaptureName, WrittenCapture};
use crashscope_scap::block::ThreadInfo;
use crashscope_scap::build::string;

use super::window::Buffer;
use super::Inner;
use crate::record::Record;
use crate::writer::CaptureWriter;

impl Inner {
    /// Writes the window of container instance `key` around `death` (boot ns), and forgets
    /// the instance.
    pub(super) fn dump(&self, key: u64, death: u64) -> Result<WrittenCapture, String> {
        let taken = {
            let mut s = self.state.lock().map_err(|_| "recorder state poisoned")?;
            s.resolved(key);
            let Some(b) = s.buffers.remove(&key) else {
                return Err("nothing was recorded for this container".into());
            };
            s.forget(key);
            b
        };
        let who = taken.who.clone();
        let path = self.dir.join(CaptureName::of(&who, None).file_name());
        let written = self.write(&taken, death, path)?;
        if let Ok(mut s) = self.state.lock() {
            s.written.insert(
                (
                    who.namespace.clone(),
                    who.pod.clone(),
                    who.container.clone(),
                ),
                (Instant::now(), who, written.clone()),
            );
        }
        Ok(written)
    }

    /// Writes the window of a running container instance up to now, keeping it recorded.
    pub(super) fn copy(&self, key: u64, seq: u64) -> Result<WrittenCapture, String> {
        let now = crate::writer::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
        let copy = {
            let s = self.state.lock().map_err(|_| "recorder state poisoned")?;
            let Some(b) = s.buffers.get(&key) else {
                return Err("the container is no longer recorded".into());
            };
            Buffer {
                who: b.who.clone(),
                records: b.records.clone(),
                bytes: b.bytes,
                procs: b.procs.clone(),
                id: b.id.clone(),
                started: b.started,
                root: b.root,
                cgroup: b.cgroup.clone(),
                base: b.base.clone(),
                notes: b.notes.clone(),
            }
        };
        let who = &copy.who;
        let path = self.dir.join(CaptureName::of(who, Some(seq)).file_name());
        self.write(&copy, now, path)
    }

    /// Writes `b`'s records of the window ending at `end` (boot ns) to `path`.
    fn write(&self, b: &Buffer, end: u64, path: PathBuf) -> Result<WrittenCapture, String> {
        let from = end.saturating_sub(self.limits.before.as_nanos() as u64);
        let mut window: Vec<&(u64, Vec<u8>)> =
            b.records.iter().filter(|(ts, _)| *ts >= from).collect();
        // The ring buffer interleaves CPUs: a child's exec can arrive before its parent's
        // fork returns, and a reader replaying out of order names the child after its
        // parent. Written in time order, the file replays as it happened.
        window.sort_by_key(|(ts, _)| *ts);
        // Descriptors opened before the window: the base moved past the older records.
        let mut fds = b.base.clone();
        for (_, raw) in b.records.iter().filter(|(ts, _)| *ts < from) {
            if let Ok(r) = Record::parse(raw) {
                fds.apply(&r);
            }
        }
        let records: Vec<&Vec<u8>> = window.into_iter().map(|(_, r)| r).collect();
        let (who, id, procs) = (&b.who, &b.id, &b.procs);
        let death = end;
        // Captures hold payloads: the folder and the files are the owner's only.
        std::fs::create_dir_all(&self.dir)
            .and_then(|_| {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let cgroup = format!("cpu=/crashscope/{id}");
        let threads: Vec<ThreadInfo> = procs
            .iter()
            .map(|(pid, p)| ThreadInfo {
                tid: i64::from(*pid),
                pid: i64::from(*pid),
                ptid: i64::from(p.ppid),
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                exepath: p.exe.clone(),
                args: p.args.clone(),
                cwd: "/".into(),
                vtid: i64::from(*pid),
                vpid: i64::from(*pid),
                cgroups: vec![cgroup.clone()],
                root: "/".into(),
                ..ThreadInfo::default()
            })
            .collect();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
        let mut w =
            CaptureWriter::with_threads(std::io::BufWriter::new(file), threads, &fds, vec![cgroup])
                .map_err(io)?;
        w.set_snaplen(self.limits.snaplen);
        let meta = serde_json::json!({"container": {
            "id": &id[..12], "name": who.container, "image": who.image, "type": 0,
            "labels": {
                "io.kubernetes.pod.name": who.pod,
                "io.kubernetes.pod.namespace": who.namespace,
                "io.kubernetes.pod.uid": who.pod_uid,
                "io.kubernetes.container.name": who.container,
            }
        }});
        let first_ts = records
            .first()
            .and_then(|r| Record::parse(r).ok())
            .map_or(death, |r| r.boot_ns);
        w.meta_event(first_ts, 324, &[&string(&meta.to_string())])
            .map_err(io)?;
        // The runtime's notes go in among the records, at their time.
        let mut notes = b.notes.iter().filter(|n| n.0 >= from).peekable();
        for r in &records {
            // A record's time is read only while notes wait: most windows have none.
            if notes.peek().is_some() {
                let ts = Record::parse(r).map_or(0, |r| r.boot_ns);
                while let Some((at, pid, id, text)) = notes.next_if(|n| n.0 <= ts) {
                    w.note(*at, *pid, id, text).map_err(io)?;
                }
            }
            w.record(r).map_err(io)?;
        }
        for (at, pid, id, text) in notes {
            w.note(*at, *pid, id, text).map_err(io)?;
        }
        let counters = self.probe.counters().unwrap_or_default();
        let per_cpu = self.probe.drops_per_cpu().unwrap_or_default();
        let (buffered, summary) = w.finish(counters, &per_cpu, 0).map_err(io)?;
        drop(buffered.into_inner().map_err(|e| io(e.into_error()))?);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let epoch = crate::writer::boot_epoch_ns();
        let wall = |boot_ns: u64| {
            jiff::Timestamp::from_nanosecond(i128::from(epoch) + i128::from(boot_ns))
                .unwrap_or_else(|_| jiff::Timestamp::now())
        };
        let from = death.saturating_sub(self.limits.before.as_nanos() as u64);
        Ok(WrittenCapture {
            path,
            from: wall(from.max(first_ts.min(death))),
            to: jiff::Timestamp::now(),
            events: summary.events,
            drops: counters.dropped,
            bytes,
        })
    }
}
