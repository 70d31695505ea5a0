//! The `notify:` section of a rule file: where alerts go, beside (or instead of) the
//! `--webhook`, `--slack` and `--alertmanager` flags of `crashscope serve` — so that a
//! ConfigMap holds the rules and their receivers together, as Alertmanager's configuration
//! does.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One receiver: exactly one of `webhook`, `slack`, `alertmanager`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// POST each notification as JSON to this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A file holding the secret that signs this webhook's bodies (X-Crashscope-Signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// A Slack incoming-webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    /// An Alertmanager's base URL (alerts go to its /api/v2/alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
}

/// What a receiver sends to, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Webhook {
        url: &'a str,
        secret_file: Option<&'a PathBuf>,
    },
    Slack(&'a str),
    Alertmanager(&'a str),
}

impl Receiver {
    /// The one place this receiver sends to, or what is wrong with it.
    pub fn target(&self) -> Result<Target<'_>, String> {
        let urls = [&self.webhook, &self.slack, &self.alertmanager];
        match urls.iter().filter(|u| u.is_some()).count() {
            0 => return Err("needs one of webhook, slack, alertmanager".into()),
            1 => {}
            _ => return Err("gives more than one of webhook, slack, alertmanager".into()),
        }
        if self.secret_file.is_some() && self.webhook.is_none() {
            return Err("secret_file signs webhooks only".into());
        }
        let url = urls.iter().find_map(|u| u.as_deref()).unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        }
        Ok(if self.webhook.is_some() {
            Target::Webhook {
                url,
                secret_file: self.secret_file.as_ref(),
            }
        } else if self.slack.is_some() {
            Target::Slack(url)
        } else {
            Target::Alertmanager(url)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(webhook: Option<&str>, slack: Option<&str>, secret: bool) -> Receiver {
        Receiver {
            webhook: webhook.map(String::from),
            slack: slack.map(String::from),
            secret_file: secret.then(|| PathBuf::from("/etc/secret")),
            ..Receiver::default()
        }
    }

    #[test]
    fn a_receiver_names_one_http_target() {
        assert_eq!(
            r(Some("https://hooks.example/x"), None, true).target(),
            Ok(Target::Webhook {
                url: "https://hooks.example/x",
                secret_file: Some(&PathBuf::from("/etc/secret"))
            })
        );
        assert_eq!(
            r(None, Some("https://hooks.slack.com/s"), false).target(),
            Ok(Target::Slack("https://hooks.slack.com/s"))
        );
        let errors = [
            r(None, None, false),
            r(Some("http://a"), Some("http://b"), false),
            r(None, Some("http://b"), true),
            r(Some("hooks.example"), None, false),
        ]
        .map(|x| x.target().unwrap_err());
        assert!(errors[0].contains("needs one of"), "{errors:?}");
        assert!(errors[1].contains("more than one"), "{errors:?}");
        assert!(errors[2].contains("webhooks only"), "{errors:?}");
        assert!(errors[3].contains("not an http"), "{errors:?}");
    }
}
