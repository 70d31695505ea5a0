//! Linux capabilities a container keeps, as containerd sets them: its default set, plus the
//! securityContext's `add`, minus its `drop` (`ALL` drops every one); `privileged` keeps all.
//! The local runtime applies them as the bounding set, so what an exec'd root program can do
//! is what it could do in a cluster (a non-root program loses them at exec there too).

use k8s_openapi::api::core::v1::SecurityContext;

/// Names by bit number, as `linux/capability.h` numbers them.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// containerd's default set (the OCI runtime spec's default, Docker's too).
const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability this table knows.
pub const ALL: u64 = (1 << NAMES.len()) - 1;

/// The bit of a capability named as Kubernetes accepts it (`NET_ADMIN` or `CAP_NET_ADMIN`).
fn bit(name: &str) -> Option<u64> {
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES.iter().position(|n| *n == bare).map(|i| 1 << i)
}

/// The capabilities a container keeps, or the runtime's error for a name it does not know.
pub fn kept(sc: Option<&SecurityContext>) -> Result<u64, String> {
    if sc.and_then(|s| s.privileged) == Some(true) {
        return Ok(ALL);
    }
    let mut set = DEFAULT.iter().filter_map(|n| bit(n)).fold(0, |a, b| a | b);
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let names = |l: Option<&Vec<String>>| l.cloned().unwrap_or_default();
    for name in names(caps.and_then(|c| c.add.as_ref())) {
        set |= match name.as_str() {
            "ALL" => ALL,
            n => bit(n).ok_or_else(|| format!("unknown capability {name:?} to add"))?,
        };
    }
    for name in names(caps.and_then(|c| c.drop.as_ref())) {
        set &= !match name.as_str() {
            "ALL" => ALL,
            n => bit(n).ok_or_else(|| format!("unknown capability {name:?} to drop"))?,
        };
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Capabilities;

    fn sc(add: &[&str], drop: &[&str]) -> SecurityContext {
        let list = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect());
        SecurityContext {
            capabilities: Some(Capabilities {
                add: list(add),
                drop: list(drop),
            }),
            ..SecurityContext::default()
        }
    }

    #[test]
    fn the_default_set_is_containerds() {
        // /proc/self/status CapBnd of a default Docker or containerd container.
        assert_eq!(kept(None), Ok(0xa80425fb));
    }

    #[test]
    fn add_and_drop_change_the_default_and_all_means_all() {
        let no_bind = kept(Some(&sc(&[], &["NET_BIND_SERVICE"]))).unwrap();
        assert_eq!(no_bind & (1 << 10), 0);
        assert_eq!(no_bind | (1 << 10), 0xa80425fb);
        assert_eq!(kept(Some(&sc(&["NET_BIND_SERVICE"], &["ALL"]))), Ok(0));
        let admin = kept(Some(&sc(&["CAP_NET_ADMIN"], &[]))).unwrap();
        assert_ne!(admin & (1 << 12), 0);
        let privileged = SecurityContext {
            privileged: Some(true),
            ..sc(&[], &["ALL"])
        };
        assert_eq!(kept(Some(&privileged)), Ok(ALL));
        assert_eq!(
            kept(Some(&sc(&["NET_MAGIC"], &[]))),
            Err("unknown capability \"NET_MAGIC\" to add".into())
        );
    }
}
