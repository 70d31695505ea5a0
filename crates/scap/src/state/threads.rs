//! One thread as the replay knows it: identity, program, cgroups and the container they name.

use crate::cgroup::container_id;

/// One thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Thread {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub vpid: i64,
    /// Set through [`State`], which forgets the cached container id when they change.
    pub cgroups: Vec<String>,
    /// The container id of `cgroups`, found on first use: views ask for every event, and
    /// searching the cgroup paths each time was half the time of `inspect summary`.
    #[serde(skip)]
    pub(super) container: std::sync::OnceLock<String>,
}

impl Thread {
    /// The container the thread runs in (from its cgroups), empty on the host. Computed on
    /// demand: most events never need it.
    pub fn container_id(&self) -> &str {
        self.container.get_or_init(|| container_id(&self.cgroups))
    }
}
