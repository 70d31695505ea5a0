//! A Kubernetes client from a kubeconfig (`--kubeconfig`, `--context`, `KUBECONFIG`,
//! `~/.kube/config`) or from the in-cluster service account.

use std::path::Path;

use kube::Client;

/// Why the cluster could not be reached or read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubeconfig {path}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster configuration found (set KUBECONFIG, pass --kubeconfig, or run in a pod)")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cluster configuration")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("cannot create a Kubernetes client")]
    Client(#[from] kube::Error),
}

/// A client from `--kubeconfig`/`--context`, else `KUBECONFIG`/`~/.kube/config`, else the
/// in-cluster service account.
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client, ClientError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                ClientError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
        (None, None) => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}
