//! The container's output, copied from its stdout and stderr pipes into its log file as CRI
//! records (`crashscope_model::logfile`), each line stamped with the time it was read — the
//! work containerd's shim does for the kubelet, so that `logs --timestamps` and `--since` have
//! a time per line.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crashscope_model::logfile::{encode, Stream, MAX_RECORD};
use jiff::Timestamp;

/// The copiers of one container instance: one thread per stream.
#[derive(Debug)]
pub struct LogCopiers(Vec<JoinHandle<()>>);

impl LogCopiers {
    /// Starts copying `stdout` and `stderr` (read ends of the container's pipes) into `log`,
    /// appended to.
    pub fn start(log: &std::fs::File, stdout: OwnedFd, stderr: OwnedFd) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(2);
        for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
            // A handle each: O_APPEND makes every record's one write land whole at the end.
            let file = log.try_clone()?;
            let h = std::thread::Builder::new()
                .name(format!("log-{}", stream.as_str()))
                .spawn(move || copy(std::fs::File::from(fd), file, stream))?;
            handles.push(h);
        }
        Ok(LogCopiers(handles))
    }

    /// Waits until every stream is copied to its end, at most `limit`: a process the
    /// container left behind (a daemon that inherited stdout) may hold a pipe open for ever,
    /// and the instance's end must not wait on it.
    pub fn finish(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.0.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in self.0 {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

/// Copies one stream until its end: each full line one record, a line longer than a record
/// split into partial ones, what is left at the end written as a line.
fn copy(mut from: std::fs::File, mut to: std::fs::File, stream: Stream) {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of the current line not yet written.
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_RECORD);
    let mut out = Vec::with_capacity(buf.len() + 256);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading the container's {}: {e}", stream.as_str());
                break;
            }
        };
        let now = Timestamp::now();
        out.clear();
        for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
            let (text, ends) = match piece.strip_suffix(b"\n") {
                Some(t) => (t, true),
                None => (piece, false),
            };
            pending.extend_from_slice(text);
            while pending.len() > MAX_RECORD || (pending.len() == MAX_RECORD && !ends) {
                encode(&mut out, now, stream, true, &pending[..MAX_RECORD]);
                pending.drain(..MAX_RECORD);
            }
            if ends {
                encode(&mut out, now, stream, false, &pending);
                pending.clear();
            }
        }
        if let Err(e) = to.write_all(&out) {
            tracing::warn!("writing the container's log: {e}");
            return;
        }
    }
    if !pending.is_empty() {
        out.clear();
        encode(&mut out, Timestamp::now(), stream, false, &pending);
        let _ = to.write_all(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crashscope_model::logfile::decode;

    fn pipe() -> (OwnedFd, std::fs::File) {
        let mut fds = [-1; 2];
        // SAFETY: pipe2 on a local array; both fds are owned below.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        use std::os::fd::FromRawFd;
        unsafe {
            (
                OwnedFd::from_raw_fd(fds[0]),
                std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
            )
        }
    }

    #[test]
    fn both_streams_become_timed_lines_long_ones_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        let before = Timestamp::now();
        let copiers = LogCopiers::start(&log, out_r, err_r).unwrap();
        out_w.write_all(b"hello ").unwrap();
        out_w.write_all(b"world\nsecond\n").unwrap();
        let long = vec![b'x'; MAX_RECORD * 2 + 10];
        out_w.write_all(&long).unwrap();
        out_w.write_all(b"\nno newline at the end").unwrap();
        err_w.write_all(b"oops\n").unwrap();
        drop((out_w, err_w));
        copiers.finish(Duration::from_secs(5));
        let raw = std::fs::read(&path).unwrap();
        let lines = decode(&raw);
        let texts: Vec<&[u8]> = lines
            .iter()
            .filter(|l| l.stream == Some(Stream::Stdout))
            .map(|l| l.text.as_slice())
            .collect();
        assert_eq!(
            texts,
            vec![
                &b"hello world"[..],
                b"second",
                &long,
                b"no newline at the end"
            ]
        );
        assert!(lines
            .iter()
            .any(|l| l.stream == Some(Stream::Stderr) && l.text == b"oops"));
        assert!(lines.iter().all(|l| l.time.is_some_and(|t| t >= before)));
        // The long line went out as records of at most MAX_RECORD bytes.
        let longest = raw.split(|b| *b == b'\n').map(<[u8]>::len).max().unwrap();
        assert!(longest < MAX_RECORD + 64, "{longest}");
    }

    #[test]
    fn finish_does_not_wait_for_a_pipe_held_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("0.log")).unwrap();
        let (out_r, _out_w) = pipe();
        let (err_r, _err_w) = pipe();
        let copiers = LogCopiers::start(&log, out_r, err_r).unwrap();
        let t = Instant::now();
        copiers.finish(Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
