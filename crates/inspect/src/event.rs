//! One event of a capture as the filter and the views see it: the record, the state it is
//! shown with, and what an operator asks of it — its syscall name, result, the fd it works
//! on (also for exits whose fd is only on the enter event), the I/O it did.

use crashscope_scap::block::EventRecord;
use crashscope_scap::event::{as_i64, nth_param, params, Params};
use crashscope_scap::format::type_name_in;
use crashscope_scap::schema::{self, EventInfo, Mark};
use crashscope_scap::state::{Container, Fd, State, Thread};

/// Direction of an I/O event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoDir {
    Read,
    Write,
}

/// A visible event with its state.
pub struct Ev<'a> {
    pub num: u64,
    pub rec: &'a EventRecord,
    pub state: &'a State,
    pub info: &'static EventInfo,
    /// Split when first asked for: most views of most events need the result at most,
    /// which is read on its own.
    params: std::cell::OnceCell<Params<'a>>,
    name: &'static str,
    /// Looked up once: several views ask for both of every event.
    thread: Option<&'a Thread>,
    fd: std::cell::OnceCell<Option<&'a Fd>>,
    fd_num: std::cell::OnceCell<Option<i64>>,
    /// Read once: nearly every view asks for it, some several times an event.
    res: Option<i64>,
}

