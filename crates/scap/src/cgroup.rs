//! Container ids in cgroup paths — the one reader of them, for the replay state (sysdig's
//! `container.id`) and for the recorder and node agent (which kubelet container a process is
//! in). Runtimes name a container's cgroup by its 64-hex id: a bare directory (cgroupfs
//! driver), `<runtime>-<id>.scope` (systemd driver: docker, cri-containerd, crio, libpod), or
//! `<runtime>:<prefix>:<id>`.

/// A cgroup path segment that holds a container id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// What names the runtime before the id (`cri-containerd`, `docker`…); empty for a bare id.
    pub prefix: &'a str,
    /// The full 64-hex id.
    pub id: &'a str,
    /// Written as a systemd scope (`….scope`).
    pub scope: bool,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id one segment of a cgroup path holds, if any.
pub fn segment(seg: &str) -> Option<Segment<'_>> {
    // Only a segment of 64+ characters can hold a container id; skip the rest cheaply.
    if seg.len() < 64 {
        return None;
    }
    let (name, scope) = match seg.strip_suffix(".scope") {
        Some(n) => (n, true),
        None => (seg, false),
    };
    let id = name.rsplit(['-', ':']).next().unwrap_or(name);
    if !is_id(id) {
        return None;
    }
    let prefix = name[..name.len() - id.len()].trim_end_matches(['-', ':']);
    Some(Segment { prefix, id, scope })
}

/// The container id (12 characters, as sysdig shows it) that a thread's cgroups name, or
/// empty on the host. `cgroups` are `controller=path` entries as libscap records them.
pub fn container_id(cgroups: &[String]) -> String {
    for cg in cgroups {
        let path = cg.split_once('=').map(|(_, p)| p).unwrap_or(cg);
        if let Some(s) = path.split('/').rev().find_map(segment) {
            return s.id[..12].to_string();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_come_from_cgroup_paths() {
        let docker = "cpu=/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .to_string();
        assert_eq!(container_id(&[docker]), "0123456789ab");
        let crio = "pids=/kubepods.slice/kubepods-burstable.slice/crio-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.scope".to_string();
        assert_eq!(container_id(&[crio]), "fedcba987654");
        assert_eq!(container_id(&["cpu=/user.slice".to_string()]), "");
    }

    #[test]
    fn segments_name_the_runtime_and_the_whole_id() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let scoped = format!("cri-containerd-{id}.scope");
        assert_eq!(
            segment(&scoped),
            Some(Segment {
                prefix: "cri-containerd",
                id,
                scope: true
            })
        );
        assert_eq!(
            segment(id),
            Some(Segment {
                prefix: "",
                id,
                scope: false
            })
        );
        assert_eq!(segment(&format!("{}.scope", &id[1..])), None);
        assert_eq!(segment("kubepods-burstable.slice"), None);
    }
}
