//! One scenario run, start to finish: run dir, topology, load (and the websockets
//! held across the reload), reload, cool-down, grace, shutdown, verdict. Children are stopped and the run dir removed on
//! every path out, errors and Ctrl-C included.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::app::AppEnv;
use crate::cancel::Cancel;
use crate::error::{Error, Result, EXIT_ERROR};
use crate::load::{Ending, LoadRun, LoadSpec, Mix, Mode, RequestKind, Target, VersionSpec};
use crate::report::footprint::CpuMark;
use crate::report::{LoadSummary, RunReport, RunResult};
use crate::scenario::{Loaded, Scenario, WebsocketsConfig};
use crate::stats::collector::timeline_window;
use crate::stats::versions::VersionTable;
use crate::steps::StepLog;
use crate::strategy::{self, Ctx};
use crate::sys::orphans;
use crate::verdict::baseline::{self, Baseline};
use crate::verdict::{self, Judged};
use crate::websocket::{WsRun, WsSpec};

/// Options that are not part of the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Keep the run directory (sockets, configs, logs) instead of removing it.
    pub keep_run_dir: bool,
    /// The zdt-check binary, to start the built-in fixture.
    pub exe: PathBuf,
    /// Show live progress on stderr.
    pub progress: bool,
    /// The stored report each run is judged against (`--baseline`), checked before any run.
    pub baseline: Option<std::sync::Arc<Baseline>>,
}

/// Runs `sc` to the end (or until `cancel`), always returning a report.
pub async fn run(sc: &Loaded, opts: &RunOptions, cancel: &Cancel) -> RunReport {
    let started = std::time::Instant::now();
    let mut report = RunReport {
        scenario: sc.path.display().to_string(),
        name: sc.name.clone(),
        strategy: sc.scenario.reload.strategy.get_ref().clone(),
        scenario_hash: sc.scenario_hash(),
        baseline: None,
        load: None,
        steps: Vec::new(),
        stats: None,
        footprint: None,
        websockets: None,
        verdict: None,
        error: None,
        interrupted: false,
        interrupted_by: None,
        run_dir: None,
        leftovers: Vec::new(),
        result: RunResult::Error,
        exit_code: EXIT_ERROR,
        duration_s: 0.0,
    };
    let dir = match make_run_dir() {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(e.to_string());
            report.duration_s = started.elapsed().as_secs_f64();
            return report;
        }
    };
    // If the harness is SIGKILLed, the reaper removes the dir after killing the groups
    // (unless it is to be kept).
    if !opts.keep_run_dir {
        crate::sys::reaper::note_dir(true, dir.path());
    }
    let mut ctx = Ctx {
        app: AppEnv {
            run_dir: dir.path().to_path_buf(),
            config: sc.scenario.app.clone(),
            exe: opts.exe.clone(),
            has_front: sc
                .scenario
                .front
                .as_ref()
                .is_some_and(|f| f.kind() == "nginx"),
            ports: crate::app::external::pick_ports().unwrap_or_default(),
            target_trust: sc.scenario.load.trust(),
        },
        front: None,
        front_config: sc.scenario.front.clone(),
        steps: StepLog::default(),
        deploys: sc.scenario.deploys().len(),
        not_cleaned_up: Vec::new(),
        cert_rotation: None,
    };
    let mut strat = strategy::build(&sc.scenario.reload, &sc.dir);
    let zombies = orphans::ZombieReaper::start();
    run_inner(
        &sc.scenario,
        &mut ctx,
        strat.as_mut(),
        cancel,
        &mut report,
        opts.progress,
        opts.baseline.clone(),
    )
    .await;
    // Whatever happened, nothing outlives the run.
    strat.shutdown(&mut ctx).await;
    // What could not be cleaned up (test hosts still there) is a harness error: a run
    // that leaves them behind does not pass.
    report.error = with_not_cleaned_up(report.error.take(), &ctx.not_cleaned_up);
    if let Some(mut front) = ctx.front.take() {
        front.stop().await;
    }
    // What the stack left behind outside every group we know (daemons, orphans of a
    // dead supervisor): killed now, and named in the report.
    drop(zombies);
    report.leftovers = orphans::sweep_orphans(sc.scenario.app.stop_timeout.0).await;
    report.steps = std::mem::take(&mut ctx.steps.events);
    if opts.keep_run_dir {
        report.run_dir = Some(dir.keep().display().to_string());
    } else {
        let path = dir.path().to_path_buf();
        drop(dir);
        crate::sys::reaper::note_dir(false, &path);
    }
    if report.interrupted {
        report.interrupted_by = cancel.reason().map(str::to_string);
        // Cut short, it proves nothing about the server: what did not hold is not judged.
        if let Some(v) = &mut report.verdict {
            v.interrupted(cancel.reason().unwrap_or("a signal"));
        }
    }
    report.conclude();
    report.duration_s = started.elapsed().as_secs_f64();
    report
}

