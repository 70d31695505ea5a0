//! Bearer tokens: who may call the API. Tokens come from a file (one per line, optionally
//! followed by `read` for a read-only token; `#` starts a comment) and from the
//! `CRASHSCOPE_TOKEN` environment variable; with neither, one is generated and kept (0600) in
//! the data directory. Health endpoints need no token.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::error::ApiError;

/// Environment variable holding a token.
pub const TOKEN_ENV: &str = "CRASHSCOPE_TOKEN";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The accepted tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<(String, Access)>,
}

/// Why the tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path} holds no token")]
    Empty { path: String },
    #[error("cannot write the generated token to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Tokens {
    /// Parses a token file's text.
    pub fn parse(path: &str, text: &str) -> Result<Tokens, TokenError> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let token = words.next().unwrap_or("");
            let access = match words.next() {
                None | Some("write") => Access::Write,
                Some("read") => Access::Read,
                Some(other) => {
                    return Err(TokenError::Bad {
                        path: path.into(),
                        line: i + 1,
                        message: format!("unknown access {other:?} (expected read or write)"),
                    })
                }
            };
            if token.len() < 16 {
                return Err(TokenError::Bad {
                    path: path.into(),
                    line: i + 1,
                    message: "a token must be at least 16 characters".into(),
                });
            }
            tokens.push((token.to_string(), access));
        }
        if tokens.is_empty() {
            return Err(TokenError::Empty { path: path.into() });
        }
        Ok(Tokens { tokens })
    }

    /// Tokens from `file`, plus `CRASHSCOPE_TOKEN`; with neither, the token kept in
    /// `data_dir/token`, generated on first use. Returns the tokens and, when a token was
    /// generated or reused from the data directory, where it is.
    pub fn load(
        file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Tokens, Option<PathBuf>), TokenError> {
        let mut tokens = match file {
            Some(f) => {
                let shown = f.display().to_string();
                let text = std::fs::read_to_string(f).map_err(|source| TokenError::Read {
                    path: shown.clone(),
                    source,
                })?;
                Tokens::parse(&shown, &text)?
            }
            None => Tokens::default(),
        };
        if let Ok(t) = std::env::var(TOKEN_ENV) {
            if !t.trim().is_empty() {
                tokens.tokens.push((t.trim().to_string(), Access::Write));
            }
        }
        if !tokens.tokens.is_empty() {
            return Ok((tokens, None));
        }
        let path = data_dir.join("token");
        let shown = path.display().to_string();
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok((Tokens::parse(&shown, &text)?, Some(path)));
        }
        let token = random_token().map_err(|source| TokenError::Write {
            path: shown.clone(),
            source,
        })?;
        crashscope_store::private::dir(data_dir)
            .and_then(|_| {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                writeln!(f, "{token}")
            })
            .map_err(|source| TokenError::Write {
                path: shown,
                source,
            })?;
        Ok((
            Tokens {
                tokens: vec![(token, Access::Write)],
            },
            Some(path),
        ))
    }

    /// The access `presented` grants, if any. Compares every byte so timing tells nothing.
    pub fn check(&self, presented: &str) -> Option<Access> {
        let mut found = None;
        for (t, a) in &self.tokens {
            if constant_time_eq(t.as_bytes(), presented.as_bytes()) {
                found = Some(*a);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 24 random bytes as hex: a generated API token, a session id.
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Middleware: a valid bearer token for reads; a write token for anything that changes state.
pub async fn require(State(tokens): State<Arc<Tokens>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(presented) = presented else {
        return unauthorized("missing bearer token: send Authorization: Bearer <token>");
    };
    match tokens.check(presented.trim()) {
        None => unauthorized("the bearer token is not valid"),
        Some(Access::Read) if !matches!(*req.method(), Method::GET | Method::HEAD) => ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "this token is read-only; {} needs a token with write access",
                req.method()
            ),
            field: None,
        }
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
        field: None,
    }
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"crashscope\""),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_read_access_and_refuse_short_tokens() {
        let t = Tokens::parse(
            "f",
            "# ops\nabcdefghijklmnop0123\nreadonly-token-0123456 read\n",
        )
        .unwrap();
        assert_eq!(t.check("abcdefghijklmnop0123"), Some(Access::Write));
        assert_eq!(t.check("readonly-token-0123456"), Some(Access::Read));
        assert_eq!(t.check("abcdefghijklmnop012"), None);
        let e = Tokens::parse("f", "short\n").unwrap_err().to_string();
        assert!(e.contains("f:1") && e.contains("16"), "{e}");
        let e = Tokens::parse("f", "abcdefghijklmnop0123 admin\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin"), "{e}");
        assert!(Tokens::parse("f", "# nothing\n").is_err());
    }
}
