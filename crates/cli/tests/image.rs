//! The container image (`make image` → scripts/image.sh): built from this test's binary with
//! buildah, no registry; its OCI config (non-root user, entrypoint, version label) read from
//! the archive; and run with podman — `crashscope --version`, `inspect` of a fixture capture
//! mounted into it, a command that writes the store. Needs root, buildah, podman and runc
//! (crun cannot set up containers on this machine's hybrid cgroups); on CI their absence
//! fails the test, elsewhere it is skipped with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn ready() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["buildah", "podman", "runc"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the image test needs root, buildah, podman and runc, and CI must provide them"
    );
    eprintln!("skipping the image test: needs root, buildah, podman and runc");
    false
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The blob a descriptor points at, in an unpacked OCI layout.
fn blob(layout: &Path, descriptor: &serde_json::Value) -> PathBuf {
    let digest = descriptor["digest"].as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn the_image_runs_crashscope_as_a_non_root_user() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("crashscope.oci.tar");
    let version = env!("CARGO_PKG_VERSION");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/image.sh");
    let out = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_crashscope"))
        .arg(version)
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));

    // The archive: one image, tagged with the version, its config as the manifests expect.
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(untar.success());
    let index = json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        format!("ghcr.io/crashscope/crashscope:{version}")
    );
    let manifest = json(&blob(&layout, &manifests[0]));
    let config = json(&blob(&layout, &manifest["config"]));
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{config}");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/crashscope"])
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], version);

    // Run it. Storage of our own; runc and limits this machine allows (see the module doc).
    let store = dir.path().join("podman");
    let run = |extra: &[&str], args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "run",
                "--rm",
                "--network",
                "none",
            ])
            .args(["--runtime", "runc", "--ulimit", "nofile=1024:1024"])
            .args(["--ulimit", "nproc=1024:1024"])
            .args(extra)
            .arg(format!("oci-archive:{}", archive.display()))
            .args(args)
            .output()
            .unwrap();
        let stdout = common::text(&out.stdout);
        assert!(
            out.status.success(),
            "podman run {args:?}: {stdout}\n{}",
            common::text(&out.stderr)
        );
        stdout
    };
    assert_eq!(
        run(&[], &["--version"]).trim(),
        format!("crashscope {version}")
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/scap/curl_google.scap")
        .canonicalize()
        .unwrap();
    let mount = format!("{}:/data/capture.scap:ro", fixture.display());
    let summary = run(&["-v", &mount], &["inspect", "/data/capture.scap"]);
    let local = common::crashscope_at(
        "2026-12-07T10:00:00Z",
        &["inspect", fixture.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        summary,
        common::text(&local.stdout),
        "the image reads captures as the binary does"
    );
    // The non-root user can write its data directory (the store is created there).
    assert!(run(&[], &["get", "pods"]).is_empty());
}
