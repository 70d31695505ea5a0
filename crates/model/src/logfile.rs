//! A container instance's log: where it lives under a data directory, and its format. The
//! local runtime writes it, and `logs`, `diagnose` and the server read it back — one
//! contract, here.
//!
//! The format is the CRI's, as containerd and CRI-O write under `/var/log/pods`: one record
//! per line, `<RFC 3339 time, nanoseconds> <stdout|stderr> <F|P> <text>`, a line longer than
//! [`MAX_RECORD`] split into partial (`P`) records ended by a full (`F`) one. The times are
//! what `logs --timestamps` and `--since` read. Lines that are not records (a log written by an
//! older crashscope, raw output) read back as text without a time.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// Log file of instance `restart` of container `name` of pod `ns/pod` (uid `uid`).
pub fn log_path(
    data_dir: &Path,
    ns: &str,
    pod: &str,
    uid: &str,
    name: &str,
    restart: i32,
) -> PathBuf {
    data_dir
        .join("logs")
        .join(format!("{ns}_{pod}_{uid}"))
        .join(name)
        .join(format!("{restart}.log"))
}

/// The longest text one record carries; longer lines are split, as the kubelet's runtimes
/// split them (16 KiB).
pub const MAX_RECORD: usize = 16 * 1024;

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends one record to `out`: `text` (without its newline) written at `time` on `stream`;
/// `partial` when the line goes on in the next record.
pub fn encode(out: &mut Vec<u8>, time: Timestamp, stream: Stream, partial: bool, text: &[u8]) {
    use std::io::Write;
    // Go's RFC3339Nano, as the CRI writes it: UTC, trailing zeros of the fraction dropped —
    // which is how jiff displays a timestamp.
    let _ = write!(
        out,
        "{time} {} {} ",
        stream.as_str(),
        if partial { "P" } else { "F" }
    );
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// One line of the container's output, joined from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the line's last record was written; `None` for a line that is not a record.
    pub time: Option<Timestamp>,
    pub stream: Option<Stream>,
    /// The text as the container wrote it, without the newline.
    pub text: Vec<u8>,
}

/// A record's fields, or `None` when the line is not one.
fn record(line: &[u8]) -> Option<(Timestamp, Stream, bool, &[u8])> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // Tags are `:`-separated; the first says full or partial.
    let tags = parts.next()?;
    let partial = match tags.split(|b| *b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let text = parts.next().unwrap_or_default();
    // The time last: most lines that are not records fail on the cheaper checks above.
    let time = time.parse::<Timestamp>().ok()?;
    Some((time, stream, partial, text))
}

/// Every line of a log file's bytes, partial records joined to their line (per stream: the
/// runtime interleaves stdout's and stderr's records).
pub fn decode(buf: &[u8]) -> Vec<LogLine> {
    let mut d = Decoder::default();
    let mut lines = d.feed(buf);
    lines.extend(d.finish());
    lines
}

/// Reads a log as it grows (`logs -f`): bytes in any pieces, whole lines out.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes after the last newline seen.
    carry: Vec<u8>,
    /// Each stream's line still open (its partial records so far).
    open: [Option<Vec<u8>>; 2],
}

impl Decoder {
    /// The lines `bytes` completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        let mut lines = Vec::new();
        let Some(last) = bytes.iter().rposition(|b| *b == b'\n') else {
            self.carry.extend_from_slice(bytes);
            return lines;
        };
        let mut whole = std::mem::take(&mut self.carry);
        whole.extend_from_slice(&bytes[..last]);
        for raw in whole.split(|b| *b == b'\n') {
            self.line(raw, &mut lines);
        }
        self.carry.extend_from_slice(&bytes[last + 1..]);
        lines
    }

    /// What is left at the end of the log: a last line without its newline, and lines cut
    /// by the container's death — still output.
    pub fn finish(mut self) -> Vec<LogLine> {
        let mut lines = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.line(&carry, &mut lines);
        }
        for (i, rest) in self.open.into_iter().enumerate() {
            if let Some(text) = rest {
                lines.push(LogLine {
                    time: None,
                    stream: Some(if i == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    }),
                    text,
                });
            }
        }
        lines
    }

    fn line(&mut self, raw: &[u8], lines: &mut Vec<LogLine>) {
        match record(raw) {
            Some((time, stream, partial, text)) => {
                let slot = &mut self.open[stream as usize];
                let mut joined = slot.take().unwrap_or_default();
                joined.extend_from_slice(text);
                if partial {
                    *slot = Some(joined);
                } else {
                    lines.push(LogLine {
                        time: Some(time),
                        stream: Some(stream),
                        text: joined,
                    });
                }
            }
            None => lines.push(LogLine {
                time: None,
                stream: None,
                text: raw.to_vec(),
            }),
        }
    }
}

