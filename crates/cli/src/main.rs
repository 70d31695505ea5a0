//! The `crashscope` binary: parse the command line, call the library crates, print.

mod args;
mod cmd;
mod complete;
mod inputs;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    complete::answer_if_asked();
    let cli = parse_args();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRASHSCOPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `: `-joined as `{:#}` prints them, leaving out a cause whose
/// text is already said (libraries often repeat their source in their own message, which
/// read "No such file or directory (os error 2): No such file or directory (os error 2)").
fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

/// The file name kubectl runs `kubectl crashscope ...` as.
const KUBECTL_PLUGIN: &str = "kubectl-crashscope";

/// The command line. Run as `kubectl-crashscope` (a kubectl plugin: `kubectl crashscope get
/// pods -n shop`), help says `kubectl crashscope` and get, describe, events and logs read the
/// cluster of the kubeconfig (`$KUBECONFIG`, as kubectl passes it, or --kubeconfig/--context),
/// as kubectl's own commands do.
fn parse_args() -> args::Cli {
    use clap::{CommandFactory, FromArgMatches};
    let plugin = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n == KUBECTL_PLUGIN)
        })
        .unwrap_or(false);
    let mut command = args::Cli::command();
    if plugin {
        command = command
            .name("kubectl crashscope")
            .bin_name("kubectl crashscope");
    }
    let matches = command.get_matches();
    let mut cli = match args::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    cli.global.cluster |= plugin;
    cli
}

/// `crashscope get pods | head -1`: the reader has what it wanted. Rust ignores SIGPIPE, so
/// `println!` panics on the closed pipe; like a Unix tool, end quietly (and with success,
/// as the output that was read is whole) instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_said_is_not_said_again() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let inner = anyhow::Error::new(io).context(format!(
            "failed to read kubeconfig: {}",
            std::io::Error::from(std::io::ErrorKind::NotFound)
        ));
        let e = inner.context("cannot reach the cluster");
        let t = chain_text(&e);
        assert_eq!(
            t,
            "cannot reach the cluster: failed to read kubeconfig: entity not found"
        );
    }
}
