//! `crashscope describe pod [NAME] -f FILE`: kubectl's describe, then the back-off section.

use anyhow::Result;
use crashscope_kubectl::crashloop::{crash_loop_section, crash_loops};
use crashscope_kubectl::describe::{describe_pod, DescribeContext};
use jiff::tz::TimeZone;
use std::process::ExitCode;

use crate::args::{DescribeArgs, Global, Resource};
use crate::inputs;

pub fn run(g: &Global, a: DescribeArgs) -> Result<ExitCode> {
    if a.resource == Resource::Incidents {
        return super::incidents::describe(g, a.resource, a.names, a.source);
    }
    let now = inputs::now(g.now.as_deref())?;
    let policy = super::backoff_policy(g)?;
    // Events may sit in the same files as the pods (an EventList beside a Pod).
    let (pods, events, had_errors) = super::get::load_selected(g, &a.source, &a.names, true, true)?;
    if pods.is_empty() && !had_errors {
        eprintln!("No resources found");
    }
    // kubectl hides events when describing several objects unless asked explicitly.
    let show_events = a.show_events.unwrap_or(pods.len() == 1);
    let tz = TimeZone::system();
    for (i, pod) in pods.iter().enumerate() {
        let ctx = DescribeContext {
            events: &events,
            show_events,
            now,
            tz: tz.clone(),
        };
        if i > 0 {
            print!("\n\n");
        }
        print!("{}", describe_pod(pod, &ctx));
        let mut loops = crash_loops(pod, &policy);
        if !loops.is_empty() {
            let causes = super::diagnose::causes(
                g,
                !a.source.files.is_empty(),
                std::slice::from_ref(pod),
                &events,
                now,
            );
            super::diagnose::annotate(&mut loops, &causes);
        }
        let section = crash_loop_section(&loops, now, &tz);
        if !section.is_empty() {
            print!("\n{section}");
        }
    }
    Ok(super::status(had_errors))
}
