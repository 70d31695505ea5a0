//! Which container a process belongs to, read from its cgroups: the kubelet names each
//! container's cgroup after the pod's uid and the container's id, whatever the runtime
//! (containerd, CRI-O, docker), the cgroup driver (systemd slices and scopes, or cgroupfs
//! directories) and the cgroup version. A node agent finds a pod's processes this way and
//! the cgroup v2 id that lets the probe catch processes entering the container later.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// One line of `/proc/PID/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub hierarchy: u32,
    /// Empty for the cgroup v2 line (`0::/path`).
    pub controllers: String,
    pub path: String,
}

/// Reads `/proc/PID/cgroup` text; malformed lines are skipped.
pub fn memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let (h, rest) = l.split_once(':')?;
            let (c, p) = rest.split_once(':')?;
            Some(Membership {
                hierarchy: h.parse().ok()?,
                controllers: c.to_string(),
                path: p.to_string(),
            })
        })
        .collect()
}

/// The container runtime named by a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    /// cgroupfs driver: the directory is the bare id, the runtime is not named.
    Unnamed,
}

/// A container's cgroup as the kubelet named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The pod's uid with dashes (the systemd driver writes underscores).
    pub pod_uid: String,
    /// The container id as `status.containerStatuses[].containerID` has it after `://`.
    pub container_id: String,
    pub runtime: Runtime,
}

/// `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let at = name.rfind("pod")?;
    let uid = &name[at + 3..];
    let valid = uid.len() == 36
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    valid.then(|| uid.replace('_', "-"))
}

/// The container a cgroup path belongs to, if it is a kubelet container cgroup. The path may
/// start with `/..` components (a reader in another cgroup namespace sees it that way).
pub fn container_of(path: &str) -> Option<ContainerCgroup> {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let leaf = crashscope_scap::cgroup::segment(parts.next()?)?;
    let runtime = match (leaf.scope, leaf.prefix) {
        (true, "cri-containerd") => Runtime::Containerd,
        (true, "crio") => Runtime::Crio,
        (true, "docker") => Runtime::Docker,
        (false, "") => Runtime::Unnamed,
        _ => return None,
    };
    let id = leaf.id;
    let uid = parts.find_map(pod_uid)?;
    Some(ContainerCgroup {
        pod_uid: uid,
        container_id: id.to_string(),
        runtime,
    })
}

/// The id a pod's status gives a container (`containerd://abc…`), without its scheme.
pub fn status_id(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid machines), from `/proc/self/mountinfo`.
pub fn v2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The cgroup v2 id of the cgroup at `dir` (what `bpf_get_current_cgroup_id` returns for its
/// processes): the inode of its directory; None when it is not a directory.
pub fn dir_id(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| m.ino())
}

/// A process's parent, from `/proc/PID/stat` (the field after the command, which may hold
/// spaces and parentheses, hence the last `)`).
pub fn parent(proc: &Path, pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The container's first process among `pids`: the lowest one whose parent is outside
/// the container (the runtime's shim, or `kubectl exec`'s runc for later ones).
pub fn first_process(proc: &Path, pids: &[u32]) -> Option<u32> {
    pids.iter()
        .copied()
        .filter(|p| parent(proc, *p).is_none_or(|pp| !pids.contains(&pp)))
        .min()
}

/// The directory of a pod's cgroup in the v2 hierarchy at `mount`: a directory below the
/// `kubepods` ones named after the pod's uid (`pod<uid>`, or the systemd driver's
/// `kubepods-<qos>-pod<uid_with_underscores>.slice`).
pub fn pod_dir(mount: &Path, pod_uid: &str) -> Option<PathBuf> {
    let wanted = [
        format!("pod{pod_uid}"),
        format!("pod{}", pod_uid.replace('-', "_")),
    ];
    let mut level = vec![mount.to_path_buf()];
    for depth in 0..4 {
        let mut next = Vec::new();
        for dir in level {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let stem = name.strip_suffix(".slice").unwrap_or(&name);
                if wanted.iter().any(|w| stem.ends_with(w.as_str())) {
                    return Some(e.path());
                }
                // Only the kubelet's tree is searched (kubepods, kubepods.slice, the QoS
                // classes below it; kind nests it in kubelet.slice).
                let kubelet = name.contains("kubepods") || name.starts_with("kubelet");
                if kubelet || (depth > 0 && !name.contains('.')) {
                    next.push(e.path());
                }
            }
        }
        level = next;
    }
    None
}

/// Every process in the cgroup at `dir` and in the cgroups below it.
pub fn pids_below(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            todo.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The cgroup v2 paths of running processes whose last component names container `id`
/// (its full id or a prefix of at least 12 hex digits), whatever the runtime's naming
/// (`cri-containerd-ID.scope`, `docker-ID.scope`, `crio-ID.scope`, a bare `ID`).
pub fn find_container(proc: &Path, id: &str) -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir(proc)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("cgroup")).ok())
        .flat_map(|text| memberships(&text))
        .filter(|m| m.hierarchy == 0 && m.controllers.is_empty())
        .filter(|m| {
            let leaf = m.path.rsplit('/').next().unwrap_or("");
            let leaf = leaf.strip_suffix(".scope").unwrap_or(leaf);
            let bare = leaf.rsplit('-').next().unwrap_or(leaf);
            bare.starts_with(id) && !leaf.contains("conmon")
        })
        .map(|m| m.path)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The processes of each kubelet container cgroup on this machine, found by reading
/// `/proc/*/cgroup` under `proc`. Processes that vanish while being read are skipped.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// container id → its cgroup and processes.
    pub containers: BTreeMap<String, FoundContainer>,
}

