//! The notifications crashscope writes into captures (`evt.type=notification`, which sysdig
//! prints): their ids, shared by the recorder that writes them, the local runtime, and the
//! views and diagnosis that read them, and the loss report's text, which says in words
//! what a reader of `sysdig -r` should know and in numbers what `inspect summary` counts.

/// The kernel's OOM killer chose a recorded process.
pub const OOM_KILL: &str = "crashscope-oom-kill";
/// A signal came from a process outside the recording (its pid and name).
pub const SIGNAL_SENDER: &str = "crashscope-signal-sender";
/// The recorder lost records: see [`Losses`].
pub const LOSSES: &str = "crashscope-losses";
// The local runtime writes the next two; it sits below this crate in the crate graph and
// spells them itself (`crates/sources/local/src/kubelet/mod.rs`).
/// The local runtime's kubelet killed a container (probe failure, deletion).
pub const KUBELET_KILL: &str = "crashscope-kubelet-kill";
/// The local runtime's account of a container's memory when it was OOM-killed.
pub const OOM_MEMORY: &str = "crashscope-oom-memory";

/// What a recorder lost while recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Losses {
    /// Records dropped because the ring buffer was full, in all.
    pub dropped: u64,
    /// The same, per CPU (index = CPU number).
    pub dropped_per_cpu: Vec<u64>,
    /// Snapshots of user memory that could not be read.
    pub unreadable: u64,
    /// Records the reader could not decode.
    pub malformed: u64,
}

const PREFIX: &str = "crashscope: ";

impl Losses {
    pub fn is_empty(&self) -> bool {
        self.dropped == 0 && self.unreadable == 0 && self.malformed == 0
    }

    /// The CPUs that dropped records and how many, as `cpu1 134000, cpu3 12`.
    pub fn cpus(&self) -> String {
        self.dropped_per_cpu
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(cpu, n)| format!("cpu{cpu} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The notification's description.
    pub fn desc(&self) -> String {
        let cpus = self.cpus();
        let per_cpu = if cpus.is_empty() {
            String::new()
        } else {
            format!(": {cpus}")
        };
        format!(
            "{PREFIX}{} records dropped (ring buffer full{per_cpu}), {} memory snapshots unreadable, {} malformed",
            self.dropped, self.unreadable, self.malformed
        )
    }

    /// Reads a description written by [`Losses::desc`] (also the older form without CPUs).
    pub fn parse(desc: &str) -> Option<Losses> {
        let rest = desc.strip_prefix(PREFIX)?;
        let (dropped, rest) = rest.split_once(" records dropped (ring buffer full")?;
        let (cpus, rest) = rest.split_once("), ")?;
        let (unreadable, rest) = rest.split_once(" memory snapshots unreadable, ")?;
        let malformed = rest.strip_suffix(" malformed")?;
        let mut dropped_per_cpu = Vec::new();
        for part in cpus.trim_start_matches(':').split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (cpu, n) = part.strip_prefix("cpu")?.split_once(' ')?;
            let cpu: usize = cpu.parse().ok()?;
            if cpu >= 4096 {
                return None;
            }
            if dropped_per_cpu.len() <= cpu {
                dropped_per_cpu.resize(cpu + 1, 0);
            }
            dropped_per_cpu[cpu] = n.parse().ok()?;
        }
        Some(Losses {
            dropped: dropped.parse().ok()?,
            dropped_per_cpu,
            unreadable: unreadable.parse().ok()?,
            malformed: malformed.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_report_reads_back_as_written() {
        let l = Losses {
            dropped: 134_000,
            dropped_per_cpu: vec![0, 134_000],
            unreadable: 2,
            malformed: 0,
        };
        assert_eq!(
            l.desc(),
            "crashscope: 134000 records dropped (ring buffer full: cpu1 134000), 2 memory snapshots unreadable, 0 malformed"
        );
        assert_eq!(Losses::parse(&l.desc()), Some(l));
        // Captures written before the per-CPU counts.
        let old = "crashscope: 5 records dropped (ring buffer full), 0 memory snapshots unreadable, 1 malformed";
        assert_eq!(
            Losses::parse(old),
            Some(Losses {
                dropped: 5,
                dropped_per_cpu: vec![],
                unreadable: 0,
                malformed: 1
            })
        );
        assert_eq!(Losses::parse("something else"), None);
        assert_eq!(Losses::parse("crashscope: x records dropped (ring buffer full), 0 memory snapshots unreadable, 0 malformed"), None);
    }
}
