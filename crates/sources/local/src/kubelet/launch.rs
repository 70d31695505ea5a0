//! How a container is launched: its command resolved as runc resolves it, its environment,
//! mounts, identity and resolv.conf — or why the kubelet refuses to create it.

use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Node, PodHandle};
use crate::spawn::{self, Bind, LaunchSpec};

fn resolv_conf(node: &Node, ns: &str) -> String {
    format!(
        "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
        node.dns
    )
}

/// Why a container could not be started: its configuration cannot be built (an env
/// reference to a missing ConfigMap, Secret or key — the kubelet's
/// `CreateContainerConfigError`, which it retries without counting restarts), or the start
/// itself failed (`StartError`).
pub(super) enum Refused {
    Config(String),
    Start(String),
}

impl From<String> for Refused {
    fn from(s: String) -> Refused {
        Refused::Start(s)
    }
}

impl From<&str> for Refused {
    fn from(s: &str) -> Refused {
        Refused::Start(s.to_string())
    }
}

/// The program a container runs, found as runc finds it: a name on `$PATH`, or a path —
/// which may lie in a volume mount (checked at the volume's source, run at its mount path).
/// A file that exists but is not executable is runc's "permission denied".
fn resolve_program(cmd: &str, path_env: &str, binds: &[Bind]) -> Result<PathBuf, Refused> {
    let runc = |what: String| {
        Refused::Start(format!(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {what}: unknown"
        ))
    };
    if cmd.starts_with('/') {
        // The longest mount path holding the program, as the mount namespace will show it.
        let mounted = binds
            .iter()
            .filter(|b| {
                let t = b.target.to_string_lossy();
                let t = t.trim_end_matches('/');
                cmd.strip_prefix(t).is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|b| b.target.as_os_str().len());
        let on_host = match mounted {
            Some(b) => {
                let t = b.target.to_string_lossy();
                b.source
                    .join(cmd[t.trim_end_matches('/').len()..].trim_start_matches('/'))
            }
            None => PathBuf::from(cmd),
        };
        if spawn::resolve(&on_host.to_string_lossy(), path_env).is_some() {
            return Ok(PathBuf::from(cmd));
        }
        if on_host.is_file() {
            return Err(runc(format!("exec: {cmd:?}: permission denied")));
        }
        return Err(runc(format!(
            "exec: {cmd:?}: stat {cmd}: no such file or directory"
        )));
    }
    spawn::resolve(cmd, path_env)
        .ok_or_else(|| runc(format!("exec: {cmd:?}: executable file not found in $PATH")))
}

/// Builds the launch of container `c`, or the runtime's error when its command is unusable.
pub(super) fn launch_spec(
    h: &PodHandle,
    c: &Container,
    vols: &BTreeMap<String, PathBuf>,
    pod_dir: &std::path::Path,
    log: PathBuf,
) -> Result<LaunchSpec, Refused> {
    let pod = h.lock().pod.clone();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    let Some(cmd) = argv.first().cloned() else {
        return Err("no command specified".into());
    };
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
    ];
    // envFrom first: explicit env entries override them, as in Kubernetes.
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let vars: Option<Vec<(String, String)>> = if let Some(r) = &from.config_map_ref {
            match h.node.sources.config_map(&ns, &r.name) {
                Some(m) => Some(m.data.unwrap_or_default().into_iter().collect()),
                None if r.optional == Some(true) => Some(Vec::new()),
                None => return Err(Refused::Config(format!("configmap {:?} not found", r.name))),
            }
        } else if let Some(r) = &from.secret_ref {
            match h.node.sources.secret(&ns, &r.name) {
                Some(sec) => Some(
                    sec.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect(),
                ),
                None if r.optional == Some(true) => Some(Vec::new()),
                None => return Err(Refused::Config(format!("secret {:?} not found", r.name))),
            }
        } else {
            None
        };
        for (k, v) in vars.unwrap_or_default() {
            let key = format!("{prefix}{k}");
            env.retain(|(x, _)| *x != key);
            env.push((key, v));
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => e.value.clone().unwrap_or_default(),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    match f.field_path.as_str() {
                        "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                        "metadata.namespace" => ns.clone(),
                        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
                        "spec.nodeName" => h.node.name.clone(),
                        "status.podIP" | "status.hostIP" => "127.0.0.1".into(),
                        _ => String::new(),
                    }
                } else if let Some(k) = &from.config_map_key_ref {
                    let map = h.node.sources.config_map(&ns, &k.name);
                    let found = map
                        .as_ref()
                        .and_then(|m| m.data.as_ref()?.get(&k.key).cloned());
                    match found {
                        Some(v) => v,
                        None if k.optional == Some(true) => continue,
                        // The kubelet's words for each case.
                        None if map.is_none() => {
                            return Err(Refused::Config(format!(
                                "configmap {:?} not found",
                                k.name
                            )))
                        }
                        None => {
                            return Err(Refused::Config(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                k.key, k.name
                            )))
                        }
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    let secret = h.node.sources.secret(&ns, &k.name);
                    let found = secret.as_ref().and_then(|s| {
                        s.data
                            .as_ref()?
                            .get(&k.key)
                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    });
                    match found {
                        Some(v) => v,
                        None if k.optional == Some(true) => continue,
                        None if secret.is_none() => {
                            return Err(Refused::Config(format!("secret {:?} not found", k.name)))
                        }
                        None => {
                            return Err(Refused::Config(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                k.key, k.name
                            )))
                        }
                    }
                } else {
                    String::new()
                }
            }
        };
        env.retain(|(k, _)| *k != e.name);
        env.push((e.name.clone(), value));
    }
    let path_env = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut binds = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(src) = vols.get(&m.name) else {
            return Err(Refused::Start(format!(
                "volume mount {:?}: no volume named {:?}",
                m.mount_path, m.name
            )));
        };
        let src = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            // As the API server does: a subPath stays inside its volume.
            Some(sub) if sub.starts_with('/') || sub.split('/').any(|p| p == "..") => {
                return Err(Refused::Start(format!(
                    "volume mount {:?}: subPath {sub:?} must be a relative path without '..'",
                    m.mount_path
                )));
            }
            Some(sub) => src.join(sub),
            None => src.clone(),
        };
        binds.push(Bind {
            source: src,
            target: PathBuf::from(&m.mount_path),
            read_only: m.read_only == Some(true),
        });
    }
    let program = resolve_program(&cmd, &path_env, &binds)?;
    let user = identity(&pod, c)?;
    let etc = pod_dir.join("etc");
    let io = |e: std::io::Error| format!("prepare {}: {e}", etc.display());
    std::fs::create_dir_all(&etc).map_err(io)?;
    std::fs::write(etc.join("resolv.conf"), resolv_conf(&h.node, &ns)).map_err(io)?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{pod_name}\n"),
    )
    .map_err(io)?;
    binds.push(Bind {
        source: etc.join("resolv.conf"),
        target: "/etc/resolv.conf".into(),
        read_only: true,
    });
    binds.push(Bind {
        source: etc.join("hosts"),
        target: "/etc/hosts".into(),
        read_only: true,
    });
    let term = pod_dir.join("termination").join(&c.name);
    std::fs::create_dir_all(term.parent().unwrap_or(&etc)).map_err(io)?;
    std::fs::write(&term, b"").map_err(io)?;
    binds.push(Bind {
        source: term,
        target: PathBuf::from(
            c.termination_message_path
                .as_deref()
                .unwrap_or("/dev/termination-log"),
        ),
        read_only: false,
    });
    // containerd refuses an unknown name when it creates the container.
    let capabilities = crate::capabilities::kept(c.security_context.as_ref())
        .map_err(|e| Refused::Start(format!("failed to create containerd container: {e}")))?;
    let memory_limit = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| {
            crashscope_model::quantity::bytes(&q.0)
                .ok_or_else(|| format!("resources.limits.memory: invalid quantity {:?}", q.0))
        })
        .transpose()?;
    Ok(LaunchSpec {
        program,
        argv,
        env,
        working_dir: c.working_dir.as_ref().map(PathBuf::from),
        hostname: pod_name.clone(),
        binds,
        read_only_root: c
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        log,
        memory_limit,
        cgroup: format!(
            "{}_{}",
            pod.metadata.uid.clone().unwrap_or_default(),
            c.name
        ),
        on_created: None,
        user,
        no_new_privs: c
            .security_context
            .as_ref()
            .and_then(|s| s.allow_privilege_escalation)
            == Some(false),
        capabilities,
    })
}

/// Who a container runs as: its securityContext over the pod's (runAsUser, runAsGroup), with
/// the pod's supplementalGroups and fsGroup as supplementary groups. `runAsNonRoot` with no
/// non-root user is refused as the kubelet refuses it (the local runtime's "image" runs as root).
fn identity(pod: &Pod, c: &Container) -> Result<Option<spawn::Identity>, Refused> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user));
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group));
    let non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| psc.and_then(|s| s.run_as_non_root))
        == Some(true);
    if non_root && uid.unwrap_or(0) == 0 {
        return Err(Refused::Config(
            "container has runAsNonRoot and image will run as root".into(),
        ));
    }
    let mut groups: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    if let Some(g) = psc
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok())
    {
        groups.push(g);
    }
    if uid.is_none() && gid.is_none() && groups.is_empty() {
        return Ok(None);
    }
    let uid = uid.and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    let gid = gid.and_then(|g| u32::try_from(g).ok()).unwrap_or(0);
    Ok(Some(spawn::Identity { uid, gid, groups }))
}
