//! The scope bar every page shows: cluster › namespace › workload › pod › container, read
//! from the page's URL (the same query fields the pages filter by), each level a link that
//! keeps the scope down to it, one link that clears it, and the navigation's links carrying
//! it from page to page — what a page shows is never scoped invisibly.

use serde::Deserialize;

use super::query_string;

/// The scope's fields as the query string has them (empty: not scoped by it).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Scope {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub namespace: String,
    /// `deployment/web`.
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub container: String,
}

/// Where a thing (a pod, an incident, a capture) is, for [`Scope::admits`].
#[derive(Default)]
pub struct Scoped<'a> {
    pub cluster: Option<&'a str>,
    pub namespace: &'a str,
    /// (kind, name): `("Deployment", "web")`.
    pub workload: Option<(&'a str, &'a str)>,
    pub pod: Option<&'a str>,
    pub container: Option<&'a str>,
}

/// One level of the bar.
pub struct Crumb {
    /// `namespace`.
    pub level: &'static str,
    pub value: String,
    /// The page scoped down to this level (the levels after it dropped).
    pub link: String,
}

/// The bar as the base template draws it.
#[derive(Default)]
pub struct ScopeBar {
    pub crumbs: Vec<Crumb>,
    /// The page without any scope; None when there is none to clear.
    pub clear: Option<String>,
    /// `?namespace=shop&pod=web` for the navigation's links (empty when unscoped).
    pub query: String,
}

impl Scope {
    pub fn levels(&self) -> [(&'static str, &str); 5] {
        [
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("workload", &self.workload),
            ("pod", &self.pod),
            ("container", &self.container),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.levels().iter().all(|(_, v)| v.trim().is_empty())
    }

    /// The bar for page `path`, whose other query fields (`rest`: filters, range) its links
    /// keep.
    pub fn bar(&self, path: &str, rest: &[(&str, &str)]) -> ScopeBar {
        let levels = self.levels();
        let given: Vec<(usize, &'static str, &str)> = levels
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| !v.trim().is_empty())
            .map(|(i, (l, v))| (i, *l, *v))
            .collect();
        let link = |upto: Option<usize>| {
            let mut pairs: Vec<(&str, &str)> = levels
                .iter()
                .enumerate()
                .filter(|(i, _)| upto.is_some_and(|u| *i <= u))
                .map(|(_, p)| *p)
                .collect();
            pairs.extend_from_slice(rest);
            let q = query_string(&pairs);
            if q.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{q}")
            }
        };
        let crumbs = given
            .iter()
            .map(|(i, level, value)| Crumb {
                level,
                value: value.trim().to_string(),
                link: link(Some(*i)),
            })
            .collect();
        let query = query_string(&levels);
        ScopeBar {
            crumbs,
            clear: (!given.is_empty()).then(|| link(None)),
            query: if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            },
        }
    }

    /// `deployment/web` as (kind, name), the kind as the store keeps it (`Deployment`): the
    /// API's reading of a workload, so every page and the feed agree on it.
    pub fn workload_parts(&self) -> Option<(String, String)> {
        let w =
            crashscope_server::api::events::workload_ref("workload", self.workload.trim()).ok()?;
        Some((w.kind, w.name))
    }

    /// Whether a thing is in scope: each level the scope sets must be the thing's (a level
    /// the thing has not, None, is not a match).
    pub fn admits(&self, t: &Scoped<'_>) -> bool {
        let fits = |want: &str, have: Option<&str>| {
            let want = want.trim();
            want.is_empty() || have.is_some_and(|h| h == want)
        };
        let workload = match (self.workload_parts(), t.workload) {
            (None, _) => true,
            (Some((kind, name)), Some((k, n))) => kind.eq_ignore_ascii_case(k) && name == n,
            (Some(_), None) => false,
        };
        workload
            && fits(&self.cluster, t.cluster)
            && fits(&self.namespace, Some(t.namespace))
            && fits(&self.pod, t.pod)
            && fits(&self.container, t.container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_links_to_the_scope_down_to_it_and_clearing_keeps_the_rest() {
        let s = Scope {
            namespace: "shop".into(),
            pod: "web-1".into(),
            ..Scope::default()
        };
        let bar = s.bar("/ui/events", &[("last", "1h")]);
        let crumbs: Vec<(&str, &str, &str)> = bar
            .crumbs
            .iter()
            .map(|c| (c.level, c.value.as_str(), c.link.as_str()))
            .collect();
        assert_eq!(
            crumbs,
            [
                ("namespace", "shop", "/ui/events?namespace=shop&last=1h"),
                (
                    "pod",
                    "web-1",
                    "/ui/events?namespace=shop&pod=web-1&last=1h"
                ),
            ]
        );
        assert_eq!(bar.clear.as_deref(), Some("/ui/events?last=1h"));
        assert_eq!(bar.query, "?namespace=shop&pod=web-1");
        let none = Scope::default().bar("/ui/pods", &[]);
        assert!(none.crumbs.is_empty() && none.clear.is_none() && none.query.is_empty());
    }

    #[test]
    fn a_scope_admits_what_matches_every_level_it_sets() {
        let s = Scope {
            namespace: "shop".into(),
            container: "web".into(),
            ..Scope::default()
        };
        let at = |namespace, container| Scoped {
            namespace,
            pod: Some("p"),
            container,
            ..Scoped::default()
        };
        assert!(s.admits(&at("shop", Some("web"))));
        assert!(!s.admits(&at("shop", Some("db"))));
        assert!(!s.admits(&at("other", Some("web"))));
        assert!(!s.admits(&at("shop", None)));
        assert!(Scope::default().admits(&at("x", None)));
        let w = Scope {
            workload: "deployment/web".into(),
            ..Scope::default()
        };
        assert_eq!(
            w.workload_parts(),
            Some(("Deployment".into(), "web".into()))
        );
        let owned = |workload| Scoped {
            namespace: "shop",
            workload,
            ..Scoped::default()
        };
        assert!(w.admits(&owned(Some(("Deployment", "web")))));
        assert!(!w.admits(&owned(Some(("StatefulSet", "web")))));
        assert!(!w.admits(&owned(None)));
    }
}
