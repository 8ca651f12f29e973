//! The command line: `run`, `check`, `compare`, `load`, `init`, `doctor`, `explain`, `wait-ready` and `fixture`, with their help text.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cancel::Cancel;
use crate::error::{Error, Result, EXIT_ERROR};
use crate::load::{limits, Ending, LoadRun, LoadSpec, Mode, Target, VersionSpec};
use crate::report::{self, LoadSummary, RunReport, RunResult};
use crate::run::{self, RunOptions};
use crate::scenario;
use crate::stats::collector::timeline_window;
use crate::stats::failure_bound::{percent, Round};
use crate::stats::versions::VersionTable;

/// Proves, under load, whether a reload strategy is really zero-downtime.
///
/// Exit codes: 0 every assertion held; 1 an assertion failed; 2 bad input,
/// harness error or interrupted.
#[derive(Debug, Parser)]
#[command(name = "zdt-check", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenario files: start the app, load it, reload it, judge the result.
    Run(RunArgs),
    /// Check scenario files without running them: every key, the programs they name,
    /// the servers they need. Exit 0 if all is well, 2 listing every problem.
    Check(CheckArgs),
    /// Write a starter scenario for your own stack and deploy command, every key explained.
    Init(InitArgs),
    /// Run several scenarios (each N times) and print one comparison table.
    Compare(CompareArgs),
    /// Drive load at a target on its own (like ab/wrk), and report every outcome.
    Load(LoadArgs),
    /// Show which servers are installed and which scenarios can run here.
    Doctor(DoctorArgs),
    /// Explain a strategy, an app kind or a scenario key (`reload.settle`, `settle`,
    /// `app.workers`): its mechanism, what it needs, its options and their defaults.
    Explain(ExplainArgs),
    /// Wait until a target answers a health probe (for deploy scripts): exit 0 when it
    /// does, 1 if it does not within the timeout.
    WaitReady(WaitReadyArgs),
    /// Run the built-in fixture server (what scenarios with app.kind = "builtin" start).
    #[command(disable_version_flag = true)]
    Fixture(crate::fixture::FixtureArgs),
}

/// `zdt-check run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files (TOML), run one after the other.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Also write the report as JSON (schema: schema/report.schema.json).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Also write a self-contained HTML report (verdict, timeline and percentile charts).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Also write JUnit XML: one test case per scenario (for CI test reporting).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary: per run the verdict, the accounting, the
    /// failures by phase with their 95% bound and each failed check (for a CI job's
    /// summary, e.g. `$GITHUB_STEP_SUMMARY`, or a pull request comment).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Also write one HdrHistogram percentile distribution per run and phase
    /// (`<scenario>.<phase>.hgrm`, milliseconds) into this directory.
    #[arg(long, value_name = "DIR")]
    pub hdr_dir: Option<PathBuf>,
    /// Judge each run against a stored JSON report of the same scenarios (what `run
    /// --json` or `compare --json` wrote; matched by scenario name, the median of its runs):
    /// failures, failure rate during the reload, max gap, p99 during the reload,
    /// throughput dip and reload time may not regress beyond `[assert.baseline]`'s
    /// tolerances. A file that cannot be read, of another schema, or without the
    /// scenario run with the same [load] and strategy: exit 2.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// Keep the run directory (sockets, rendered configs, logs) and print its path.
    #[arg(long)]
    pub keep_run_dir: bool,
    /// No live progress on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// `zdt-check check`.
#[derive(Debug, Args)]
#[command(long_about = "Check scenario files without running them.\n\n\
Each file is parsed and validated; each program it names (app.start, app.stop,\n\
reload.command) is resolved, and each server it needs (nginx, haproxy, uwsgi,\n\
gunicorn, flup) looked up, running nothing but their version probes. A bare program\n\
name (deploy.sh) is looked up on PATH; a relative path with a `/` (./deploy.sh) is\n\
taken from the scenario file's directory.\n\n\
Exit codes: 0 every file is fine; 2 at least one problem (each is listed, with its\n\
file, line and key).")]
pub struct CheckArgs {
    /// Scenario files (TOML).
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
}