/// The run's error with what shutdown could not clean up added (a harness error of its
/// own when the run had none).
fn with_not_cleaned_up(error: Option<String>, not_cleaned_up: &[String]) -> Option<String> {
    if not_cleaned_up.is_empty() {
        return error;
    }
    let left = format!("left behind: {}", not_cleaned_up.join("; "));
    Some(match error {
        Some(e) => format!("{e}; and {left}"),
        None => left,
    })
}

/// A private run directory: mode 0700, removed on drop.
fn make_run_dir() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("zdt-check-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(dir.path(), e))?;
    Ok(dir)
}

/// Awaits `fut` unless `cancel` fires first.
async fn or_cancel<T>(cancel: &Cancel, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        _ = cancel.cancelled() => None,
    }
}

async fn run_inner(
    sc: &Scenario,
    ctx: &mut Ctx,
    strat: &mut dyn strategy::Strategy,
    cancel: &Cancel,
    report: &mut RunReport,
    show_progress: bool,
    baseline: Option<std::sync::Arc<Baseline>>,
) {
    let versions = sc.app.versions();
    let first = versions.first().map_or("", String::as_str);
    let target = match or_cancel(cancel, strat.start(ctx, first)).await {
        None => {
            report.interrupted = true;
            return;
        }
        Some(Err(e)) => {
            report.error = Some(if first.is_empty() {
                format!("starting the stack: {e}")
            } else {
                format!("starting {first}: {e}")
            });
            return;
        }
        Some(Ok(t)) => t,
    };
    let ws_spec = sc
        .websockets
        .as_ref()
        .filter(|w| w.enabled())
        .map(|w| ws_spec(w, &target));
    let spec = match load_spec(sc, target) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.to_string());
            return;
        }
    };
    report.load = Some(LoadSummary {
        mode: sc.load.mode.get_ref().clone(),
        rate: matches!(spec.mode, Mode::Open { .. }).then_some(*sc.load.rate.get_ref()),
        connections: spec.connections,
        // HTTP/2 streams share their connections whatever `load.keep_alive` says.
        keep_alive: spec.keep_alive || !spec.mix.protocols().split('+').any(|p| p == "h1"),
        protocol: spec.mix.protocols(),
        streams: spec.streams,
        target: crate::load::remote::describe(&spec.target),
        engine: spec.engine.name().into(),
        engine_note: None,
    });
    let table = VersionTable::default();
    // The verifier's own CPU from load start to load finish (the app's children excluded).
    let cpu = CpuMark::now();
    let mut load = match LoadRun::start(spec, table.clone()) {
        Ok(l) => l,
        Err(e) => {
            report.error = Some(format!("starting the load: {e}"));
            return;
        }
    };
    let (engine, note) = load.engine();
    if let Some(l) = report.load.as_mut() {
        l.engine = engine.name().into();
        l.engine_note = note.map(str::to_string);
    }
    ctx.steps.set_clock(load.clock());
    let ws = ws_spec.map(|w| WsRun::start(w, load.clock()));
    let status = crate::progress::Status::default();
    status.set("warm-up");
    let expected = expected_duration(sc);
    let progress = show_progress.then(|| {
        crate::progress::start(
            report.name.clone(),
            load.shared(),
            load.clock(),
            status.clone(),
            ctx.steps.last.clone(),
            expected,
        )
    });

    let mut reload_error = None;
    // The warm-up counts on the load's clock (starting the load threads can take a while).
    let warm = tokio::time::Instant::from_std(load.clock().0 + sc.load.warmup.0);
    let mut interrupted = or_cancel(cancel, tokio::time::sleep_until(warm))
        .await
        .is_none();
    let mut reloads = Vec::new();
    for (i, version) in sc.deploys().iter().enumerate() {
        if interrupted {
            break;
        }
        if i > 0 {
            let interval = sc.reload.interval.map_or(Duration::from_secs(1), |d| d.0);
            if or_cancel(cancel, tokio::time::sleep(interval))
                .await
                .is_none()
            {
                interrupted = true;
                break;
            }
        }
        let what = if version.is_empty() {
            format!("deploy {}", i + 1)
        } else {
            format!("reload to {version}")
        };
        status.set(what.clone());
        load.mark_reload_start();
        let t = ctx.steps.now_ms();
        let result = or_cancel(cancel, strat.reload(ctx, version)).await;
        reloads.push((t, ctx.steps.now_ms()));
        match result {
            None => interrupted = true,
            Some(Err(e)) => {
                reload_error = Some(format!("{what}: {e}"));
                break;
            }
            Some(Ok(())) => {}
        }
    }
    load.mark_reload_end();
    crate::error::test_panic_point("run");
    if !interrupted {
        status.set("cool-down");
        interrupted = or_cancel(cancel, tokio::time::sleep(sc.load.cooldown.0))
            .await
            .is_none();
    }
    status.set("grace");
    load.stop_scheduling();
    // An interruption abandons the requests in flight at once: they count as
    // interrupted, not as the server's failures.
    let ending = if interrupted {
        Ending::Interrupted
    } else {
        Ending::Grace(sc.load.grace())
    };
    // The websockets still open are closed by the client (bounded) while the load's
    // requests in flight finish.
    let ws_done = async {
        match ws {
            Some(ws) => Some(ws.finish().await),
            None => None,
        }
    };
    let (ws_report, finished) = tokio::join!(ws_done, load.finish(ending));
    report.footprint = Some(cpu.footprint());
    if let Some(p) = progress {
        p.finish();
    }
    report.interrupted = interrupted;
    // A harness thread that panicked: a harness error, nothing judged (its requests
    // would otherwise look hung).
    let (collector, counters) = match finished {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(e.to_string());
            report.websockets = ws_report;
            return;
        }
    };
    let mut collector = collector;
    ctx.steps.measure_exposure(&collector.take_exposure());
    let stats = collector.finish(&counters, &table.names());
    let mut v = verdict::judge(
        &stats,
        &Judged {
            assert: &sc.assert,
            versions,
            reloads: &reloads,
            version_source: !sc.load.version_header.is_empty() || sc.load.version_regex.is_some(),
            steps: &ctx.steps.events,
            reload_error: reload_error.as_deref(),
        },
    );
    if let (Some(w), Some(cfg)) = (&ws_report, &sc.websockets) {
        v.push(verdict::websockets_dropped(w, cfg.max_dropped));
    }
    if let Some(rotation) = &ctx.cert_rotation {
        let certs = stats.tls.as_ref().map_or(&[][..], |t| &t.certs[..]);
        let after_ms = reloads.last().map_or(0.0, |r| r.1);
        v.push(verdict::cert::new_cert_served(certs, rotation, after_ms));
    }
    if let Some(b) = &baseline {
        // Checked before the run, so the scenario is in it.
        if let Ok(figures) = b.for_scenario(&report.name, &report.scenario_hash) {
            let c = baseline::compare(
                &b.path,
                b.runs_of(&report.name),
                &figures,
                &baseline::figures(&stats),
                &sc.assert.baseline.tolerances(),
            );
            for check in baseline::checks(&c) {
                v.push(check);
            }
            report.baseline = Some(c);
        }
    }
    report.websockets = ws_report;
    report.stats = Some(stats);
    report.verdict = Some(v);
}

