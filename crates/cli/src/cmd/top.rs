//! `crashscope top`: a terminal UI over the crash-looping pods, live — the pods table with
//! each crash loop's back-off, next restart and diagnosed cause; Enter opens a pod's
//! diagnosis, previous log, captures and description; `/` filters; keys as in k9s.

mod app;
mod snapshot;
mod view;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use jiff::Timestamp;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::args::{Global, TopArgs};
use app::{App, Key, Screen};
use snapshot::{Loader, Snapshot};

/// How often the pods are read again.
const RELOAD: Duration = Duration::from_secs(2);

pub fn run(g: &Global, a: TopArgs) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "top draws on a terminal and stdout is not one; piped, use `crashscope get pods -w` or `get incidents -w`"
        );
    }
    let mut loader = Loader::default();
    // The first read before the screen: an error is printed as any command's.
    let snap = loader.load(g, &a.source, Timestamp::now())?;
    let mut terminal = ratatui::try_init()?;
    let result = screen(&mut terminal, g, &a, loader, snap);
    ratatui::try_restore()?;
    result.map(|()| ExitCode::SUCCESS)
}

fn key(k: event::KeyEvent) -> Option<Key> {
    if k.kind != KeyEventKind::Press {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

fn screen(
    terminal: &mut ratatui::DefaultTerminal,
    g: &Global,
    a: &TopArgs,
    mut loader: Loader,
    mut snap: Snapshot,
) -> Result<()> {
    let mut app = App::default();
    app.set_rows(snap.rows(Timestamp::now()));
    let mut loaded = Instant::now();
    let mut problem: Option<String> = None;
    // The opened pod's page, built once per reload.
    let mut page: Option<((String, String), String)> = None;
    // Files do not change under us: read once.
    let live = a.source.files.is_empty();
    loop {
        let now = Timestamp::now();
        if live && loaded.elapsed() >= RELOAD {
            match loader.load(g, &a.source, now) {
                Ok(s) => {
                    snap = s;
                    app.set_rows(snap.rows(now));
                    page = None;
                    problem = None;
                }
                Err(e) => problem = Some(format!("reading the pods failed: {e:#}")),
            }
            loaded = Instant::now();
        }
        let text = match &app.screen {
            Screen::Pod { namespace, pod, .. } => {
                let k = (namespace.clone(), pod.clone());
                if page.as_ref().is_none_or(|(pk, _)| *pk != k) {
                    page = Some((k.clone(), snap.pod_text(g, namespace, pod, now)));
                }
                page.as_ref().map(|(_, t)| t.as_str())
            }
            _ => None,
        };
        let title = title(&snap, a, problem.as_deref(), now);
        terminal.draw(|f| view::draw(f, &app, &title, text, now))?;
        if event::poll(Duration::from_millis(250))? {
            if let Event::Key(k) = event::read()? {
                if let Some(k) = key(k) {
                    app.step(k);
                }
            }
        }
        if app.quit {
            return Ok(());
        }
    }
}

/// The header: where the pods come from, how many crash-loop, the time, a problem.
fn title(snap: &Snapshot, a: &TopArgs, problem: Option<&str>, now: Timestamp) -> String {
    let looping = snap
        .pods
        .iter()
        .filter(|p| {
            snap.loops.iter().any(|l| {
                Some(l.pod.as_str()) == p.metadata.name.as_deref()
                    && l.namespace == p.metadata.namespace.as_deref().unwrap_or("default")
            })
        })
        .count();
    let scope = match (&a.source.namespace, a.source.all_namespaces) {
        (_, true) => "all namespaces".to_string(),
        (Some(ns), false) => format!("namespace {ns}"),
        (None, false) => "namespace default".to_string(),
    };
    let clock = now
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string();
    let mut t = format!(
        "crashscope top — {scope} — {} pods, {looping} crash-looping — {clock}",
        snap.pods.len()
    );
    if let Some(note) = snap.notes.first() {
        t.push_str(&format!(" — {note}"));
    }
    if let Some(p) = problem {
        t.push_str(&format!(" — {p}"));
    }
    t
}
