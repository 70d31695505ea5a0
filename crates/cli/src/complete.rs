//! Shell completion: the scripts `crashscope completion SHELL` prints, which ask the binary
//! itself what to offer as the user types (clap_complete's dynamic engine), and the pod
//! names offered where a command takes a pod — from the local runtime's store, or from the
//! cluster when the line names one (`--cluster`, `--context`, `--kubeconfig`), in the
//! namespace `-n` gives.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;
use k8s_openapi::api::core::v1::Pod;

/// The environment variable that turns a run of the binary into a completion request.
const VAR: &str = "COMPLETE";

/// Answers a completion request (the shell sets `COMPLETE`) and exits; returns at once on
/// an ordinary run. Runs before anything is printed.
pub fn answer_if_asked() {
    use clap::CommandFactory;
    clap_complete::CompleteEnv::with_factory(crate::args::Cli::command)
        .var(VAR)
        .complete();
}

/// The registration script of `shell`: sourced once, it calls `crashscope` on each Tab.
pub fn script(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
    use clap_complete::Shell as S;
    let completer: &dyn EnvCompleter = match shell {
        S::Bash => &Bash,
        S::Zsh => &Zsh,
        S::Fish => &Fish,
        S::Elvish => &Elvish,
        S::PowerShell => &Powershell,
        other => {
            return Err(std::io::Error::other(format!(
                "no completion for the {other} shell"
            )))
        }
    };
    // The binary the script calls: by name when it was found on PATH, else where it is.
    let invoked = std::env::args_os()
        .next()
        .unwrap_or_else(|| "crashscope".into());
    let bin = if std::path::Path::new(&invoked).components().count() > 1 {
        std::env::current_exe()
            .map(OsString::from)
            .unwrap_or(invoked)
    } else {
        invoked
    };
    let bin = bin.to_string_lossy();
    completer.write_registration(VAR, "crashscope", &bin, &bin, out)
}

/// What the command line being completed says about where pods are.
#[derive(Debug, Default, PartialEq, Eq)]
struct Line {
    data_dir: Option<OsString>,
    namespace: Option<String>,
    all_namespaces: bool,
    cluster: bool,
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
}

impl Line {
    /// Reads the words of the line (after the `--` the shell scripts put before them).
    fn read(words: impl IntoIterator<Item = OsString>) -> Line {
        let mut line = Line::default();
        let mut words = words.into_iter().skip_while(|w| w != "--").skip(1);
        while let Some(w) = words.next() {
            let w = w.to_string_lossy().into_owned();
            let (flag, inline) = match w.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (w.clone(), None),
            };
            let mut value = |inline: Option<String>| {
                inline.or_else(|| words.next().map(|v| v.to_string_lossy().into_owned()))
            };
            match flag.as_str() {
                "--data-dir" => line.data_dir = value(inline).map(OsString::from),
                "-n" | "--namespace" => line.namespace = value(inline),
                "-A" | "--all-namespaces" => line.all_namespaces = true,
                "--cluster" => line.cluster = true,
                "--kubeconfig" => line.kubeconfig = value(inline).map(Into::into),
                "--context" => line.context = value(inline),
                _ => {}
            }
        }
        line
    }

    fn in_namespace(&self, ns: &str) -> bool {
        self.all_namespaces || ns == self.namespace.as_deref().unwrap_or("default")
    }
}

/// The pods whose names start with what is typed, each with its status as help (shells
/// that show help, zsh and fish, show it beside the name).
pub fn pod_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let line = Line::read(std::env::args_os());
    let typed = current.to_string_lossy();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    // A Tab must not hang: an unreachable cluster offers nothing.
    let pods = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(3), pods(&line))
                .await
                .ok()
                .flatten()
        })
        .unwrap_or_default();
    let now = jiff::Timestamp::now();
    let mut out: Vec<CompletionCandidate> = pods
        .iter()
        .filter(|p| line.in_namespace(p.metadata.namespace.as_deref().unwrap_or("default")))
        .filter_map(|p| {
            let name = p.metadata.name.as_deref()?;
            if !name.starts_with(typed.as_ref()) {
                return None;
            }
            let row = crashscope_kubectl::get::pod_row(p, now);
            let help = format!("{}, {} restarts", row.status, row.restarts);
            Some(CompletionCandidate::new(name).help(Some(help.into())))
        })
        .collect();
    out.sort_by(|a, b| a.get_value().cmp(b.get_value()));
    out.dedup_by(|a, b| a.get_value() == b.get_value());
    out
}

async fn pods(line: &Line) -> Option<Vec<Pod>> {
    if line.cluster || line.kubeconfig.is_some() || line.context.is_some() {
        let client =
            crashscope_kube::client::client(line.kubeconfig.as_deref(), line.context.as_deref())
                .await
                .ok()?;
        let api: kube::Api<Pod> = match (&line.namespace, line.all_namespaces) {
            (_, true) => kube::Api::all(client),
            (Some(ns), false) => kube::Api::namespaced(client, ns),
            (None, false) => kube::Api::default_namespaced(client),
        };
        return api
            .list(&kube::api::ListParams::default())
            .await
            .ok()
            .map(|l| l.items);
    }
    let dir = match &line.data_dir {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::var_os("CRASHSCOPE_DATA_DIR")
            .map(Into::into)
            .or_else(|| dirs::data_dir().map(|d| d.join("crashscope")))?,
    };
    let db = dir.join("crashscope.db");
    // Completing must not create a store where there is none.
    if !db.exists() {
        return None;
    }
    let store = crashscope_store::SqlStore::open(&db).await.ok()?;
    use crashscope_store::Store;
    let objects = store.objects("Pod").await.ok()?;
    Some(
        objects
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_line_says_where_the_pods_are() {
        let l = Line::read(words(
            "/bin/crashscope -- crashscope logs --data-dir /d -n shop web",
        ));
        assert_eq!(l.data_dir.as_deref(), Some(OsStr::new("/d")));
        assert_eq!(l.namespace.as_deref(), Some("shop"));
        assert!(!l.cluster);
        assert!(l.in_namespace("shop") && !l.in_namespace("default"));
        let l = Line::read(words(
            "crashscope -- kubectl-crashscope describe pod --context=kind-a -A x",
        ));
        assert_eq!(l.context.as_deref(), Some("kind-a"));
        assert!(l.all_namespaces && l.in_namespace("anything"));
        // Words before the `--` are the completer's own, not the line's.
        assert_eq!(Line::read(words("crashscope -n x")), Line::default());
    }
}
