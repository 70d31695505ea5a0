//! URLs as they may appear in logs and messages: notification targets and store URLs carry
//! secrets in their password, their query (`?token=`) and their path (Slack's
//! `/services/T…/B…/secret`, webhook tokens), and a log line must never print one.

/// `url` with its password, every query value and every path segment after the first
/// replaced by `***`; scheme, user, host, port and the first path segment stay, so an
/// operator still sees which endpoint failed. Text that is not a URL is replaced whole.
pub fn url(text: &str) -> String {
    let Ok(mut u) = url::Url::parse(text) else {
        return "<not a URL>".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let segments: Vec<String> = u
        .path_segments()
        .map(|s| s.map(str::to_string).collect())
        .unwrap_or_default();
    if segments.len() > 1 {
        let path = format!("/{}/***", segments[0]);
        u.set_path(&path);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, _)| (k.into_owned(), "***".to_string()))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.set_fragment(None);
    u.to_string().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn no_secret_survives() {
        let cases = [
            (
                "https://bot:hunter2@hooks.example.com/notify?token=s3cr3t&x=1",
                "https://bot:***@hooks.example.com/notify?token=***&x=***",
            ),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/services/***",
            ),
            (
                "http://admin:pw@127.0.0.1:9093",
                "http://admin:***@127.0.0.1:9093/",
            ),
            (
                "postgres://crash:pw@db:5432/crashscope?sslmode=require",
                "postgres://crash:***@db:5432/crashscope?sslmode=***",
            ),
        ];
        for (given, want) in cases {
            let got = url(given);
            assert_eq!(got, want);
            for secret in ["hunter2", "s3cr3t", "XXXXSECRET", ":pw@"] {
                assert!(!got.contains(secret), "{got}");
            }
        }
        assert_eq!(url("not a url at all"), "<not a URL>");
    }
}
