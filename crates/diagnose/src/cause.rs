//! The causes the engine can name: the stable ids of `research/crash-causes.md`, a title, and
//! the usual remedies. Rules add specifics (the path, the port, the command) to a remedy.

/// A cause of a crash loop (or of a look-alike that users call one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    pub id: &'static str,
    pub title: &'static str,
    /// Broad causes ("the program threw") lose ties against specific ones.
    pub generic: bool,
    pub remedies: &'static [&'static str],
}

/// The id the engine gives when nothing decides.
pub const UNKNOWN: &str = "unknown";

const fn c(id: &'static str, title: &'static str, remedies: &'static [&'static str]) -> Cause {
    Cause {
        id,
        title,
        generic: false,
        remedies,
    }
}

const fn g(id: &'static str, title: &'static str, remedies: &'static [&'static str]) -> Cause {
    Cause {
        id,
        title,
        generic: true,
        remedies,
    }
}

/// Every cause, family by family (A start, B config, C permissions, D network, E resources,
/// F probes and lifecycle, G application, H look-alikes).
pub const CAUSES: &[Cause] = &[
    c("exec-not-found", "the command does not exist in the image", &[
        "correct the command/args (or the image); for distroless images use the exec form with the binary's full path",
    ]),
    c("exec-permission-denied", "the command is not executable", &[
        "give the file the x bit: `defaultMode: 0755` on a ConfigMap/Secret volume, or chmod it in the image",
        "or run it through its interpreter (`sh /path/script.sh`)",
    ]),
    c("exec-format-error", "the binary is for another CPU architecture or not a program", &[
        "build the image for this node's architecture (multi-arch build), or pin the pod to matching nodes with a nodeSelector on kubernetes.io/arch",
    ]),
    c("exec-interpreter-missing", "the program's interpreter does not exist (shebang, CRLF, libc)", &[
        "fix the shebang (LF line endings, an interpreter the image has) or use a base image with the right libc",
    ]),
    c("shared-library-missing", "a shared library the program needs is missing", &[
        "install the library in the image, or fix the base image",
    ]),
    c("bad-arguments", "the program rejected its command-line arguments", &[
        "fix `args`/`command` to match the program's version, or pin the image version they were written for",
    ]),
    c("wrong-program-or-image", "the image or command runs a different program than intended", &[
        "pin the image by digest; roll back; fix the command",
    ]),
    c("config-file-missing", "a file the program needs does not exist", &[
        "provide the file (in the image or as a ConfigMap/Secret key), or fix the path or the variable that names it",
    ]),
    c("config-file-unreadable", "a file the program needs exists but is not readable by its user", &[
        "make it readable: `fsGroup`, `defaultMode`, `runAsUser`/`runAsGroup`, or chown in the image",
    ]),
    c("config-mount-mismatch", "a volume mount does not hold the file the program looks for", &[
        "mount the key where the program looks (`items` key→path, or a `subPath` mount so the image's directory is not hidden), or fix the key name",
    ]),
    c("config-invalid", "the program's configuration was read but is invalid", &[
        "fix the configuration (the log names the line); validate it in CI before rollout",
    ]),
    c("env-var-missing-or-invalid", "an environment variable the program needs is missing or invalid", &[
        "set the variable (env/envFrom) or create the ConfigMap/Secret key it comes from; an `optional: true` reference drops it silently",
    ]),
    c("tls-material-invalid", "the program's own certificate or key is missing, unreadable or invalid", &[
        "fix the Secret (or the cert-manager Certificate); mount keys with `defaultMode: 0600`",
    ]),
    c("fs-permission-denied", "the program may not write where it needs to", &[
        "set `fsGroup`/`runAsUser`, chown the volume in an init container, or use an image whose USER owns its writable paths",
    ]),
    c("read-only-rootfs", "the program writes to a read-only root filesystem", &[
        "mount emptyDir volumes at the paths it writes (/tmp, /var/cache/…, /var/run), or drop `readOnlyRootFilesystem`",
    ]),
    c("privileged-port-bind", "a non-root program binds a port below 1024", &[
        "listen on a port ≥ 1024 and map it in the Service (targetPort), or add the NET_BIND_SERVICE capability",
    ]),
    c("privilege-drop-denied", "the program may not change its user or ownership", &[
        "run as the target user directly (`runAsUser`), or add the specific capability (SETUID, SETGID, CHOWN)",
    ]),
    c("seccomp-or-lsm-denied", "a system call was refused by seccomp or an LSM", &[
        "update the container runtime and its seccomp profile, use a Localhost profile that allows the call, or change the base image",
    ]),
    c("port-in-use", "the port the program binds is already taken", &[
        "change one of the ports (app or sidecar), remove the duplicate listener, or avoid hostNetwork",
    ]),
    c("dns-nxdomain", "a name the program needs does not exist in DNS", &[
        "create the Service (or fix the name/namespace; use the FQDN) before the workload that needs it",
        "or make the program resolve at request time and retry (nginx: `resolver` plus a variable in `proxy_pass`)",
        "or add an init container that waits until the name resolves",
    ]),
    c("dns-unavailable", "DNS did not answer", &[
        "allow DNS egress (UDP and TCP 53) in NetworkPolicies; check CoreDNS and the pod's dnsConfig",
    ]),
    c("dependency-refused", "a dependency refused the connection", &[
        "bring the dependency up (or fix its port/targetPort); retry with back-off instead of exiting; order start-up with an init container that waits",
    ]),
    c("dependency-timeout", "a connection to a dependency timed out", &[
        "allow the traffic (NetworkPolicy, firewall), fix the address, or relieve the dependency",
    ]),
    c("dependency-auth-failed", "a dependency rejected the program's credentials", &[
        "fix the credentials in the Secret or the user on the dependency; restart consumers after rotation",
    ]),
    c("tls-handshake-failed", "a TLS handshake with a dependency failed", &[
        "renew or trust the peer's certificate (install ca-certificates in the image), or fix the clock",
    ]),
    c("sidecar-not-ready", "the program started before the sidecar it talks to", &[
        "make the sidecar native (an init container with `restartPolicy: Always`), hold the app until the proxy is ready, or retry",
    ]),
    c("oom-limit", "killed by the OOM killer at the container's memory limit", &[
        "raise `resources.limits.memory`, or fix the leak; cap runtime heaps below the limit (-XX:MaxRAMPercentage, GOMEMLIMIT, --max-old-space-size)",
    ]),
    c("oom-node", "killed because the node ran out of memory", &[
        "give the pod requests = limits (Guaranteed QoS), size the node, reserve memory for the system",
    ]),
    c("runtime-heap-exhausted", "the language runtime ran out of heap", &[
        "align the runtime's heap flags with the container limit, or fix the leak",
    ]),
    c("disk-full", "a write failed: no space left on the device", &[
        "expand or clean the volume; for /dev/shm mount an emptyDir with `medium: Memory`; set `sizeLimit`",
    ]),
    c("ephemeral-storage-eviction", "evicted for using too much ephemeral storage", &[
        "set ephemeral-storage requests and limits, rotate logs, or write to a PVC",
    ]),
    c("pids-or-fds-exhausted", "the program ran out of processes/threads or file descriptors", &[
        "raise the pids or open-files limit, or fix the leak",
    ]),
    c("liveness-probe-misconfigured", "the liveness probe checks the wrong port, path or command", &[
        "point the probe at what the program serves (port, path, scheme); use a named port",
    ]),
    c("liveness-kills-slow-start", "the liveness probe kills the program before it is up", &[
        "add a startupProbe, or raise initialDelaySeconds/failureThreshold; make start-up faster",
    ]),
    c("liveness-checks-dependency", "the liveness endpoint fails because a dependency does", &[
        "keep liveness process-local; check dependencies in the readiness probe",
    ]),
    c("probe-timeout-under-load", "the probe times out", &[
        "raise `timeoutSeconds`, give the container CPU (requests/limits), make the probe handler cheap",
    ]),
    c("startup-probe-failed", "the startup probe never succeeded", &[
        "raise failureThreshold × periodSeconds of the startupProbe, or fix its target",
    ]),
    c("poststart-hook-failed", "the postStart hook failed", &[
        "fix the hook command and make it idempotent",
    ]),
    c("exit-zero-under-always", "the program finished normally but the pod restarts it forever", &[
        "run one-shot work as a Job or CronJob; keep a server in the foreground (`exec`, nginx `daemon off;`)",
    ]),
    g("unhandled-exception", "the program failed on its own (an unhandled error in its code or data)", &[
        "fix the code or the data it trips on, using the stack trace; roll back if a change preceded the first crash",
    ]),
    g("go-panic", "the Go program panicked", &[
        "fix the code using the goroutine trace; roll back the image if a change preceded the first crash",
    ]),
    c("native-crash", "the program crashed on a fatal signal (segfault, bus error, illegal instruction)", &[
        "fix or upgrade the native code or library; check the node's CPU type for SIGILL; give /dev/shm more room for SIGBUS",
    ]),
    c("abort", "the program aborted itself (SIGABRT)", &[
        "fix what made it abort (an assertion, heap corruption, an uncaught C++ exception); a failing call just before the abort is often the real cause",
    ]),
    c("startup-migration-failed", "a database migration at start-up failed", &[
        "fix the migration or release its lock; run migrations as a Job or init container",
    ]),
    c("state-or-datadir-invalid", "the persistent state does not fit the program", &[
        "use a subdirectory (PGDATA/subPath) of the volume, upgrade the data, or remove stale lock files",
    ]),
    c("init-container-failed", "an init container failed", &[
        "fix the init container's own cause (see its previous log)",
    ]),
    c("peer-or-quorum-wait-exhausted", "a clustered store could not reach its peers", &[
        "`publishNotReadyAddresses` on the headless Service, `podManagementPolicy: Parallel`, consistent cluster ids",
    ]),
    c("restart-not-caused-by-app", "restarted by the node (sandbox recreated), not by the program", &[
        "nothing to fix in the program; look at the node (reboot, runtime or CNI restart)",
    ]),
    c("create-container-config-error", "the kubelet could not create the container's configuration", &[
        "create the missing ConfigMap/Secret or key (or mark the reference `optional: true`); fix runAsNonRoot against the image's user",
    ]),
    c("image-pull", "the image cannot be pulled", &[
        "fix the image name/tag, the registry credentials (imagePullSecrets) or registry access",
    ]),
    c("mount-failed", "a volume could not be mounted", &[
        "create the missing volume source (PVC, ConfigMap, Secret) or fix the attachment",
    ]),
    c("unschedulable", "no node can run the pod", &[
        "lower the requests, fix selectors/affinity/taints, or add capacity",
    ]),
    c("evicted", "the pod was evicted by its node", &[
        "set requests that match usage; fix the node's pressure",
    ]),
    c(UNKNOWN, "no evidence decides the cause", &[]),
];

/// The cause with this id.
pub fn cause(id: &str) -> Option<&'static Cause> {
    CAUSES.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for c in CAUSES {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{}",
                c.id
            );
            assert!(
                c.id == UNKNOWN || !c.remedies.is_empty(),
                "{} has no remedy",
                c.id
            );
        }
        assert!(cause("dns-nxdomain").is_some());
        assert!(cause("nope").is_none());
    }
}
