//! Materializing a pod's volumes on the host: ConfigMap and Secret keys as files, emptyDir as
//! a directory (`medium: Memory` as a tmpfs of `sizeLimit`, so a full one says ENOSPC as it
//! does on a node), hostPath as given. A missing ConfigMap or Secret is the kubelet's
//! FailedMount.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a volume could not be set up (the kubelet retries these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFailure {
    pub volume: String,
    /// The kubelet's event message.
    pub message: String,
}

/// Looks up ConfigMaps and Secrets of the pod's namespace.
pub trait Sources {
    fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap>;
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret>;
}

/// A projected file's mode when neither `items[].mode` nor `defaultMode` says: the API's 0644.
const DEFAULT_MODE: u32 = 0o644;

fn write_files(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (k, (v, mode)) in files {
        // Keys are file names; refuse anything that would escape the volume.
        if k.contains('/') || k == ".." || k == "." {
            continue;
        }
        let path = dir.join(k);
        std::fs::write(&path, v)?;
        // As the kubelet projects them: a script without the x bit cannot be executed.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(())
}

/// A volume's file mode as written (`defaultMode`), or the default.
fn mode_of(default_mode: Option<i32>) -> u32 {
    default_mode
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(DEFAULT_MODE)
}

/// Creates every volume of `pod` under `root` and returns volume name → host path.
pub fn prepare(
    pod: &Pod,
    root: &Path,
    sources: &dyn Sources,
) -> Result<BTreeMap<String, PathBuf>, MountFailure> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok());
    let mut out = BTreeMap::new();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    for v in volumes {
        let dir = root.join(&v.name);
        let io = |e: std::io::Error| MountFailure {
            volume: v.name.clone(),
            message: format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name),
        };
        if let Some(cm) = &v.config_map {
            let Some(obj) = sources.config_map(ns, &cm.name) else {
                if cm.optional == Some(true) {
                    std::fs::create_dir_all(&dir).map_err(io)?;
                    out.insert(v.name.clone(), dir);
                    continue;
                }
                return Err(MountFailure {
                    volume: v.name.clone(),
                    message: format!(
                        "MountVolume.SetUp failed for volume {:?} : configmap {:?} not found",
                        v.name, cm.name
                    ),
                });
            };
            let mut files: BTreeMap<String, Vec<u8>> = obj
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            files.extend(
                obj.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            let mode = mode_of(cm.default_mode);
            write_files(&dir, &select(files, cm.items.as_deref(), mode)).map_err(io)?;
        } else if let Some(sec) = &v.secret {
            let name = sec.secret_name.clone().unwrap_or_default();
            let Some(obj) = sources.secret(ns, &name) else {
                return Err(MountFailure {
                    volume: v.name.clone(),
                    message: format!(
                        "MountVolume.SetUp failed for volume {:?} : secret {:?} not found",
                        v.name, name
                    ),
                });
            };
            let mut files: BTreeMap<String, Vec<u8>> = obj
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            files.extend(
                obj.string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes())),
            );
            let mode = mode_of(sec.default_mode);
            write_files(&dir, &select(files, sec.items.as_deref(), mode)).map_err(io)?;
        } else if let Some(ed) = v
            .empty_dir
            .as_ref()
            .filter(|e| e.medium.as_deref() == Some("Memory"))
        {
            let size =
                match &ed.size_limit {
                    Some(q) => Some(crashscope_model::quantity::bytes(&q.0).ok_or_else(|| {
                        MountFailure {
                            volume: v.name.clone(),
                            message: format!(
                                "MountVolume.SetUp failed for volume {:?} : invalid sizeLimit {:?}",
                                v.name, q.0
                            ),
                        }
                    })?),
                    None => None,
                };
            std::fs::create_dir_all(&dir).map_err(io)?;
            mount_tmpfs(&dir, size).map_err(io)?;
        } else if let Some(hp) = &v.host_path {
            out.insert(v.name.clone(), PathBuf::from(&hp.path));
            continue;
        } else {
            // emptyDir, and any type the runtime does not know, is an empty directory.
            std::fs::create_dir_all(&dir).map_err(io)?;
        }
        if let Some(gid) = fs_group {
            // ConfigMap and Secret volumes are read-only to the container; the rest writable.
            let read_only = v.config_map.is_some() || v.secret.is_some();
            own(&dir, gid, read_only).map_err(io)?;
        }
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// Gives a volume to the pod's fsGroup as the kubelet does: every file and directory
/// group-owned by it, group-readable (and writable unless the volume is read-only),
/// directories group-searchable and setgid so that new files join the group.
fn own(dir: &Path, gid: u32, read_only: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    std::os::unix::fs::lchown(dir, None, Some(gid))?;
    let mut mask = if read_only { 0o440 } else { 0o660 };
    if meta.is_dir() {
        mask |= 0o110 | 0o2000;
    }
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode((meta.mode() & 0o7777) | mask),
    )?;
    if meta.is_dir() {
        for e in std::fs::read_dir(dir)? {
            own(&e?.path(), gid, read_only)?;
        }
    }
    Ok(())
}

/// Whether `dir` is a mount point (another device than its parent's).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(dir);
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

/// Mounts a tmpfs of `size` bytes (the kernel's default, half the memory, when None) on
/// `dir`, world-writable as the kubelet makes emptyDirs; a second call finds it mounted.
fn mount_tmpfs(dir: &Path, size: Option<u64>) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if is_mount_point(dir) {
        return Ok(());
    }
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let opts = match size {
        Some(n) => format!("mode=1777,size={n}"),
        None => "mode=1777".to_string(),
    };
    let opts = std::ffi::CString::new(opts)?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts the memory-backed volumes under `root` (the pod is done with them); their
/// contents go, as a node's do when the pod leaves.
pub fn release(root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        if !is_mount_point(&dir) {
            continue;
        }
        let Ok(target) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
            tracing::warn!(
                "cannot unmount {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Applies a volume's `items` (key → path, with its own mode) selection; every file gets
/// `mode` unless its item names one.
fn select(
    files: BTreeMap<String, Vec<u8>>,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    mode: u32,
) -> BTreeMap<String, (Vec<u8>, u32)> {
    match items {
        None | Some([]) => files.into_iter().map(|(k, v)| (k, (v, mode))).collect(),
        Some(items) => items
            .iter()
            .filter_map(|i| {
                let m = i.mode.and_then(|m| u32::try_from(m).ok()).unwrap_or(mode);
                files.get(&i.key).map(|v| (i.path.clone(), (v.clone(), m)))
            })
            .collect(),
    }
}
