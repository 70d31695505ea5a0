//! `crashscope rollout history|undo --kubeconfig …` against an API server in kube's
//! mock-service style (no API server can run here; the objects are shaped as a v1.34 cluster
//! returns them): undo reads the Deployment and its ReplicaSets and sends the JSON patch
//! `kubectl rollout undo` sends; a 403 says which opt-in role to grant.

mod common;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::Seen;
use serde_json::{json, Value};

fn deployment(ns: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "uid": "d-1", "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "2",
                            "kubernetes.io/change-cause": "image web:2"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                   "availableReplicas": 2}})
}

fn replica_set(rev: u64, image: &str, owner: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("web-h{rev}"), "namespace": "shop",
            "labels": {"app": "web", "pod-template-hash": format!("h{rev}")},
            "annotations": {"deployment.kubernetes.io/revision": rev.to_string(),
                            "kubernetes.io/change-cause": format!("image {image}")},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": owner, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web", "pod-template-hash": format!("h{rev}")}},
            "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{rev}")}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}})
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// Records "METHOD path?query content-type body" and answers as the API server would.
async fn api(State(seen): State<Seen>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ctype = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    seen.lock().unwrap().push(format!(
        "{method} {path}?{query} {ctype} {}",
        String::from_utf8_lossy(&body)
    ));
    match (method.as_str(), path.as_str()) {
        ("GET", "/apis/apps/v1/namespaces/shop/deployments/web") => {
            axum::Json(deployment("shop")).into_response()
        }
        ("GET", "/apis/apps/v1/namespaces/locked/deployments/web") => {
            axum::Json(deployment("locked")).into_response()
        }
        ("GET", p) if p.ends_with("/replicasets") => axum::Json(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
            "items": [replica_set(2, "web:2", "d-1"), replica_set(1, "web:1", "d-1"),
                      replica_set(9, "other:1", "someone-else")]}))
        .into_response(),
        ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web") => {
            axum::Json(deployment("shop")).into_response()
        }
        ("PATCH", "/apis/apps/v1/namespaces/locked/deployments/web") => status(
            403,
            "Forbidden",
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:crashscope:crashscope\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"locked\"",
        ),
        _ => status(404, "NotFound", "the server could not find the requested resource"),
    }
}

fn crashscope(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::crashscope_at("2026-12-07T12:00:00Z", args, dir)
}

#[test]
fn undo_sends_the_patch_kubectl_sends_and_a_403_names_the_role() {
    let server = common::replay(api);
    let dir = tempfile::tempdir().unwrap();
    let kc = common::kubeconfig(dir.path(), server.addr);
    let kc = kc.to_str().unwrap();

    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "history",
            "deployment/web",
            "-n",
            "shop",
            "--kubeconfig",
            kc,
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert_eq!(
        common::text(&o.stdout),
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         image web:1\n2         image web:2\n\n"
    );
    // The ReplicaSets were asked for by the Deployment's selector.
    assert!(
        server.seen.lock().unwrap().iter().any(|r| r
            .starts_with("GET /apis/apps/v1/namespaces/shop/replicasets?")
            && r.replace("%3D", "=").contains("labelSelector=app=web")),
        "{:?}",
        server.seen.lock().unwrap()
    );

    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "undo",
            "deployment/web",
            "-n",
            "shop",
            "--kubeconfig",
            kc,
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert_eq!(common::text(&o.stdout), "deployment.apps/web rolled back\n");
    let patch = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.starts_with("PATCH /apis/apps/v1/namespaces/shop/deployments/web"))
        .cloned()
        .expect("a PATCH of the deployment");
    let (head, body) = patch
        .split_once(" application/json-patch+json ")
        .expect(&patch);
    assert!(head.starts_with("PATCH"), "{patch}");
    let body: Value = serde_json::from_str(body).unwrap();
    // kubectl rollout undo's patch: the revision's template without the hash label, and the
    // annotations — the Deployment's revision kept, the revision's change cause back.
    assert_eq!(
        body,
        json!([
            {"op": "replace", "path": "/spec/template", "value": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
            {"op": "replace", "path": "/metadata/annotations", "value": {
                "deployment.kubernetes.io/revision": "2",
                "kubernetes.io/change-cause": "image web:1"}},
        ])
    );

    // Already at the revision asked for: nothing is sent.
    let before = server.seen.lock().unwrap().len();
    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "undo",
            "deploy/web",
            "-n",
            "shop",
            "--to-revision",
            "2",
            "--kubeconfig",
            kc,
        ],
    );
    assert_eq!(
        common::text(&o.stdout),
        "deployment.apps/web skipped rollback (current template already matches revision 2)\n"
    );
    assert!(!server.seen.lock().unwrap()[before..]
        .iter()
        .any(|r| r.starts_with("PATCH")));

    // Without the opt-in role: the API's refusal and the role to grant.
    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "undo",
            "deployment/web",
            "-n",
            "locked",
            "--kubeconfig",
            kc,
        ],
    );
    assert!(!o.status.success());
    let err = common::text(&o.stderr);
    assert!(
        err.contains("cannot patch resource \"deployments\"")
            && err.contains("deploy/rollback-rbac.yaml")
            && err.contains("crashscope-rollback"),
        "{err}"
    );
    // kubectl's words for a revision that is not there.
    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "undo",
            "deployment/web",
            "-n",
            "shop",
            "--to-revision",
            "7",
            "--kubeconfig",
            kc,
        ],
    );
    assert!(!o.status.success());
    assert!(common::text(&o.stderr).contains("unable to find specified revision 7 in history"));
    // Status as kubectl words it, from the Deployment's status.
    let o = crashscope(
        dir.path(),
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "shop",
            "--watch=false",
            "--kubeconfig",
            kc,
        ],
    );
    assert_eq!(
        common::text(&o.stdout),
        "Waiting for deployment \"web\" rollout to finish: 1 out of 2 new replicas have been updated...\n"
    );
}