impl<'a> Ev<'a> {
    /// `None` for event types the schema does not know.
    #[inline]
    pub fn new(num: u64, rec: &'a EventRecord, state: &'a State) -> Option<Ev<'a>> {
        let code = rec.event_type();
        let info = schema::event(code)?;
        let split = std::cell::OnceCell::new();
        // Generic syscall events are named by their parameters; every other by its type.
        let name = if code > 1 {
            info.name.as_str()
        } else {
            type_name_in(rec, split.get_or_init(|| params(rec)), state)?
        };
        let tid = rec.tid();
        Some(Ev {
            num,
            rec,
            state,
            info,
            params: split,
            name,
            thread: state.thread(tid).filter(|_| tid > 0),
            fd: std::cell::OnceCell::new(),
            fd_num: std::cell::OnceCell::new(),
            res: if info.has_res {
                nth_param(rec, 0).and_then(as_i64)
            } else {
                None
            },
        })
    }

    pub fn ts(&self) -> u64 {
        self.rec.ts()
    }

    pub fn tid(&self) -> i64 {
        self.rec.tid()
    }

    /// The event's type name; generic syscall events are named for their syscall.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn is_enter(&self) -> bool {
        schema::is_enter(self.rec.event_type())
    }

    pub fn params(&self) -> &[&'a [u8]] {
        self.params.get_or_init(|| params(self.rec))
    }

    /// The parameter `name` of this event, or for an exit, of its enter event.
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        let i = self.info.params.iter().position(|p| p.name == name);
        if let Some(p) = i
            .and_then(|i| nth_param(self.rec, i))
            .filter(|p| !p.is_empty())
        {
            return Some(p);
        }
        if self.is_enter() {
            return None;
        }
        let enter = self.state.paired_enter(self.rec)?;
        let info = schema::event(enter.event_type())?;
        let i = info.params.iter().position(|p| p.name == name)?;
        // The enter record lives in the state, which outlives this event view.
        nth_param(enter, i).filter(|p| !p.is_empty())
    }

    /// The parameter `name` as a signed number.
    pub fn num_param(&self, name: &str) -> Option<i64> {
        self.param(name).and_then(as_i64)
    }

    /// The parameter `name` of this event itself (not of its enter event).
    pub fn own_param(&self, name: &str) -> Option<&'a [u8]> {
        let i = self.info.params.iter().position(|p| p.name == name)?;
        nth_param(self.rec, i)
    }

    /// The result of an exit event: its `res` parameter, or for calls that create an fd and
    /// have no `res` (old `open`), the `fd` parameter.
    pub fn res(&self) -> Option<i64> {
        self.res
    }

    /// The error a non-blocking connect ended with, as `getsockopt(SO_ERROR)` returned it
    /// (negative, like a result): the call itself succeeds, the connection did not.
    pub fn pending_error(&self) -> Option<i64> {
        if self.is_enter() || self.info.name != "getsockopt" || self.num_param("optname") != Some(4)
        {
            return None;
        }
        let v = self.param("val").filter(|v| v.len() == 9 && v[0] == 1)?;
        let err = i64::from_le_bytes(v[1..9].try_into().ok()?);
        (err < 0).then_some(err)
    }

    /// Whether the event failed (a negative result).
    pub fn failed(&self) -> bool {
        self.res().is_some_and(|r| r < 0)
    }

    /// Whether the event type works on an fd at all (libsinsp's `EF_USES_FD`,
    /// `EF_CREATES_FD`, `EF_DESTROYS_FD`); others have no `fd.*` values.
    pub fn has_fd(&self) -> bool {
        let i = self.info;
        i.is(Mark::UsesFd) || i.is(Mark::CreatesFd) || i.is(Mark::DestroysFd)
    }

    /// Whether the event creates its fd (then the enter has none yet: fd.num is -1).
    pub fn creates_fd(&self) -> bool {
        self.info.is(Mark::CreatesFd) && !self.info.is(Mark::UsesFd)
    }

    /// The fd number as sysdig's `fd.num` has it: the event's `fd` parameter (on the enter
    /// event for exits that lack it), the fd a creating call returned, -1 before it exists
    /// or when the creation failed; `None` for events that use no fd.
    pub fn fd_num(&self) -> Option<i64> {
        // Asked by views and by the fd lookup: worked out once.
        *self.fd_num.get_or_init(|| self.find_fd_num())
    }

    fn find_fd_num(&self) -> Option<i64> {
        if !self.has_fd() {
            return None;
        }
        if self.creates_fd() {
            if self.is_enter() {
                return Some(-1);
            }
            if let Some(fd1) = self.own_param("fd1").and_then(as_i64) {
                return Some(fd1);
            }
            return Some(self.res().filter(|r| *r >= 0).unwrap_or(-1));
        }
        let own = self
            .info
            .fd_index
            .and_then(|i| nth_param(self.rec, i))
            .filter(|p| !p.is_empty())
            .and_then(as_i64);
        // A read's or write's exit has its fd on the enter (found by index: asked of nearly
        // every event, a search by name cost more than the rest of the lookup).
        let on_enter = || {
            if self.is_enter() {
                return None;
            }
            let enter = self.state.paired_enter(self.rec)?;
            let i = schema::event(enter.event_type())?.fd_index?;
            nth_param(enter, i)
                .filter(|p| !p.is_empty())
                .and_then(as_i64)
        };
        // An exit whose fd is nowhere (e.g. an old capture's setsockopt) has sysdig's -1.
        Some(own.or_else(on_enter).unwrap_or(-1))
    }

    /// The open fd the event works on, from the fd table.
    pub fn fd(&self) -> Option<&'a Fd> {
        *self.fd.get_or_init(|| {
            let n = self.fd_num().filter(|n| *n >= 0)?;
            // The thread was looked up already: its process's table is one lookup away.
            let pid = self.thread.map(|t| t.pid).filter(|p| *p > 0);
            match pid {
                Some(pid) => self.state.fds.get(&pid)?.get(&n),
                None => self.state.fd(self.tid(), n),
            }
        })
    }

    pub fn thread(&self) -> Option<&'a Thread> {
        self.thread
    }

    /// The process (thread group leader) of the event's thread.
    pub fn process(&self) -> Option<&'a Thread> {
        let t = self.thread()?;
        self.state.thread(t.pid).or(Some(t))
    }

    pub fn pid(&self) -> i64 {
        self.thread().map(|t| t.pid).unwrap_or(self.tid())
    }

    pub fn proc_name(&self) -> &'a str {
        self.thread().map(|t| t.comm.as_str()).unwrap_or("<NA>")
    }

    /// The container id (12 hex digits), or `host`.
    pub fn container_id(&self) -> &'a str {
        match self.thread().map(|t| t.container_id()) {
            Some(id) if !id.is_empty() => id,
            _ => "host",
        }
    }

    pub fn container(&self) -> Option<&'a Container> {
        let id = self.thread()?.container_id();
        self.state.containers.get(id)
    }

    /// Read or write, for an I/O exit event that moved bytes.
    pub fn io(&self) -> Option<IoDir> {
        if self.is_enter() || self.res().is_none_or(|r| r <= 0) {
            return None;
        }
        if self.info.is(Mark::IoRead) {
            Some(IoDir::Read)
        } else if self.info.is(Mark::IoWrite) {
            Some(IoDir::Write)
        } else {
            None
        }
    }

    /// Bytes moved by an I/O event: its result — except sendmmsg and recvmmsg, whose result
    /// counts messages; their `size` is the bytes of the message recorded.
    pub fn io_bytes(&self) -> u64 {
        if self.io().is_none() {
            return 0;
        }
        if matches!(self.info.name.as_str(), "sendmmsg" | "recvmmsg") {
            return self.num_param("size").map_or(0, |n| n.max(0) as u64);
        }
        self.res().map_or(0, |r| r.max(0) as u64)
    }

    /// The payload snapshot of an I/O exit event (possibly shorter than the bytes moved).
    pub fn data(&self) -> Option<&'a [u8]> {
        nth_param(self.rec, self.info.data_index?)
    }

    /// The peer an unconnected socket's call names: its `tuple` parameter, else `addr`.
    pub fn peer(&self) -> Option<String> {
        use crashscope_scap::state::{addr_name, tuple_name};
        self.param("tuple")
            .and_then(tuple_name)
            .map(|(_, t)| t)
            .or_else(|| self.param("addr").and_then(addr_name))
    }

    /// A path the event names without an fd (a failed open's path, unlink, stat, ...).
    pub fn path(&self) -> Option<String> {
        ["name", "path", "pathname", "filename", "oldpath"]
            .iter()
            .find_map(|n| self.param(n))
            .map(crashscope_scap::event::as_str)
            .filter(|p| !p.is_empty())
    }
}

