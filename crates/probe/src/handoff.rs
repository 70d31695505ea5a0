//! The ring buffer's reader hands its records to a converting thread in 1 MiB batches: the
//! reader only copies bytes, so it empties the ring as fast as the kernel fills it, and a
//! burst waits in the batches (up to [`BATCHES`] MiB) instead of being dropped. Converting
//! and encoding a record costs several times its copy; on the reader's thread that cost
//! set how fast a capture could go before the ring overflowed.

use std::io::Write;

use crate::spool::Spool;

/// Batches that may wait for the converting thread (MiB of records, on top of the ring).
pub const BATCHES: usize = 16;

/// What takes the records on the converting thread.
pub trait Records {
    fn record(&mut self, raw: &[u8]) -> std::io::Result<()>;
}

/// The reader's end.
pub struct Handoff<S: Records + Send + 'static> {
    spool: Spool<Unbatch<S>>,
}

impl<S: Records + Send + 'static> Handoff<S> {
    /// Starts the converting thread, which gives each record to `sink`.
    pub fn new(sink: S) -> std::io::Result<Self> {
        Ok(Handoff {
            spool: Spool::with_chunks(Unbatch { sink }, BATCHES, "capture-convert")?,
        })
    }

    /// Queues a record (length-prefixed, never split between batches). An error means the
    /// converting thread stopped, and says why.
    pub fn push(&mut self, raw: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(raw.len())
            .map_err(|_| std::io::Error::other("a probe record over 4 GiB"))?;
        self.spool.write_parts(&[&len.to_le_bytes(), raw])
    }

    /// Hands over the records queued so far without waiting for a full batch.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.spool.flush()
    }

    /// Waits until every record is converted; the sink back.
    pub fn finish(self) -> std::io::Result<S> {
        self.spool.finish().map(|u| u.sink)
    }
}

/// The converting thread's end: splits each batch back into records.
struct Unbatch<S> {
    sink: S,
}

impl<S: Records> Write for Unbatch<S> {
    fn write(&mut self, batch: &[u8]) -> std::io::Result<usize> {
        let mut rest = batch;
        while let Some(head) = rest.get(..4) {
            let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let Some(rec) = rest.get(4..4 + n) else {
                return Err(std::io::Error::other("a record batch ends inside a record"));
            };
            self.sink.record(rec)?;
            rest = &rest[4 + n..];
        }
        Ok(batch.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<Vec<u8>>);
    impl Records for Collect {
        fn record(&mut self, raw: &[u8]) -> std::io::Result<()> {
            self.0.push(raw.to_vec());
            Ok(())
        }
    }

    #[test]
    fn every_record_arrives_whole_and_in_order_across_batches() {
        let mut h = Handoff::new(Collect::default()).unwrap();
        let mut want = Vec::new();
        // Records of every size up to 3 KiB: many batches, none split.
        for i in 0..20_000u32 {
            let rec: Vec<u8> = (0..(i * 7919) % 3000).map(|b| (b ^ i) as u8).collect();
            h.push(&rec).unwrap();
            if i % 5000 == 0 {
                h.flush().unwrap();
            }
            want.push(rec);
        }
        assert_eq!(h.finish().unwrap().0, want);
    }

    struct Fails;
    impl Records for Fails {
        fn record(&mut self, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
    }

    #[test]
    fn the_sinks_error_comes_back_to_the_reader() {
        let mut h = Handoff::new(Fails).unwrap();
        let mut failed = None;
        for _ in 0..(BATCHES + 4) * 1024 {
            if let Err(e) = h.push(&[0u8; 1020]) {
                failed = Some(e);
                break;
            }
        }
        let e = failed
            .or_else(|| h.finish().err())
            .expect("the error comes back");
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
    }
}
