//! Materializing a pod's volumes on the host: ConfigMap and Secret keys as files, emptyDir as
//! a directory, hostPath as given. A missing ConfigMap or Secret is the kubelet's FailedMount.

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
        } else if let Some(hp) = &v.host_path {
            out.insert(v.name.clone(), PathBuf::from(&hp.path));
            continue;
        } else {
            // emptyDir, and any type the runtime does not know, is an empty directory.
            std::fs::create_dir_all(&dir).map_err(io)?;
        }
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
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