/// `zdt-check compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Scenario files (TOML).
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Runs per scenario; the table shows passes/N and the spread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Stop repeating a scenario once the one-sided 95% upper bound of its failure
    /// rate during the reload, over the requests of its runs so far pooled, is below
    /// RATE (`0.1%`, or a share: `0.001`); `--repeat` is then the most runs. A scenario
    /// that fails a request may never get there: it runs `--repeat` times, and the
    /// table says whether the bound was reached.
    #[arg(long, value_name = "RATE", value_parser = parse_rate_target)]
    pub until_bound: Option<f64>,
    /// Run every scenario at this rate (open loop), whatever its own [load] says (the
    /// bounds of `load --rate`).
    #[arg(long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Run every scenario with this many connections (the bounds of `load --connections`).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Also write the table as Markdown.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Also write the summary and every run as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Also write a self-contained HTML page: the ranked table, every scenario's
    /// timeline aligned at the first reload step, percentile curves per phase.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Also write JUnit XML: one test suite per scenario, one test case per run.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Judge each run against a stored JSON report of the same scenarios (what `run
    /// --json` or `compare --json` wrote; matched by scenario name, the median of its runs):
    /// failures, failure rate during the reload, max gap, p99 during the reload,
    /// throughput dip and reload time may not regress beyond `[assert.baseline]`'s
    /// tolerances. A file that cannot be read, of another schema, or without the
    /// scenario run with the same [load] and strategy: exit 2. A regressed run is a
    /// failed run in the table and the JUnit; compare still exits 0.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
}

/// `zdt-check init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the scenario.
    #[arg(default_value = "zdt-scenario.toml", value_name = "PATH")]
    pub path: PathBuf,
    /// What the load hits: `http://127.0.0.1:PORT/` (a loopback IP, no path) or
    /// `unix:/PATH.sock` (`${ZDT_RUN_DIR}` is expanded at run time).
    #[arg(long, default_value = "http://127.0.0.1:8000/", value_name = "URL")]
    pub target: String,
    /// The command that brings up your stack (split into words like a shell, no
    /// expansion). Without it, `start` is written commented out: the stack is already up.
    #[arg(long, value_name = "CMD")]
    pub start: Option<String>,
    /// Your deploy command (split into words like a shell, no expansion); a path with a
    /// `/` is relative to the scenario file's directory.
    #[arg(long, default_value = "./deploy.sh", value_name = "CMD")]
    pub deploy: String,
    /// Overwrite PATH if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `zdt-check doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Directory of scenarios to check.
    #[arg(default_value = "scenarios")]
    pub scenarios: PathBuf,
}

/// `zdt-check explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A strategy (`symlink-swap`), an app kind (`gunicorn`) or a key (`reload.settle`,
    /// `settle`, `app.workers`).
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// The https flags of `load` and `wait-ready`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// https: PEM file of the CAs to trust (default: the system bundle).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// https: accept any certificate (the handshake is still done; not with --ca-file).
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// https: the name the certificate must be valid for, sent as SNI (default: the
    /// target's host).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

