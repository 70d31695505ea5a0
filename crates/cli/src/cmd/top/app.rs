//! The `top` screen's state and how each key changes it: an explicit state machine (which
//! screen is shown, the selected row, the filter being typed), apart from drawing and I/O so
//! that every key's effect is unit-tested.

use jiff::Timestamp;

/// One pod of the list; for a crash-looping pod, its most-restarted crash-looping container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub namespace: String,
    pub pod: String,
    pub ready: String,
    pub status: String,
    pub restarts: String,
    /// The crash-looping container, its last exit, back-off step and next restart.
    pub crash: Option<Crash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    pub container: String,
    pub last_exit: String,
    pub backoff: String,
    pub next_restart: Timestamp,
    /// The diagnosed cause's id, `-` when no diagnosis was made.
    pub cause: String,
}

impl Row {
    /// What `/` matches against: every column a person reads.
    fn haystack(&self) -> String {
        let mut s = format!("{} {} {}", self.namespace, self.pod, self.status);
        if let Some(c) = &self.crash {
            s.push_str(&format!(" {} {} {}", c.container, c.last_exit, c.cause));
        }
        s.to_lowercase()
    }

    pub fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.pod.clone())
    }
}

/// What is on screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Screen {
    #[default]
    List,
    /// After `/`: keys edit the filter until Enter keeps it or Esc clears it.
    Filter,
    /// A pod opened with Enter, scrolled `scroll` lines down.
    Pod {
        namespace: String,
        pod: String,
        scroll: u16,
    },
    Help,
}

/// The keys `top` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Esc,
    Backspace,
    Char(char),
    /// Ctrl-C: quit from anywhere.
    Interrupt,
}

#[derive(Debug, Clone, Default)]
pub struct App {
    pub screen: Screen,
    pub filter: String,
    /// Index into the visible rows.
    pub selected: usize,
    pub rows: Vec<Row>,
    pub quit: bool,
}

const PAGE: u16 = 10;

