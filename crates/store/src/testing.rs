//! Stores for tests: each backend the machine offers, each a fresh empty database.
//!
//! PostgreSQL comes from `CRASHSCOPE_TEST_POSTGRES`, a URL of a role allowed to create
//! databases (`make test` starts Debian's PostgreSQL and sets it). Without it the PostgreSQL
//! half of a test is skipped with a printed reason — except under CI, where it fails.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{SqlStore, StoreError};

/// Environment variable naming the PostgreSQL server tests use.
pub const POSTGRES_ENV: &str = "CRASHSCOPE_TEST_POSTGRES";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh in-memory SQLite store and, when available, a fresh PostgreSQL database; each
/// with its backend's name for assertion messages.
pub async fn stores() -> Vec<(&'static str, SqlStore)> {
    let mut out = vec![(
        "sqlite",
        SqlStore::in_memory().await.expect("in-memory SQLite store"),
    )];
    if let Some(pg) = postgres().await {
        out.push(("postgres", pg));
    }
    out
}

/// The URL of a fresh, empty PostgreSQL database, or None (with the reason printed) when
/// no server is configured outside CI.
pub async fn postgres_url() -> Option<String> {
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{POSTGRES_ENV} is not set under CI: PostgreSQL tests cannot run");
            }
            eprintln!("skipping the PostgreSQL half: {POSTGRES_ENV} is not set");
            return None;
        }
    };
    let name = format!(
        "crashscope_t{}_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond() % 1_000_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let store = SqlStore::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&store.pool)
        .await
        .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(format!("{base}/{name}"))
}

/// A fresh PostgreSQL store, or None as [`postgres_url`] says.
pub async fn postgres() -> Option<SqlStore> {
    let url = postgres_url().await?;
    Some(
        SqlStore::connect(&url)
            .await
            .unwrap_or_else(|e: StoreError| panic!("{url}: {e}")),
    )
}