/// `zdt-check wait-ready`.
#[derive(Debug, Args)]
pub struct WaitReadyArgs {
    /// `unix:/PATH.sock`, `http://HOST:PORT` or `https://HOST:PORT` (trusting the system
    /// CAs, or what the https flags say).
    pub target: String,
    /// Path to probe; a 2xx answer means ready.
    #[arg(long, default_value = "/_status")]
    pub path: String,
    /// Give up after this long (more than 0, at most 24h).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// What an https target is trusted with.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `zdt-check load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// `http://HOST:PORT/PATH`, `https://HOST:PORT/PATH` or `unix:/PATH.sock`.
    pub target: String,
    /// Open loop at this many requests/s (latency measured from the scheduled time), more
    /// than 0 and at most 1000000; a warning if it exceeds 1000 per connection. Without
    /// it: closed loop.
    #[arg(long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Connections (open loop: the most requests in flight at once), 1 to 50000 and
    /// within `ulimit -n` (less 64). Each costs about 6 KB of memory.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// How long to send requests, e.g. `10s` (more than 0, at most 24h).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_positive_duration)]
    pub duration: Duration,
    /// Reuse connections (the default).
    #[arg(long, overrides_with = "no_keep_alive")]
    pub keep_alive: bool,
    /// Open a new connection for every request.
    #[arg(long)]
    pub no_keep_alive: bool,
    /// Before reusing a kept connection: `pooled` looks whether the server closed it
    /// while idle and reopens it (as urllib3, Go and browsers do; counted as a stale
    /// close, not a failure); `naive` reuses it blindly (as http.client does), so such
    /// a close fails the next request as reset_reused.
    #[arg(long, default_value = "pooled", value_parser = clap::builder::PossibleValuesParser::new(["pooled", "naive"]))]
    pub reuse: String,
    /// Open-loop engine: `epoll` (the default) or `io_uring` (a measured prototype,
    /// see docs/benchmarks.md; falls back to epoll, with a note, where it cannot run).
    #[arg(long, default_value = "epoll", value_parser = clap::builder::PossibleValuesParser::new(["epoll", "io_uring"]))]
    pub engine: String,
    /// `h1` (HTTP/1.1), `h2` (HTTP/2 negotiated by ALPN: an https:// target) or `h2c`
    /// (HTTP/2 with prior knowledge: an http:// or unix: target).
    #[arg(long, default_value = "h1", value_parser = clap::builder::PossibleValuesParser::new(["h1", "h2", "h2c"]))]
    pub protocol: String,
    /// Same as `--protocol h2`.
    #[arg(long, conflicts_with = "protocol")]
    pub h2: bool,
    /// HTTP/2: concurrent streams per connection (1 to 1000); `-c` connections each
    /// carry up to this many requests at once.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Per-request time limit (more than 0, at most 24h).
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// After the duration, how long requests in flight may take before they count as
    /// hung (at most 24h). Default: the timeout plus 1s, so a request sent last still
    /// ends in its class (ok or timeout), not hung.
    #[arg(long, value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Request path for a unix target (an http target carries its own).
    #[arg(long)]
    pub path: Option<String>,
    /// Response header that names the serving version.
    #[arg(long, default_value = "X-App-Version")]
    pub version_header: String,
    /// What an https target is trusted with.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Write the report as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Allow a target off this machine (not loopback, not a unix socket). Without it
    /// such a target is refused (exit 2) before anything is sent. A host name is
    /// resolved once; every connection goes to that address, which the report names.
    #[arg(long)]
    pub allow_remote: bool,
}

/// A duration flag: at most 24 h (`config::duration::parse`).
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    crate::config::duration::parse(s)
}