impl App {
    /// The rows the filter lets through, in list order.
    pub fn visible(&self) -> Vec<&Row> {
        let needle = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|r| needle.is_empty() || r.haystack().contains(&needle))
            .collect()
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.visible().get(self.selected).copied()
    }

    /// New rows from a reload: the selection stays on the same pod when it is still listed.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        let kept = self.selected_row().map(Row::key);
        self.rows = rows;
        let visible = self.visible();
        self.selected = kept
            .and_then(|k| visible.iter().position(|r| r.key() == k))
            .unwrap_or(self.selected)
            .min(visible.len().saturating_sub(1));
    }

    fn move_by(&mut self, delta: isize) {
        let n = self.visible().len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(n - 1);
    }

    /// One key's effect.
    pub fn step(&mut self, key: Key) {
        if key == Key::Interrupt {
            self.quit = true;
            return;
        }
        match self.screen.clone() {
            Screen::List => match key {
                Key::Down | Key::Char('j') => self.move_by(1),
                Key::Up | Key::Char('k') => self.move_by(-1),
                Key::PageDown => self.move_by(PAGE as isize),
                Key::PageUp => self.move_by(-(PAGE as isize)),
                Key::Home | Key::Char('g') => self.selected = 0,
                Key::End | Key::Char('G') => self.move_by(isize::MAX),
                Key::Enter => {
                    if let Some(r) = self.selected_row() {
                        self.screen = Screen::Pod {
                            namespace: r.namespace.clone(),
                            pod: r.pod.clone(),
                            scroll: 0,
                        };
                    }
                }
                Key::Char('/') => self.screen = Screen::Filter,
                Key::Char('?') => self.screen = Screen::Help,
                Key::Char('q') => self.quit = true,
                // As k9s: Esc drops the filter.
                Key::Esc => {
                    self.filter.clear();
                    self.selected = 0;
                }
                _ => {}
            },
            Screen::Filter => match key {
                Key::Char(c) => {
                    self.filter.push(c);
                    self.selected = 0;
                }
                Key::Backspace => {
                    self.filter.pop();
                    self.selected = 0;
                }
                Key::Enter => self.screen = Screen::List,
                Key::Esc => {
                    self.filter.clear();
                    self.selected = 0;
                    self.screen = Screen::List;
                }
                _ => {}
            },
            Screen::Pod {
                namespace,
                pod,
                scroll,
            } => {
                let scroll = match key {
                    Key::Down | Key::Char('j') => scroll.saturating_add(1),
                    Key::Up | Key::Char('k') => scroll.saturating_sub(1),
                    Key::PageDown | Key::Char(' ') => scroll.saturating_add(PAGE),
                    Key::PageUp => scroll.saturating_sub(PAGE),
                    Key::Home | Key::Char('g') => 0,
                    Key::Esc | Key::Char('q') => {
                        self.screen = Screen::List;
                        return;
                    }
                    _ => scroll,
                };
                self.screen = Screen::Pod {
                    namespace,
                    pod,
                    scroll,
                };
            }
            Screen::Help => {
                if matches!(key, Key::Esc | Key::Char('q') | Key::Char('?') | Key::Enter) {
                    self.screen = Screen::List;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: &str, pod: &str, cause: Option<&str>) -> Row {
        Row {
            namespace: ns.into(),
            pod: pod.into(),
            ready: "0/1".into(),
            status: if cause.is_some() {
                "CrashLoopBackOff".into()
            } else {
                "Running".into()
            },
            restarts: "3".into(),
            crash: cause.map(|c| Crash {
                container: "main".into(),
                last_exit: "Error (exit code 1)".into(),
                backoff: "40s (step 3 of 9)".into(),
                next_restart: Timestamp::UNIX_EPOCH,
                cause: c.into(),
            }),
        }
    }

    fn app() -> App {
        let mut a = App::default();
        a.set_rows(vec![
            row("shop", "web-1", Some("dns-nxdomain")),
            row("shop", "db-0", None),
            row("ops", "job-x", Some("oom-limit")),
        ]);
        a
    }

    fn keys(a: &mut App, ks: &[Key]) {
        for k in ks {
            a.step(*k);
        }
    }

    #[test]
    fn moving_stays_inside_the_list() {
        let mut a = app();
        keys(&mut a, &[Key::Up]);
        assert_eq!(a.selected, 0);
        keys(&mut a, &[Key::Char('j'), Key::Down, Key::Down]);
        assert_eq!(a.selected, 2);
        keys(&mut a, &[Key::Char('g')]);
        assert_eq!(a.selected, 0);
        keys(&mut a, &[Key::Char('G')]);
        assert_eq!(a.selected_row().unwrap().pod, "job-x");
    }

    #[test]
    fn slash_filters_enter_keeps_esc_clears() {
        let mut a = app();
        keys(
            &mut a,
            &[
                Key::Char('/'),
                Key::Char('O'),
                Key::Char('o'),
                Key::Char('m'),
            ],
        );
        assert_eq!(a.screen, Screen::Filter);
        let shown: Vec<&str> = a.visible().iter().map(|r| r.pod.as_str()).collect();
        assert_eq!(
            shown,
            vec!["job-x"],
            "the cause column is matched, case aside"
        );
        keys(&mut a, &[Key::Enter]);
        assert_eq!((a.screen.clone(), a.filter.as_str()), (Screen::List, "Oom"));
        // While the filter is typed, letters are text, not commands: `q` does not quit.
        keys(
            &mut a,
            &[
                Key::Char('/'),
                Key::Backspace,
                Key::Backspace,
                Key::Char('q'),
            ],
        );
        assert!(!a.quit && a.filter == "Oq");
        keys(&mut a, &[Key::Esc]);
        assert_eq!(a.filter, "");
        assert_eq!(a.visible().len(), 3);
    }

    #[test]
    fn enter_opens_the_selected_pod_and_esc_returns() {
        let mut a = app();
        keys(&mut a, &[Key::Down, Key::Enter]);
        assert_eq!(
            a.screen,
            Screen::Pod {
                namespace: "shop".into(),
                pod: "db-0".into(),
                scroll: 0
            }
        );
        keys(&mut a, &[Key::PageDown, Key::Char('k')]);
        assert!(matches!(a.screen, Screen::Pod { scroll: 9, .. }));
        keys(&mut a, &[Key::Esc]);
        assert_eq!(a.screen, Screen::List);
        assert!(!a.quit);
        keys(&mut a, &[Key::Char('q')]);
        assert!(a.quit);
    }

    #[test]
    fn a_reload_keeps_the_selected_pod() {
        let mut a = app();
        keys(&mut a, &[Key::Down, Key::Down]);
        assert_eq!(a.selected_row().unwrap().pod, "job-x");
        // A new pod sorts first: the selection follows job-x.
        let mut rows = a.rows.clone();
        rows.insert(0, row("ops", "new-0", Some("unknown")));
        a.set_rows(rows);
        assert_eq!(a.selected_row().unwrap().pod, "job-x");
        // The selected pod is gone: the selection stays in range.
        a.set_rows(vec![row("shop", "web-1", None)]);
        assert_eq!(a.selected, 0);
        a.set_rows(Vec::new());
        assert!(a.selected_row().is_none());
        keys(&mut a, &[Key::Enter, Key::Down]);
        assert_eq!(a.screen, Screen::List);
    }

    #[test]
    fn help_and_interrupt() {
        let mut a = app();
        keys(&mut a, &[Key::Char('?')]);
        assert_eq!(a.screen, Screen::Help);
        keys(&mut a, &[Key::Esc]);
        assert_eq!(a.screen, Screen::List);
        keys(&mut a, &[Key::Char('/'), Key::Interrupt]);
        assert!(a.quit);
    }
}
