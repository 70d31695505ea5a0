//! `crashscope-fuzz`: runs the fuzz targets for a number of inputs or minutes and prints
//! what each found; exits 1 when anything was found (the inputs are saved to --out).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use crashscope_fuzz::{quiet_panics, Report, Run};

#[derive(Parser)]
#[command(about = "Fuzz crashscope's readers of outside input (stable toolchain)")]
struct Args {
    /// Targets to run: scap, filter, manifest, api (default: all)
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Inputs per target
    #[arg(long, default_value_t = 10_000)]
    iterations: u64,
    /// Stop each target after this many seconds, whatever the inputs count
    #[arg(long)]
    seconds: Option<u64>,
    /// Seed of the mutations (a run is reproduced by its seed)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where inputs behind findings are saved
    #[arg(long, default_value = "target/fuzz")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let a = Args::parse();
    quiet_panics();
    let run = Run {
        iterations: a.iterations,
        seed: a.seed,
        budget: a.seconds.map(Duration::from_secs),
        out: a.out,
    };
    let all = ["scap", "filter", "manifest", "api"];
    let targets: Vec<&str> = if a.target.is_empty() {
        all.to_vec()
    } else {
        a.target.iter().map(String::as_str).collect()
    };
    println!(
        "{:<9} {:>8} {:>7} {:>5} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "TARGET", "INPUTS", "PANICS", "SLOW", "SILENT", "REPORTED", "5XX", "NON-JSON", "REFUSED"
    );
    let mut found = 0;
    for t in targets {
        let r: Report = match t {
            "scap" => crashscope_fuzz::scap::run(&run),
            "filter" => crashscope_fuzz::filter::run(&run),
            "manifest" => crashscope_fuzz::manifest::run(&run),
            "api" => crashscope_fuzz::api::run(&run),
            other => {
                eprintln!("error: no target {other:?} (scap, filter, manifest, api)");
                return ExitCode::from(2);
            }
        };
        println!(
            "{:<9} {:>8} {:>7} {:>5} {:>7} {:>8} {:>8} {:>9} {:>8}",
            r.target,
            r.inputs,
            r.panics,
            r.slow,
            r.silent_damage,
            r.reported_damage,
            r.server_errors,
            r.non_json_errors,
            r.refused
        );
        for p in &r.saved {
            println!("  saved {}", p.display());
        }
        found += r.findings();
    }
    if found > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