/// About how long the load of a run of `sc` lasts: warm-up, each new version's
/// start-up, cool-down (for the progress bar and the timeline's resolution).
fn expected_duration(sc: &Scenario) -> Duration {
    sc.load.warmup.0
        + sc.load.cooldown.0
        + sc.app.startup_delay() * sc.deploys().len() as u32
        + Duration::from_secs(1)
}

/// The websocket connections' settings, aimed at the load's own `target`.
fn ws_spec(w: &WebsocketsConfig, target: &Target) -> WsSpec {
    WsSpec {
        endpoint: target.endpoint.clone(),
        host: target.host.clone(),
        path: w.path.get_ref().clone(),
        connections: *w.connections.get_ref(),
        interval: w.interval.get_ref().0,
        timeout: w.timeout.get_ref().0,
        reconnect: w.reconnect,
    }
}

/// The load generator's settings for a scenario, aimed at `target`.
pub fn load_spec(sc: &Scenario, mut target: Target) -> Result<LoadSpec> {
    let l = &sc.load;
    target.path = l.path.get_ref().clone();
    l.apply_tls(&mut target)?;
    let body_regex = match &l.version_regex {
        Some(re) => {
            Some(regex::bytes::Regex::new(re.get_ref()).map_err(|e| Error::Usage(e.to_string()))?)
        }
        None => None,
    };
    let mix = if l.mix.is_empty() {
        Mix::plain(&target, l.keep_alive)
            .speaking(crate::load::Protocol::named(l.protocol.get_ref()))
    } else {
        let kinds = l
            .mix
            .iter()
            .map(|k| {
                let mut kind = RequestKind::new(
                    k.name.get_ref(),
                    *k.weight.get_ref(),
                    k.method.get_ref(),
                    k.path(l),
                    &k.headers(),
                    k.body_len() as usize,
                    k.upload(),
                    k.keep_alive(l),
                    k.echo,
                    &target,
                );
                kind.set_protocol(k.protocol(l));
                kind
            })
            .collect();
        Mix::new(kinds, l.seed)
    };
    Ok(LoadSpec {
        mix,
        target,
        mode: match l.mode.get_ref().as_str() {
            "closed" => Mode::Closed,
            _ => Mode::Open {
                rate: *l.rate.get_ref(),
            },
        },
        connections: *l.connections.get_ref(),
        streams: *l.streams.get_ref(),
        keep_alive: l.keep_alive,
        reuse: crate::load::Reuse::named(l.reuse.get_ref()),
        engine: crate::load::Engine::named(l.engine.get_ref()),
        timeout: l.timeout.get_ref().0,
        connect_timeout: l.connect_timeout.get_ref().0,
        version: VersionSpec {
            header: (!l.version_header.is_empty()).then(|| l.version_header.clone()),
            body_regex,
            expected: sc.app.versions().to_vec(),
        },
        window: timeline_window(l.window.get_ref().0, expected_duration(sc)),
    })
}

#[cfg(test)]
mod tests {
    use super::with_not_cleaned_up;

    #[test]
    fn what_was_not_cleaned_up_is_a_harness_error() {
        assert_eq!(with_not_cleaned_up(None, &[]), None);
        assert_eq!(with_not_cleaned_up(Some("x".into()), &[]), Some("x".into()));
        let left = ["test hosts not removed: zdt1h1".to_string()];
        assert_eq!(
            with_not_cleaned_up(None, &left).as_deref(),
            Some("left behind: test hosts not removed: zdt1h1")
        );
        assert_eq!(
            with_not_cleaned_up(Some("starting v1: boom".into()), &left).as_deref(),
            Some("starting v1: boom; and left behind: test hosts not removed: zdt1h1")
        );
    }
}