/// The container's output as it wrote it: each line's text and a newline.
pub fn plain(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    for line in decode(buf) {
        out.extend_from_slice(&line.text);
        out.push(b'\n');
    }
    out
}

/// [`plain`] as text, bytes that are not UTF-8 replaced.
pub fn plain_text(buf: &[u8]) -> String {
    String::from_utf8_lossy(&plain(buf)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn one_file_per_instance() {
        let p = super::log_path(std::path::Path::new("/d"), "ns", "p", "u", "c", 3);
        assert_eq!(p, std::path::Path::new("/d/logs/ns_p_u/c/3.log"));
    }

    #[test]
    fn records_are_written_as_the_cri_writes_them() {
        let mut out = Vec::new();
        encode(
            &mut out,
            t("2016-10-06T00:17:09.669794200Z"),
            Stream::Stdout,
            false,
            b"log content 1",
        );
        encode(
            &mut out,
            t("2016-10-06T00:17:10Z"),
            Stream::Stderr,
            true,
            b"part",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2016-10-06T00:17:09.6697942Z stdout F log content 1\n\
             2016-10-06T00:17:10Z stderr P part\n"
        );
    }

    #[test]
    fn partial_records_join_per_stream() {
        let log = b"2016-10-06T00:17:09.1Z stdout P hello \n\
2016-10-06T00:17:09.2Z stderr F oops\n\
2016-10-06T00:17:09.3Z stdout F world\n";
        let lines = decode(log);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, b"oops");
        assert_eq!(lines[0].stream, Some(Stream::Stderr));
        assert_eq!(lines[1].text, b"hello world");
        assert_eq!(lines[1].time, Some(t("2016-10-06T00:17:09.3Z")));
        assert_eq!(plain(log), b"oops\nhello world\n");
    }

    #[test]
    fn lines_that_are_not_records_are_text_without_a_time() {
        let log = b"plain line\n2016-10-06T00:17:09Z stdout F ok\nnot-a-time stdout F x\n\n";
        let lines = decode(log);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].time, None);
        assert_eq!(lines[0].text, b"plain line");
        assert_eq!(lines[1].text, b"ok");
        assert_eq!(lines[2].text, b"not-a-time stdout F x");
        assert_eq!(lines[3].text, b"");
        assert!(decode(b"").is_empty());
    }

    #[test]
    fn an_empty_line_and_a_cut_line_survive() {
        let log = b"2016-10-06T00:17:09Z stdout F \n2016-10-06T00:17:09Z stdout P cut";
        let lines = decode(log);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, b"");
        assert_eq!(lines[1].text, b"cut");
    }

    #[test]
    fn a_log_read_in_pieces_gives_the_lines_read_whole() {
        let log = b"2016-10-06T00:17:09.1Z stdout P hel\n\
2016-10-06T00:17:09.2Z stdout F lo\n\
2016-10-06T00:17:09.3Z stderr F x\nraw tail";
        for cut in 0..log.len() {
            let mut d = Decoder::default();
            let mut got = d.feed(&log[..cut]);
            got.extend(d.feed(&log[cut..]));
            got.extend(d.finish());
            assert_eq!(got, decode(log), "cut at {cut}");
        }
        let texts: Vec<_> = decode(log).into_iter().map(|l| l.text).collect();
        assert_eq!(
            texts,
            vec![b"hello".to_vec(), b"x".to_vec(), b"raw tail".to_vec()]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_output_reads_back_as_written(
            chunks in proptest::collection::vec(
                (proptest::bool::ANY, proptest::collection::vec(0u8..=255, 0..40)), 0..20)
        ) {
            let mut log = Vec::new();
            let mut want: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
            for (err, text) in &chunks {
                let text: Vec<u8> = text.iter().copied().filter(|b| *b != b'\n').collect();
                let stream = if *err { Stream::Stderr } else { Stream::Stdout };
                encode(&mut log, Timestamp::UNIX_EPOCH, stream, false, &text);
                want[*err as usize].push(text);
            }
            let mut got: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
            for line in decode(&log) {
                let i = line.stream.map_or(0, |s| s as usize);
                got[i].push(line.text);
            }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
