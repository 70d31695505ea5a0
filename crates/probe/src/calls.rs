//! The standard events of calls beyond files, sockets and processes — memory, descriptors,
//! credentials, namespaces, permissions — which would otherwise be generic events. A generic
//! exit has no return value; these do, so an `mmap` that failed with ENOMEM, a `chmod` of a
//! missing file or a `setuid` refused with EPERM shows in a capture (errors matter when
//! a container crashes). Parameters are the schema's (falcosecurity 3.6.1), flags in its
//! numbering.

use crate::param::{int, Val, Vals};

use crate::record::Record;
use crate::syscalls::{clone_flags, open_flags};

/// File status flags without the access mode open_flags always adds (dup3, eventfd2).
fn status_flags(linux: u64) -> u32 {
    open_flags(linux) & !3
}

// x86_64 system call numbers.
pub const FSTAT: u16 = 5;
pub const LSEEK: u16 = 8;
pub const MMAP: u16 = 9;
pub const MPROTECT: u16 = 10;
pub const MUNMAP: u16 = 11;
pub const BRK: u16 = 12;
pub const IOCTL: u16 = 16;
pub const DUP: u16 = 32;
pub const DUP2: u16 = 33;
pub const FCHDIR: u16 = 81;
pub const SYMLINK: u16 = 88;
pub const CHMOD: u16 = 90;
pub const FCHMOD: u16 = 91;
pub const CHOWN: u16 = 92;
pub const FCHOWN: u16 = 93;
pub const SETUID: u16 = 105;
pub const SETGID: u16 = 106;
pub const UMOUNT2: u16 = 166;
pub const FUTEX: u16 = 202;
pub const GETDENTS64: u16 = 217;
pub const EPOLL_WAIT: u16 = 232;
pub const UNSHARE: u16 = 272;
pub const EVENTFD2: u16 = 290;
pub const DUP3: u16 = 292;
pub const SETNS: u16 = 308;

/// The scap event codes of these calls: (enter, exit).
pub fn codes(nr: u16) -> Option<(u16, u16)> {
    Some(match nr {
        FSTAT => (70, 71),
        LSEEK => (86, 87),
        FUTEX => (64, 65),
        EPOLL_WAIT => (78, 79),
        FCHDIR => (96, 97),
        SYMLINK => (178, 179),
        SETUID => (198, 199),
        SETGID => (200, 201),
        GETDENTS64 => (238, 239),
        SETNS => (240, 241),
        UNSHARE => (284, 285),
        BRK => (158, 159),
        MMAP => (160, 161),
        MUNMAP => (164, 165),
        IOCTL => (170, 171),
        CHMOD => (314, 315),
        FCHMOD => (316, 317),
        MPROTECT => (328, 329),
        DUP2 => (362, 363),
        DUP3 => (364, 365),
        DUP => (366, 367),
        CHOWN => (378, 379),
        FCHOWN => (382, 383),
        UMOUNT2 => (390, 391),
        EVENTFD2 => (396, 397),
        _ => return None,
    })
}

/// Which snapshots these calls need: the paths they name (argument index per slot).
pub fn paths(nr: u16) -> Option<[Option<u8>; 2]> {
    Some(match nr {
        CHMOD | CHOWN | UMOUNT2 => [Some(0), None],
        SYMLINK => [Some(0), Some(1)],
        _ => return None,
    })
}

/// mmap(2) flags in scap's numbering (PPM_MAP_*).
pub fn mmap_flags(linux: u64) -> u32 {
    const MAP: [(u64, u32); 12] = [
        (0x1, 1),          // MAP_SHARED
        (0x2, 2),          // MAP_PRIVATE
        (0x10, 4),         // MAP_FIXED
        (0x20, 8),         // MAP_ANONYMOUS
        (0x40, 16),        // MAP_32BIT
        (0x4000, 64),      // MAP_NORESERVE
        (0x8000, 128),     // MAP_POPULATE
        (0x10000, 256),    // MAP_NONBLOCK
        (0x100, 512),      // MAP_GROWSDOWN
        (0x800, 1024),     // MAP_DENYWRITE
        (0x1000, 2048),    // MAP_EXECUTABLE
        (0x2000, 1 << 14), // MAP_LOCKED
    ];
    MAP.iter()
        .filter(|(l, _)| linux & l != 0)
        .fold(0, |f, (_, p)| f | p)
}

/// mmap/mprotect protection in scap's numbering: the same low bits, GROWSDOWN/GROWSUP moved.
pub fn prot_flags(linux: u64) -> u32 {
    let mut f = (linux & 0xf) as u32;
    if linux & 0x0100_0000 != 0 {
        f |= 16;
    }
    if linux & 0x0200_0000 != 0 {
        f |= 32;
    }
    f
}