#[derive(Debug, Clone)]
pub struct FoundContainer {
    pub cgroup: ContainerCgroup,
    pub pids: Vec<u32>,
}

/// Scans every process under `proc` (normally `/proc`).
pub fn scan(proc: &Path) -> Found {
    let mut found = Found::default();
    let Ok(dir) = std::fs::read_dir(proc) else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        let Some(cg) = memberships(&text)
            .iter()
            .find_map(|m| container_of(&m.path))
        else {
            continue;
        };
        let e = found
            .containers
            .entry(cg.container_id.clone())
            .or_insert_with(|| FoundContainer {
                cgroup: cg,
                pids: Vec::new(),
            });
        e.pids.push(pid);
    }
    for c in found.containers.values_mut() {
        c.pids.sort_unstable();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4d1f7c0e6b2a9c8d3e5f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
    const UID: &str = "8a5f3c1e-2b4d-4e6f-9a1b-3c5d7e9f1a2b";

    #[test]
    fn every_kubelet_naming_scheme_names_pod_and_container() {
        let uid_ = UID.replace('-', "_");
        let cases = [
            // containerd, systemd driver, cgroup v2 (and v1 controllers alike).
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            // Guaranteed pods sit right under kubepods.slice.
            (
                format!("/kubepods.slice/kubepods-pod{uid_}.slice/crio-{ID}.scope"),
                Runtime::Crio,
            ),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{ID}.scope"),
                Runtime::Docker,
            ),
            // cgroupfs driver.
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Runtime::Unnamed),
            (format!("/kubepods/pod{UID}/{ID}"), Runtime::Unnamed),
            // Seen from inside another cgroup namespace (an agent pod without host cgroupns).
            (
                format!("/../../kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
        ];
        for (path, runtime) in cases {
            let c = container_of(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(c.pod_uid, UID, "{path}");
            assert_eq!(c.container_id, ID, "{path}");
            assert_eq!(c.runtime, runtime, "{path}");
        }
    }

    #[test]
    fn cgroups_that_are_not_containers_are_not_taken_for_one() {
        let uid_ = UID.replace('-', "_");
        for path in [
            "/".to_string(),
            "/system.slice/containerd.service".into(),
            "/user.slice/user-0.slice/session-1.scope".into(),
            // The pod's own slice (pause-less sandboxes): no container id.
            format!("/kubepods.slice/kubepods-pod{uid_}.slice"),
            // conmon of CRI-O lives beside the container; it is not the container.
            format!("/kubepods.slice/kubepods-pod{uid_}.slice/crio-conmon-{ID}.scope"),
            // An id without a pod above it.
            format!("/system.slice/docker-{ID}.scope"),
            format!("/kubepods/burstable/pod{UID}/{}", &ID[..12]),
            String::new(),
        ] {
            assert_eq!(container_of(&path), None, "{path}");
        }
    }

    #[test]
    fn proc_cgroup_lines_of_v1_v2_and_hybrid_machines() {
        let text = format!(
            "12:memory:/kubepods/pod{UID}/{ID}\n1:name=systemd:/kubepods/pod{UID}/{ID}\n0::/kubepods/pod{UID}/{ID}\ngarbage\n"
        );
        let m = memberships(&text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].controllers, "memory");
        assert_eq!((m[2].hierarchy, m[2].controllers.as_str()), (0, ""));
        assert_eq!(status_id(&format!("containerd://{ID}")), ID);
        assert_eq!(status_id(ID), ID);
    }

    #[test]
    fn the_v2_mount_of_pure_and_hybrid_machines() {
        let hybrid = "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      35 30 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      36 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            v2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(v2_mount(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(v2_mount("garbage\n\n - \n"), None);
    }

    #[test]
    fn a_pod_directory_is_found_for_either_driver_and_the_first_process_by_parent() {
        let root = tempfile::tempdir().unwrap();
        let uid_ = UID.replace('-', "_");
        let systemd = root.path().join(format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice"
        ));
        std::fs::create_dir_all(systemd.join(format!("cri-containerd-{ID}.scope"))).unwrap();
        std::fs::create_dir_all(root.path().join("system.slice/pod-lookalike")).unwrap();
        assert_eq!(pod_dir(root.path(), UID), Some(systemd));
        let other = "11111111-2222-3333-4444-555555555555";
        let cgroupfs = root.path().join(format!("kubepods/besteffort/pod{other}"));
        std::fs::create_dir_all(&cgroupfs).unwrap();
        assert_eq!(pod_dir(root.path(), other), Some(cgroupfs));
        assert_eq!(
            pod_dir(root.path(), "99999999-2222-3333-4444-555555555555"),
            None
        );

        let proc = tempfile::tempdir().unwrap();
        for (pid, ppid) in [(10, 1), (11, 10), (12, 99)] {
            let d = proc.path().join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), format!("{pid} (a) b) S {ppid} 0 0")).unwrap();
        }
        assert_eq!(parent(proc.path(), 11), Some(10));
        assert_eq!(first_process(proc.path(), &[11, 12, 10]), Some(10));
        assert_eq!(first_process(proc.path(), &[11]), Some(11));
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for s in [
            "::",
            "0::",
            "a:b:c",
            "/pod/",
            "-.scope",
            "/pod-/x-.scope",
            "\u{1F600}:\u{1F600}:/pod\u{1F600}",
        ] {
            let _ = memberships(s);
            let _ = container_of(s);
            let _ = v2_mount(s);
        }
    }
}