/// A duration flag that must be more than zero (a run length, a time limit).
fn parse_positive_duration(s: &str) -> std::result::Result<Duration, String> {
    crate::config::duration::parse_positive(s)
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli, cancel: Cancel) -> ExitCode {
    let result = match cli.command {
        Command::Run(a) => cmd_run(a, &cancel).await,
        Command::Load(a) => cmd_load(a, &cancel).await,
        Command::Compare(a) => cmd_compare(a, &cancel).await,
        Command::WaitReady(a) => cmd_wait_ready(a).await,
        Command::Check(a) => Ok(crate::check::run(&a.scenarios)),
        Command::Init(a) => cmd_init(a),
        Command::Doctor(a) => {
            print!("{}", crate::doctor::report(&a.scenarios));
            Ok(0)
        }
        Command::Explain(a) => crate::reference::explain(&a.name)
            .map(|text| {
                print!("{text}");
                0
            })
            .map_err(Error::Usage),
        Command::Fixture(a) => crate::fixture::serve(a)
            .await
            .map(|_| 0)
            .map_err(|e| Error::Harness(e.to_string())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("zdt-check: error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Reads the `--baseline` report and checks that it holds every scenario to be run,
/// with the same settings, before any run.
fn read_baseline(
    path: Option<&std::path::Path>,
    loaded: &[scenario::Loaded],
) -> Result<Option<std::sync::Arc<crate::verdict::baseline::Baseline>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let b = crate::verdict::baseline::Baseline::read(path)?;
    for sc in loaded {
        b.for_scenario(&sc.name, &sc.scenario_hash())?;
    }
    Ok(Some(std::sync::Arc::new(b)))
}

/// Loads and validates every scenario file (all before any runs), one entry per sweep point.
fn load_all(paths: &[PathBuf]) -> Result<Vec<scenario::Loaded>> {
    let files = paths
        .iter()
        .map(|p| scenario::load(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(files.iter().flat_map(scenario::expand_sweep).collect())
}

async fn cmd_run(a: RunArgs, cancel: &Cancel) -> Result<u8> {
    // Orphaned descendants (daemons, a dead supervisor's children) re-parent to us, so
    // each run's orphan sweep finds and stops them.
    crate::sys::orphans::become_subreaper();
    // Validate every file, and check every output path, before running any.
    let loaded = load_all(&a.scenarios)?;
    warn_about_rates(&loaded);
    check_outputs(&[
        ("--json", &a.json),
        ("--html", &a.html),
        ("--junit", &a.junit),
        ("--markdown", &a.markdown),
    ])?;
    if let Some(dir) = &a.hdr_dir {
        check_output_dir("--hdr-dir", dir)?;
    }
    let swept = loaded.len() > a.scenarios.len();
    let opts = RunOptions {
        progress: !a.no_progress,
        keep_run_dir: a.keep_run_dir,
        exe: std::env::current_exe()
            .map_err(|e| Error::Harness(format!("cannot find the zdt-check binary: {e}")))?,
        baseline: read_baseline(a.baseline.as_deref(), &loaded)?,
    };
    let mut reports = Vec::new();
    for sc in &loaded {
        if cancel.is_cancelled() {
            break;
        }
        let r = run::run(sc, &opts, cancel).await;
        println!("{}", report::terminal::render(&r));
        reports.push(r);
    }
    if swept {
        // A sweep reads best as one table, one row per grid point.
        let rows: Vec<_> = reports
            .iter()
            .map(|r| crate::compare::summarise(std::slice::from_ref(r)))
            .collect();
        println!("{}", crate::compare::markdown(&rows));
    }
    if let Some(path) = &a.json {
        report::json::write(path, &reports)?;
    }
    if let Some(path) = &a.html {
        report::html::write(path, &reports)?;
    }
    if let Some(path) = &a.junit {
        report::junit::write(path, &reports)?;
    }
    if let Some(path) = &a.markdown {
        report::markdown::write(path, &reports)?;
    }
    if let Some(dir) = &a.hdr_dir {
        report::hgrm::write_dir(dir, &reports)?;
    }
    Ok(reports
        .iter()
        .map(|r| r.exit_code)
        .max()
        .unwrap_or(EXIT_ERROR))
}

fn cmd_init(a: InitArgs) -> Result<u8> {
    let opts = crate::init::InitOptions {
        target: a.target,
        start: a.start,
        deploy: a.deploy,
    };
    let text = crate::init::render(&a.path, &opts)?;
    crate::init::write(&a.path, &text, a.force)?;
    println!(
        "wrote {} (app.kind = \"external\", target {}, deploy command {})",
        a.path.display(),
        opts.target,
        opts.deploy
    );
    for cmd in opts.start.iter().chain(std::iter::once(&opts.deploy)) {
        if let Some(p) = crate::init::missing_program(&a.path, cmd) {
            println!("note: {} does not exist yet", p.display());
        }
    }
    println!("next: read and edit it (every key is explained), then run:");
    println!(
        "  zdt-check run {}",
        crate::init::shell_quote(&a.path.to_string_lossy())
    );
    Ok(0)
}

async fn cmd_compare(a: CompareArgs, cancel: &Cancel) -> Result<u8> {
    crate::sys::orphans::become_subreaper();
    check_load_flags(a.rate, a.connections)?;
    if a.until_bound.is_some() && a.repeat < 2 {
        return Err(Error::Usage(
            "--until-bound needs --repeat N, the most runs per scenario (N ≥ 2)".into(),
        ));
    }
    let mut loaded = load_all(&a.scenarios)?;
    for l in &mut loaded {
        if let Some(r) = a.rate {
            l.scenario.load.mode = toml::Spanned::new(0..0, "open".into());
            l.scenario.load.rate = toml::Spanned::new(0..0, r);
        }
        if let Some(c) = a.connections {
            l.scenario.load.connections = toml::Spanned::new(0..0, c);
        }
    }
    warn_about_rates(&loaded);
    // Output paths are checked before any run: a compare can take a long time.
    check_outputs(&[
        ("--markdown", &a.markdown),
        ("--json", &a.json),
        ("--html", &a.html),
        ("--junit", &a.junit),
    ])?;
    let opts = RunOptions {
        progress: false,
        keep_run_dir: false,
        exe: std::env::current_exe()
            .map_err(|e| Error::Harness(format!("cannot find the zdt-check binary: {e}")))?,
        baseline: read_baseline(a.baseline.as_deref(), &loaded)?,
    };
    // Each run is folded into its scenario's tally and dropped; only --json keeps
    // every run (without its phase histograms, which it does not write).
    let mut compared = Vec::new();
    let mut all = Vec::new();
    for sc in &loaded {
        let mut tally = crate::compare::collect::Tally::default();
        for i in 1..=a.repeat {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(target) = a.until_bound {
                if let Some(u) = tally.during().upper95().filter(|u| *u < target) {
                    eprintln!(
                        "{}: failure rate during the reload ≤ {} at 95% after {} runs: below --until-bound {}, no more runs",
                        sc.name,
                        percent(u, Round::Up),
                        i - 1,
                        percent(target, Round::Nearest)
                    );
                    break;
                }
            }
            let r = run::run(sc, &opts, cancel).await;
            let verdict = if r.interrupted {
                r.interrupted_by_text()
            } else {
                r.result.as_str().to_string()
            };
            eprintln!("{} run {i}/{}: {verdict}", sc.name, a.repeat);
            if a.json.is_some() {
                let mut kept = r.clone();
                if let Some(st) = &mut kept.stats {
                    st.drop_histograms();
                }
                all.push(kept);
            }
            tally.add(r);
        }
        if let Some(target) = a.until_bound {
            let during = tally.during();
            if during.upper95().is_none_or(|u| u >= target) {
                eprintln!(
                    "{}: --until-bound {} not reached in {} runs: {}",
                    sc.name,
                    percent(target, Round::Nearest),
                    tally.runs(),
                    if during.requests == 0 {
                        "no request ended during a reload".to_string()
                    } else {
                        format!("{during} during the reload")
                    }
                );
            }
        }
        if tally.runs() > 0 {
            compared.push(tally.finish());
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    let rows: Vec<_> = compared.iter().map(|c| c.row.clone()).collect();
    let table = crate::compare::markdown(&rows);
    println!("{table}");
    if cancel.is_cancelled() {
        let by = cancel
            .reason()
            .map_or(String::new(), |s| format!(" by {s}"));
        println!(
            "verdict: INTERRUPTED{by}: the table covers the runs that completed; a run cut short counts neither as passed nor as failed."
        );
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, &table).map_err(|e| Error::io(p, e))?;
    }
    if let Some(p) = &a.json {
        let doc =
            serde_json::json!({ "schema": "zdt-check/compare/v1", "rows": rows, "runs": all });
        std::fs::write(
            p,
            serde_json::to_string_pretty(&doc).expect("serializes") + "\n",
        )
        .map_err(|e| Error::io(p, e))?;
    }
    if let Some(p) = &a.html {
        crate::compare::html::write(p, &compared)?;
    }
    if let Some(p) = &a.junit {
        crate::compare::junit::write(p, &compared)?;
    }
    Ok(if cancel.is_cancelled() { EXIT_ERROR } else { 0 })
}

/// `--until-bound`: a failure rate, `0.1%` or `0.001`, above 0 and below 1.
fn parse_rate_target(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| {
        format!("`{s}` is not a rate: write a percentage (`0.1%`) or a share (`0.001`)")
    })?;
    let v = v / scale;
    if !(v > 0.0 && v < 1.0) {
        return Err(format!(
            "`{s}` is out of range: a failure rate above 0 and below 100%"
        ));
    }
    Ok(v)
}

/// `--rate` and `--connections` of `load` and `compare`: the bounds of `load.rate` and
/// `load.connections` (`load::limits`), the connections within the open-file limit.
fn check_load_flags(rate: Option<f64>, connections: Option<usize>) -> Result<()> {
    if let Some(why) = rate.and_then(limits::rate_problem) {
        return Err(Error::Usage(format!("--rate: {why}")));
    }
    if let Some(why) =
        connections.and_then(|c| limits::connections_problem(c, limits::nofile_soft_limit()))
    {
        return Err(Error::Usage(format!("--connections: {why}")));
    }
    Ok(())
}

/// Warns (stderr) about each open-loop scenario whose rate its connections can only
/// carry if every request takes under 1 ms (`load::limits::rate_warning`).
fn warn_about_rates(loaded: &[scenario::Loaded]) {
    for l in loaded {
        let load = &l.scenario.load;
        if load.mode.get_ref() != "open" {
            continue;
        }
        if let Some(w) = limits::rate_warning(*load.rate.get_ref(), *load.connections.get_ref()) {
            eprintln!("zdt-check: warning: {}: `load.rate`: {w}", l.name);
        }
    }
}

/// Checks every output file `flag PATH` given, before anything runs.
fn check_outputs(outputs: &[(&str, &Option<PathBuf>)]) -> Result<()> {
    for (flag, path) in outputs {
        if let Some(p) = path {
            check_output_file(flag, p)?;
        }
    }
    Ok(())
}

/// An output file must be writable: its directory exists and may be written, and it
/// is not a directory itself. The error `PATH: reason` names the flag, before any run
/// (a run can take a long time, and its report would be lost at the end).
fn check_output_file(flag: &str, path: &std::path::Path) -> Result<()> {
    let err = |e: std::io::Error| Error::Usage(format!("{flag} {}: {e}", path.display()));
    if path.is_dir() {
        return Err(err(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    writable_dir(dir).map_err(err)?;
    if path.exists() {
        writable(path).map_err(err)?;
    }
    Ok(())
}

/// An output directory (created if missing, as `--hdr-dir` is) must be a writable
/// directory, or its nearest existing ancestor must be.
fn check_output_dir(flag: &str, dir: &std::path::Path) -> Result<()> {
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(dir);
    let existing = if existing.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        existing
    };
    writable_dir(existing).map_err(|e| Error::Usage(format!("{flag} {}: {e}", dir.display())))
}

/// `dir` is a directory this process may create files in.
fn writable_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    writable(dir)
}

/// access(2) W_OK on `path`.
fn writable(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: access only reads the NUL-terminated path we own.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `zdt-check wait-ready`: 0 once the target answers 2xx, 1 if it did not in time.
async fn cmd_wait_ready(a: WaitReadyArgs) -> Result<u8> {
    let mut t = Target::parse(&a.target, Some(&a.path)).map_err(Error::Usage)?;
    apply_tls_flags(&a.tls, &a.target, &mut t)?;
    let tls = match &t.tls {
        Some(s) => Some(crate::load::tls::TlsClient::new(s).map_err(Error::Usage)?),
        None => None,
    };
    match crate::sys::readiness::wait_ready(&t.endpoint, tls.as_ref(), &t.path, a.timeout, None)
        .await
    {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("zdt-check: {e}");
            Ok(1)
        }
    }
}

/// `--ca-file`, `--insecure-skip-verify` and `--server-name` onto an https target
/// (each checked: a bad one is a usage error naming the flag).
fn apply_tls_flags(a: &TlsArgs, raw: &str, target: &mut Target) -> Result<()> {
    use crate::load::tls;
    let given = [
        ("--ca-file", a.ca_file.is_some()),
        ("--insecure-skip-verify", a.insecure_skip_verify),
        ("--server-name", a.server_name.is_some()),
    ];
    let Some(settings) = target.tls.as_mut() else {
        return match given.iter().find(|(_, g)| *g) {
            Some((flag, _)) => Err(Error::Usage(format!(
                "{flag}: only for an https:// target, and `{raw}` is not one"
            ))),
            None => Ok(()),
        };
    };
    if a.ca_file.is_some() && a.insecure_skip_verify {
        return Err(Error::Usage(
            "--ca-file and --insecure-skip-verify: give one (a CA to trust, or no verification)"
                .into(),
        ));
    }
    if let Some(name) = &a.server_name {
        if let Some(why) = tls::server_name_problem(name) {
            return Err(Error::Usage(format!("--server-name: {why}")));
        }
        settings.server_name = name.clone();
    }
    if let Some(ca) = &a.ca_file {
        tls::read_ca_file(ca).map_err(|why| Error::Usage(format!("--ca-file: {why}")))?;
        settings.ca_file = Some(ca.clone());
    }
    settings.insecure_skip_verify = a.insecure_skip_verify;
    Ok(())
}

/// `--protocol` against the target's scheme, `--streams` in range.
fn check_protocol_flags(
    protocol: crate::load::Protocol,
    streams: usize,
    target: &Target,
) -> Result<()> {
    if let Some(why) = protocol.target_problem(target.tls.is_some()) {
        return Err(Error::Usage(format!(
            "--protocol {}: {why}",
            protocol.name()
        )));
    }
    let max = crate::scenario::MAX_STREAMS;
    if !(1..=max).contains(&streams) {
        return Err(Error::Usage(format!(
            "--streams: must be 1 to {max} (concurrent HTTP/2 streams per connection)"
        )));
    }
    if streams > 1 && !protocol.is_h2() {
        return Err(Error::Usage(
            "--streams: HTTP/2 only (give --protocol h2 or h2c)".into(),
        ));
    }
    Ok(())
}

async fn cmd_load(a: LoadArgs, cancel: &Cancel) -> Result<u8> {
    let mut target = Target::parse(&a.target, a.path.as_deref()).map_err(Error::Usage)?;
    crate::load::remote::check_allowed(&target, a.allow_remote, "--allow-remote")
        .map_err(|why| Error::Usage(format!("target `{}`: {why}", a.target)))?;
    apply_tls_flags(&a.tls, &a.target, &mut target)?;
    check_load_flags(a.rate, Some(a.connections))?;
    check_outputs(&[("--json", &a.json)])?;
    if let Some(w) = a.rate.and_then(|r| limits::rate_warning(r, a.connections)) {
        eprintln!("zdt-check: warning: --rate: {w}");
    }
    let keep_alive = !a.no_keep_alive;
    let protocol = crate::load::Protocol::named(if a.h2 { "h2" } else { &a.protocol });
    check_protocol_flags(protocol, a.streams, &target)?;
    let spec = LoadSpec {
        target: target.clone(),
        mode: a.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
        connections: a.connections,
        streams: a.streams,
        keep_alive,
        reuse: crate::load::Reuse::named(&a.reuse),
        engine: crate::load::Engine::named(&a.engine),
        mix: crate::load::Mix::plain(&target, keep_alive).speaking(protocol),
        timeout: a.timeout,
        connect_timeout: a.timeout.min(Duration::from_secs(2)),
        version: VersionSpec {
            header: (!a.version_header.is_empty()).then_some(a.version_header.clone()),
            ..VersionSpec::default()
        },
        window: timeline_window(Duration::from_millis(100), a.duration),
    };
    let table = VersionTable::default();
    let started = std::time::Instant::now();
    let cpu = report::footprint::CpuMark::now();
    let mut load = LoadRun::start(spec, table.clone())
        .map_err(|e| Error::Harness(format!("starting the load: {e}")))?;
    let (engine, engine_note) = load.engine();
    let engine_note = engine_note.map(str::to_string);
    // The duration counts on the load's clock, which started inside `LoadRun::start`
    // (on a busy machine, starting the load threads can take a noticeable while).
    let end = tokio::time::Instant::from_std(load.clock().0 + a.duration);
    let interrupted = tokio::select! {
        _ = tokio::time::sleep_until(end) => false,
        _ = cancel.cancelled() => true,
    };
    load.stop_scheduling();
    let (collector, counters) = load
        .finish(if interrupted {
            Ending::Interrupted
        } else {
            Ending::Grace(a.grace.unwrap_or(a.timeout + crate::scenario::GRACE_SLACK))
        })
        .await?;
    let footprint = cpu.footprint();
    let stats = collector.finish(&counters, &table.names());
    let mut r = RunReport {
        scenario: "-".into(),
        name: format!("load {}", a.target),
        strategy: "none".into(),
        scenario_hash: String::new(),
        baseline: None,
        load: Some(LoadSummary {
            mode: if a.rate.is_some() {
                "open".into()
            } else {
                "closed".into()
            },
            rate: a.rate,
            connections: a.connections,
            keep_alive,
            protocol: protocol.name().into(),
            streams: a.streams,
            target: crate::load::remote::describe(&target),
            engine: engine.name().into(),
            engine_note,
        }),
        steps: Vec::new(),
        stats: Some(stats),
        footprint: Some(footprint),
        websockets: None,
        verdict: None,
        error: None,
        interrupted,
        interrupted_by: cancel.reason().filter(|_| interrupted).map(str::to_string),
        run_dir: None,
        leftovers: Vec::new(),
        result: RunResult::Error,
        exit_code: EXIT_ERROR,
        duration_s: started.elapsed().as_secs_f64(),
    };
    r.conclude();
    print!("{}", report::terminal::render(&r));
    if let Some(path) = &a.json {
        report::json::write(path, std::slice::from_ref(&r))?;
    }
    Ok(r.exit_code)
}

/// The signal policy: the first SIGINT or SIGTERM raises the returned flag, naming
/// the signal (the run stops cleanly and reports INTERRUPTED by it); a second kills every child process group
/// and exits 130 at once.
pub fn cancel_on_signals() -> std::io::Result<Cancel> {
    use tokio::signal::unix::{signal, SignalKind};
    let cancel = Cancel::new();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            seen += 1;
            if seen == 1 {
                eprintln!(
                    "zdt-check: interrupted by {name}; stopping the run (again to abort at once)"
                );
                c.cancel_because(name);
            } else {
                crate::sys::groups::kill_all_groups();
                std::process::exit(130);
            }
        }
    });
    Ok(cancel)
}
