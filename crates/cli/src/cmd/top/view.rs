//! Drawing the `top` screen with ratatui: a header, the pods table (crash loops first, the
//! next restart counting down), an opened pod's page, help, and the keys in the footer.
//! Severity is never colour alone: the STATUS and CAUSE words carry it.

use jiff::Timestamp;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row as TableRow, Table, TableState, Wrap};
use ratatui::Frame;

use super::app::{App, Row, Screen};

const HEADERS: [&str; 9] = [
    "NAMESPACE",
    "NAME",
    "READY",
    "STATUS",
    "RESTARTS",
    "CONTAINER",
    "LAST EXIT",
    "NEXT RESTART",
    "CAUSE",
];

/// The cells of a row, as the table shows them at `now`.
pub fn cells(r: &Row, now: Timestamp) -> [String; 9] {
    let (container, last_exit, next, cause) = match &r.crash {
        Some(c) => (
            c.container.clone(),
            c.last_exit.clone(),
            crashscope_kubectl::crashloop::next_restart_text(c.next_restart, now),
            c.cause.clone(),
        ),
        None => Default::default(),
    };
    [
        r.namespace.clone(),
        r.pod.clone(),
        r.ready.clone(),
        r.status.clone(),
        r.restarts.clone(),
        container,
        last_exit,
        next,
        cause,
    ]
}

const HELP: &str = "\
crashscope top — crash-looping pods, live

  j / Down     next pod              k / Up      previous pod
  g / Home     first pod             G / End     last pod
  Enter        open the pod: diagnosis, previous log, captures, describe
  /            filter (any column); Enter keeps it, Esc clears it
  Esc          clear the filter; on a pod's page, back to the list
  q            quit (on a pod's page: back)      Ctrl-C  quit
  ?            this help

On a pod's page: j/k scroll, Space/PgDn and PgUp a page, g the top.
The list is read again every 2 seconds; NEXT RESTART counts down to the
kubelet's next restart of the crash-looping container.";

/// Draws one frame. `title` is the header line; `page` the opened pod's text.
pub fn draw(f: &mut Frame, app: &App, title: &str, page: Option<&str>, now: Timestamp) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(
        Paragraph::new(title).style(Style::new().add_modifier(Modifier::BOLD)),
        top,
    );
    let keys = match &app.screen {
        Screen::List if app.filter.is_empty() => {
            "<enter> open  </> filter  <j/k> move  <?> help  <q> quit".to_string()
        }
        Screen::List => format!(
            "filter: {}  <esc> clear  <enter> open  </> edit  <?> help  <q> quit",
            app.filter
        ),
        Screen::Filter => format!("/{}▏  <enter> keep  <esc> clear", app.filter),
        Screen::Pod { .. } => "<j/k> scroll  <space> page  <esc> back  <q> back".to_string(),
        Screen::Help => "<esc> back".to_string(),
    };
    f.render_widget(Paragraph::new(keys), bottom);
    match &app.screen {
        Screen::Pod {
            namespace,
            pod,
            scroll,
        } => {
            let text = page.unwrap_or("");
            let p = Paragraph::new(text)
                .block(Block::bordered().title(format!(" pod {namespace}/{pod} ")))
                .wrap(Wrap { trim: false })
                .scroll((*scroll, 0));
            f.render_widget(p, body);
        }
        Screen::Help => {
            f.render_widget(
                Paragraph::new(HELP).block(Block::bordered().title(" help ")),
                body,
            );
        }
        Screen::List | Screen::Filter => {
            let visible = app.visible();
            let rows: Vec<[String; 9]> = visible.iter().map(|r| cells(r, now)).collect();
            // Each column as wide as its widest cell; CAUSE takes what is left.
            let mut widths = HEADERS.map(|h| h.chars().count() as u16);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r.iter()) {
                    *w = (*w).max(c.chars().count() as u16);
                }
            }
            let constraints: Vec<Constraint> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == HEADERS.len() - 1 {
                        Constraint::Min(*w)
                    } else {
                        Constraint::Length(*w)
                    }
                })
                .collect();
            let header = TableRow::new(HEADERS).style(Style::new().add_modifier(Modifier::BOLD));
            let table_rows = rows.into_iter().map(TableRow::new);
            let empty = visible.is_empty();
            let table = Table::new(table_rows, constraints)
                .header(header)
                .column_spacing(2)
                .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
                .highlight_symbol("> ")
                .block(Block::bordered().title(if app.filter.is_empty() {
                    " pods ".to_string()
                } else {
                    format!(" pods matching {:?} ", app.filter)
                }));
            let mut state = TableState::default().with_selected((!empty).then_some(app.selected));
            f.render_stateful_widget(table, body, &mut state);
            if empty {
                let inner = body.inner(ratatui::layout::Margin::new(2, 2));
                f.render_widget(Line::from("No pods."), inner);
            }
        }
    }
}
