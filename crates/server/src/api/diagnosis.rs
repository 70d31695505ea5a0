//! `GET /api/v1/pods/{namespace}/{name}/diagnosis`: why the pod's containers crashed.

use axum::extract::{Path, State};
use axum::Json;
use crashscope_diagnose::Diagnosis;

use super::views::Items;
use super::AppState;
use crate::error::ApiError;

/// The diagnoses of the pod's crashed containers (empty when none crashed).
pub async fn pod(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Items<Diagnosis>>, ApiError> {
    match crate::diagnosis::diagnose_pod(&app.store, &app.data_dir, &namespace, &name).await? {
        Some(items) => Ok(Json(Items { items })),
        None => Err(ApiError::not_found(format!(
            "no pod object {namespace}/{name}: the server keeps the objects of its local runtime's pods; diagnose a cluster's pods with `crashscope diagnose --cluster`"
        ))),
    }
}
