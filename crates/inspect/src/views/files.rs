//! `files`: files by bytes read and written, opens and failed opens with their errno
//! (sysdig's `topfiles_bytes`, `topfiles_errors` and `v_file_opens`).

use std::collections::{BTreeSet, HashMap};

use crate::event::{errno_text, Ev, IoDir};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default)]
struct File {
    bytes_in: u64,
    bytes_out: u64,
    opens: u64,
    errors: u64,
    errnos: BTreeSet<String>,
    procs: BTreeSet<String>,
}

pub struct Files {
    files: Vec<(String, File)>,
    /// Where each file is in `files`.
    index: HashMap<String, usize>,
    top: Option<usize>,
    /// The files (and their places) and processes of the last reads and writes, each
    /// process among its file's: programs moving data between a few files over and over
    /// (most of a busy capture) are counted without hashing a name each time.
    recent: [Option<(String, String, usize)>; RECENT],
    /// The entry of `recent` replaced next.
    next: usize,
}

impl Files {
    pub fn new(top: Option<usize>) -> Files {
        Files {
            files: Vec::new(),
            index: HashMap::new(),
            top,
            recent: Default::default(),
            next: 0,
        }
    }

    /// The file named `name`, added when new (looked up before allocating).
    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        self.files.push((name.to_string(), File::default()));
        self.index.insert(name.to_string(), self.files.len() - 1);
        self.files.len() - 1
    }
}

/// How many (file, process) pairs [`Files`] keeps at hand.
const RECENT: usize = 4;

fn is_open(name: &str) -> bool {
    matches!(
        name,
        "open" | "openat" | "openat2" | "creat" | "open_by_handle_at"
    )
}

impl View for Files {
    fn event(&mut self, ev: &Ev) {
        if ev.is_enter() {
            return;
        }
        let open = is_open(&ev.info.name);
        match ev.res() {
            Some(r) if r < 0 && open => {
                let Some(path) = ev.path() else {
                    return;
                };
                let i = self.slot(&path);
                let f = &mut self.files[i].1;
                f.errors += 1;
                f.errnos.insert(errno_text(r));
                f.procs.insert(ev.proc_name().to_string());
            }
            _ => {
                let Some(fd) = ev.fd().filter(|f| f.kind == 'f') else {
                    return;
                };
                let dir = ev.io();
                if !open && dir.is_none() {
                    return;
                }
                let proc_name = ev.proc_name();
                let hit =
                    self.recent.iter().flatten().find_map(|(file, p, i)| {
                        (*file == fd.name && p == proc_name).then_some(*i)
                    });
                let i = match hit {
                    Some(i) => i,
                    None => {
                        let i = self.slot(&fd.name);
                        let procs = &mut self.files[i].1.procs;
                        if !procs.contains(proc_name) {
                            procs.insert(proc_name.to_string());
                        }
                        self.recent[self.next] = Some((fd.name.clone(), proc_name.to_string(), i));
                        self.next = (self.next + 1) % RECENT;
                        i
                    }
                };
                let f = &mut self.files[i].1;
                match dir {
                    Some(IoDir::Read) => f.bytes_in += ev.io_bytes(),
                    Some(IoDir::Write) => f.bytes_out += ev.io_bytes(),
                    None => f.opens += 1,
                }
            }
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut files = self.files;
        files.sort_by(|a, b| {
            (b.1.bytes_in + b.1.bytes_out)
                .cmp(&(a.1.bytes_in + a.1.bytes_out))
                .then(b.1.opens.cmp(&a.1.opens))
                .then(b.1.errors.cmp(&a.1.errors))
                .then(a.0.cmp(&b.0))
        });
        super::truncate(&mut files, self.top);
        let mut t = Table::new(
            "files",
            &[
                "file",
                "bytes in",
                "bytes out",
                "opens",
                "errors",
                "errnos",
                "processes",
            ],
        );
        for (name, f) in files {
            let join = |s: BTreeSet<String>| {
                if s.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(s.into_iter().collect::<Vec<_>>().join(","))
                }
            };
            t.push(vec![
                name.into(),
                Cell::Bytes(f.bytes_in),
                Cell::Bytes(f.bytes_out),
                Cell::Count(f.opens),
                Cell::Count(f.errors),
                join(f.errnos),
                join(f.procs),
            ]);
        }
        t
    }
}