/// A socket fd's tuple split into its parts: (client ip, client port, server ip, server
/// port), from names like `10.0.0.1:4242->10.0.0.2:53` or `[::1]` forms without brackets.
pub fn tuple_parts(name: &str) -> Option<(&str, u16, &str, u16)> {
    let (c, s) = name.split_once("->")?;
    let (cip, cport) = c.rsplit_once(':')?;
    let (sip, sport) = s.rsplit_once(':')?;
    Some((cip, cport.parse().ok()?, sip, sport.parse().ok()?))
}

/// The name of an errno value, as sysdig's `evt.res` shows it.
pub fn errno_text(res: i64) -> String {
    if res >= 0 {
        return "SUCCESS".into();
    }
    match res
        .checked_neg()
        .and_then(crashscope_scap::format::errno_name)
    {
        Some(n) => n.to_string(),
        None => res.to_string(),
    }
}

/// The exit code or killing signal of a `procexit` event.
pub fn exit_status(ev: &Ev) -> (Option<i64>, Option<i64>) {
    let sig = ev.num_param("sig").filter(|s| *s > 0);
    if let Some(ret) = ev.num_param("ret") {
        if sig.is_none() {
            return (Some(ret), None);
        }
    }
    match ev.num_param("status") {
        Some(st) if sig.is_none() && st & 0x7f == 0 => (Some((st >> 8) & 0xff), None),
        Some(st) if sig.is_none() => (None, Some(st & 0x7f)),
        _ => (None, sig),
    }
}

/// The conventional name of a signal number (`signal N` for one without a name).
pub fn signal_name(sig: i64) -> String {
    crashscope_scap::format::signal_name(sig)
        .map(str::to_string)
        .unwrap_or_else(|| format!("signal {sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_split_for_both_families() {
        assert_eq!(
            tuple_parts("10.0.0.1:4242->10.0.0.2:53"),
            Some(("10.0.0.1", 4242, "10.0.0.2", 53))
        );
        assert_eq!(
            tuple_parts("2001:db8::1:40000->2001:4860:4860::8888:53"),
            Some(("2001:db8::1", 40000, "2001:4860:4860::8888", 53))
        );
        assert_eq!(tuple_parts("/run/sock"), None);
    }

    #[test]
    fn errno_and_signal_names() {
        assert_eq!(errno_text(0), "SUCCESS");
        assert_eq!(errno_text(-2), "ENOENT");
        assert_eq!(errno_text(-111), "ECONNREFUSED");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(99), "signal 99");
    }
}