/// The entry event's parameters, for a call of [`codes`].
pub fn enter<'a>(r: &Record<'a>) -> Vals<'a> {
    let a = &r.args;
    let fd = |i: usize| int::<8>(i64::from(a[i] as i32));
    let u64_ = |i: usize| int::<8>(a[i] as i64);
    let u32_ = |i: usize| int::<4>(a[i] as u32 as i64);
    match r.nr {
        FSTAT | FCHDIR | GETDENTS64 | DUP | DUP2 | DUP3 => [("fd", fd(0))].into(),
        LSEEK => [
            ("fd", fd(0)),
            ("offset", u64_(1)),
            ("whence", int::<1>(a[2] as i64)),
        ]
        .into(),
        FUTEX => [
            ("addr", u64_(0)),
            ("op", int::<2>(a[1] as i64)),
            ("val", u64_(2)),
        ]
        .into(),
        EPOLL_WAIT => [("maxevents", int::<8>(i64::from(a[2] as i32)))].into(),
        SETUID => [("uid", u32_(0))].into(),
        SETGID => [("gid", u32_(0))].into(),
        SETNS => [
            ("fd", fd(0)),
            ("nstype", int::<4>(clone_flags(a[1]).into())),
        ]
        .into(),
        UNSHARE => [("flags", int::<4>(clone_flags(a[0]).into()))].into(),
        BRK => [("addr", u64_(0))].into(),
        MMAP => [
            ("addr", u64_(0)),
            ("length", u64_(1)),
            ("prot", int::<4>(prot_flags(a[2]).into())),
            ("flags", int::<4>(mmap_flags(a[3]).into())),
            ("fd", fd(4)),
            ("offset", u64_(5)),
        ]
        .into(),
        MUNMAP => [("addr", u64_(0)), ("length", u64_(1))].into(),
        MPROTECT => [
            ("addr", u64_(0)),
            ("length", u64_(1)),
            ("prot", int::<4>(prot_flags(a[2]).into())),
        ]
        .into(),
        IOCTL => [("fd", fd(0)), ("request", u64_(1)), ("argument", u64_(2))].into(),
        UMOUNT2 => [("flags", u32_(1))].into(),
        EVENTFD2 => [("initval", u64_(0))].into(),
        _ => Vals::default(),
    }
}

/// The exit event's parameters, for a call of [`codes`]: the return value first.
pub fn exit<'a>(r: &Record<'a>) -> Vals<'a> {
    let a = &r.args;
    let res = int::<8>(r.ret);
    let fd = |i: usize| int::<8>(i64::from(a[i] as i32));
    let u32_ = |i: usize| int::<4>(a[i] as u32 as i64);
    let path = |i: usize| r.text(i).map_or(Val::Bytes(&[]), Val::Str);
    let mut v = Vals::default();
    v.push(("res", res));
    match r.nr {
        SYMLINK => v.extend_from([("target", path(0)), ("linkpath", path(1))]),
        CHMOD => v.extend_from([("filename", path(0)), ("mode", u32_(1))]),
        FCHMOD => v.extend_from([("fd", fd(0)), ("mode", u32_(1))]),
        CHOWN => v.extend_from([("path", path(0)), ("uid", u32_(1)), ("gid", u32_(2))]),
        FCHOWN => v.extend_from([("fd", fd(0)), ("uid", u32_(1)), ("gid", u32_(2))]),
        UMOUNT2 => v.push(("name", path(0))),
        DUP => v.push(("oldfd", fd(0))),
        DUP2 => v.extend_from([("oldfd", fd(0)), ("newfd", fd(1))]),
        DUP3 => v.extend_from([
            ("oldfd", fd(0)),
            ("newfd", fd(1)),
            ("flags", int::<4>(status_flags(a[2]).into())),
        ]),
        EVENTFD2 => v.push(("flags", int::<2>(status_flags(a[1]).into()))),
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_flags_use_scaps_numbering() {
        // MAP_PRIVATE|MAP_ANONYMOUS, as malloc maps big blocks.
        assert_eq!(mmap_flags(0x22), 2 | 8);
        // MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, as the loader maps a library.
        assert_eq!(mmap_flags(0x812), 2 | 4 | 1024);
        assert_eq!(prot_flags(0x1 | 0x2), 3);
        assert_eq!(prot_flags(0x0100_0004), 4 | 16);
    }

    #[test]
    fn every_event_exists_in_the_schema_with_the_parameters_filled_in() {
        use crate::record::{raw, Record};
        for nr in 0..512u16 {
            let Some((e, x)) = codes(nr) else { continue };
            let b = raw(1, nr, -12, [3, 4, 5, 6, 7, 8], [b"/a\0", b"/b\0"]);
            let r = Record::parse(&b).unwrap();
            for (code, values) in [(e, enter(&r)), (x, exit(&r))] {
                let info = crashscope_scap::schema::event(code)
                    .unwrap_or_else(|| panic!("{nr}: no event {code}"));
                for (name, _) in values.iter() {
                    assert!(
                        info.params.iter().any(|p| p.name == *name),
                        "{nr}: event {code} has no parameter {name}"
                    );
                }
            }
            assert_eq!(exit(&r)[0], ("res", int::<8>(-12)));
        }
    }
}
