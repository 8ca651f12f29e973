//! Hostile servers: a table of servers that misbehave on purpose (false lengths,
//! endless streams, junk, resets), each run under `zdt-check load` on loopback. Every
//! request must end in the class the case names, whatever the timing, and the load
//! process's peak RSS must stay under a bound: a server cannot fool, crash or bloat
//! the verifier.
//!
//! The servers are threads of this test process (nothing installed); each case runs
//! about a second.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{bin, engines, serial};

/// What a server does with one accepted connection; `stop` is set when the run is over.
type Behave = fn(&mut TcpStream, &AtomicBool);

/// Peak RSS allowed for `zdt-check load` in every case (the debug build).
const RSS_BOUND_KB: u64 = 64 * 1024;

/// Reads one request head (up to the blank line); false if the client went away.
fn read_request(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    true
}

/// Answers every request on the connection with `bytes`.
fn answer_each(s: &mut TcpStream, bytes: &[u8]) {
    while read_request(s) {
        if s.write_all(bytes).is_err() {
            return;
        }
    }
}

/// Holds the connection open, sending nothing more, until the run is over.
fn hold(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `piece` over and over until the client goes away or the run is over.
fn endless(s: &mut TcpStream, stop: &AtomicBool, piece: &[u8]) {
    while !stop.load(Ordering::Relaxed) && s.write_all(piece).is_ok() {}
}

fn head_then_hold(s: &mut TcpStream, stop: &AtomicBool, head: &[u8]) {
    if read_request(s) && s.write_all(head).is_ok() {
        hold(stop);
    }
}

fn head_then_endless(s: &mut TcpStream, stop: &AtomicBool, head: &[u8], piece: &[u8]) {
    if read_request(s) && s.write_all(head).is_ok() {
        endless(s, stop, piece);
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

/// One hostile case: the server, the load it gets, the class every request must end in.
struct Case {
    name: &'static str,
    behave: Behave,
    /// Extra `zdt-check load` arguments (the defaults: 8 connections at 10 req/s for 600 ms, 300 ms timeout).
    args: &'static [&'static str],
    /// The class every scheduled request must end in.
    class: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "content_length_near_2_64",
        behave: |s, stop| {
            head_then_hold(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551600\r\n\r\n",
            )
        },
        args: &[],
        class: "protocol_error",
    },
    Case {
        name: "content_length_2gb_streamed",
        behave: |s, stop| {
            head_then_endless(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n",
                &[b'x'; 65536],
            )
        },
        args: &[],
        class: "timeout",
    },
    Case {
        name: "chunked_100mb_valid",
        behave: |s, _| {
            if !read_request(s) || s.write_all(CHUNKED).is_err() {
                return;
            }
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend_from_slice(&[b'x'; 65536]);
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..1600 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
            let _ = read_request(s);
        },
        args: &["-c", "1", "--rate", "1", "--timeout", "20s"],
        class: "ok",
    },
    Case {
        name: "chunk_size_of_281_tb_then_zeros",
        behave: |s, stop| {
            head_then_endless(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n",
                &[0u8; 65536],
            )
        },
        args: &[],
        class: "timeout",
    },
    Case {
        name: "chunk_size_overflowing_64_bits",
        behave: |s, stop| {
            head_then_hold(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFFF\r\nxx",
            )
        },
        args: &[],
        class: "protocol_error",
    },
    Case {
        name: "endless_trailers",
        behave: |s, stop| {
            head_then_endless(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                b"X-Trailer: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            )
        },
        args: &[],
        class: "oversize",
    },
    Case {
        name: "endless_head",
        behave: |s, stop| {
            head_then_endless(
                s,
                stop,
                b"HTTP/1.1 200 OK\r\n",
                b"X-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            )
        },
        args: &[],
        class: "oversize",
    },
    Case {
        name: "interim_100_and_103_before_the_response",
        behave: |s, _| {
            answer_each(
                s,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            )
        },
        args: &[],
        class: "ok",
    },
    Case {
        name: "a_hundred_header_fields",
        behave: |s, _| {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..100 {
                r.extend_from_slice(format!("X-Field-{i}: {i}\r\n").as_bytes());
            }
            r.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
            answer_each(s, &r)
        },
        args: &[],
        class: "ok",
    },
    Case {
        name: "body_longer_than_content_length_same_write",
        behave: |s, _| answer_each(s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
        args: &["-c", "1"],
        class: "protocol_error",
    },
    Case {
        name: "body_longer_than_content_length_20ms_later",
        behave: |s, _| {
            while read_request(s) {
                if s.write_all(OK).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                if s.write_all(b"EXTRA").is_err() {
                    return;
                }
            }
        },
        // The schedule ends 50 ms after the last send: its junk is in by then.
        args: &["-c", "1", "-d", "550ms"],
        class: "protocol_error",
    },
    Case {
        name: "no_content_with_a_body",
        behave: |s, _| answer_each(s, b"HTTP/1.1 204 No Content\r\n\r\nhello"),
        args: &["-c", "1"],
        class: "protocol_error",
    },
    Case {
        name: "switching_protocols_unasked",
        behave: |s, stop| {
            head_then_hold(s, stop, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        },
        args: &[],
        class: "protocol_error",
    },
    Case {
        name: "reset_right_after_accept",
        behave: |s, _| reset_on_close(s),
        args: &["--no-keep-alive", "--rate", "100"],
        class: "reset_fresh",
    },
    Case {
        name: "slowloris_head",
        behave: |s, stop| {
            if !read_request(s) {
                return;
            }
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().cycle() {
                if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        },
        args: &[],
        class: "timeout",
    },
    Case {
        name: "never_answers",
        behave: |s, stop| {
            if read_request(s) {
                hold(stop)
            }
        },
        args: &[],
        class: "timeout",
    },
    Case {
        name: "garbage",
        behave: |s, _| answer_each(s, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
        args: &[],
        class: "protocol_error",
    },
    Case {
        name: "endless_chunked_stream",
        behave: |s, stop| {
            let mut chunk = b"400\r\n".to_vec();
            chunk.extend_from_slice(&[b'x'; 1024]);
            chunk.extend_from_slice(b"\r\n");
            head_then_endless(s, stop, CHUNKED, &chunk)
        },
        args: &[],
        class: "timeout",
    },
    Case {
        name: "endless_body_until_close",
        behave: |s, stop| head_then_endless(s, stop, b"HTTP/1.1 200 OK\r\n\r\n", &[b'x'; 65536]),
        args: &[],
        class: "timeout",
    },
    Case {
        name: "body_cut_short",
        behave: |s, _| {
            if read_request(s) {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
            }
        },
        args: &[],
        class: "truncated",
    },
    Case {
        name: "service_unavailable",
        behave: |s, _| {
            answer_each(
                s,
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            )
        },
        args: &[],
        class: "http_5xx",
    },
];

/// A listener on a free loopback port running `behave` on every connection, until dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(behave: Behave) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let flag = flag.clone();
                        conns.push(std::thread::spawn(move || behave(&mut s, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one `zdt-check load` run gave: its report's stats, exit code and peak RSS.
struct Ran {
    stats: Value,
    /// The report's load summary (engine and engine_note among it).
    load: Value,
    code: i32,
    peak_rss_kb: u64,
    output: String,
}

/// Runs `zdt-check load` at the server and waits for it (bounded), reading its peak RSS
/// (VmHWM) as it runs: `ru_maxrss` would not do, Linux carries it over an exec from the
/// forking test process.
fn load(port: u16, extra: &[&str]) -> Ran {
    load_env(port, extra, &[])
}

/// [`load`] with environment variables set for `zdt-check`.
fn load_env(port: u16, extra: &[&str], env: &[(&str, &str)]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let out_path = dir.path().join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut args: Vec<&str> = vec![
        "-c",
        "8",
        "--rate",
        "10",
        "-d",
        "600ms",
        "--timeout",
        "300ms",
        "--grace",
        "1s",
    ];
    // A case's flag replaces the default's value; the others are added.
    let mut rest = extra.iter();
    while let Some(&flag) = rest.next() {
        match args.iter().position(|a| *a == flag) {
            Some(i) => args[i + 1] = rest.next().unwrap(),
            None => args.push(flag),
        }
    }
    let mut cmd = bin();
    cmd.arg("load")
        .arg(format!("http://127.0.0.1:{port}/"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // Reaped by the waitpid below, not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut peak_rss_kb = 0;
    let code = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak_rss_kb = peak_rss_kb.max(hwm.unwrap_or(0));
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child's pid, with a valid pointer to a local.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
        }
        if started.elapsed() > Duration::from_secs(60) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .unwrap_or(Value::Null);
    Ran {
        stats: report["runs"][0]["stats"].clone(),
        load: report["runs"][0]["load"].clone(),
        code,
        peak_rss_kb,
        output,
    }
}

/// Runs one case on `engine`; returns its line for the table, or why it failed.
fn run_case(case: &Case, engine: &str) -> Result<String, String> {
    let server = Server::start(case.behave);
    let args = [case.args, &["--engine", engine]].concat();
    let ran = load(server.port, &args);
    drop(server);
    if ran.output.contains("epoll runs") {
        return Err(format!(
            "{}: the {engine} engine did not run\n{}",
            case.name, ran.output
        ));
    }
    let s = &ran.stats;
    let scheduled = s["scheduled"].as_u64().unwrap_or(0);
    let classes: Vec<String> = s["classes"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64() != Some(0))
                .map(|(k, v)| format!("{k} {v}"))
                .collect()
        })
        .unwrap_or_default();
    let line = format!(
        "| {} | {} | {} MB | exit {} |",
        case.name,
        classes.join(", "),
        ran.peak_rss_kb / 1024,
        ran.code
    );
    let got = s["classes"][case.class].as_u64().unwrap_or(0);
    if scheduled == 0 || got != scheduled || s["identity_holds"] != true {
        return Err(format!(
            "{line}\n  every one of {scheduled} requests should be {}\n{}",
            case.class, ran.output
        ));
    }
    if ran.peak_rss_kb > RSS_BOUND_KB {
        return Err(format!("{line}\n  peak RSS over {RSS_BOUND_KB} KB"));
    }
    if ran.code != 1 && case.class != "ok" || ran.code != 0 && case.class == "ok" {
        return Err(format!("{line}\n  exit code\n{}", ran.output));
    }
    Ok(line)
}

#[test]
fn hostile_servers_get_their_class_within_bounded_memory() {
    every_case_on("epoll");
}

#[test]
fn hostile_servers_get_the_same_class_on_the_io_uring_engine() {
    if engines().contains(&"io_uring") {
        every_case_on("io_uring");
    }
}

/// Runs every case (those named in `ZDT_HOSTILE` only, if set) on `engine`.
fn every_case_on(engine: &str) {
    let _g = serial();
    let only = std::env::var("ZDT_HOSTILE").ok();
    let mut failed = Vec::new();
    for case in CASES {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        match run_case(case, engine) {
            Ok(line) => eprintln!("{line}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(case.name);
            }
        }
    }
    assert!(failed.is_empty(), "hostile cases failed: {failed:?}");
}

#[test]
fn idle_connections_closed_by_the_server_are_reopened_like_a_pooled_client() {
    let _g = serial();
    // Each connection is closed 50 ms after its response; requests on it come every
    // 200 ms. A pooled client sees the close before reusing the connection and opens
    // a new one; a naive one sends into it and fails with reset_reused.
    let behave: Behave = |s, _| {
        if read_request(s) && s.write_all(OK).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let server = Server::start(behave);
    for engine in engines() {
        let args = ["-c", "1", "--rate", "5", "-d", "1s", "--engine", engine];
        let pooled = load(server.port, &args);
        let naive = load(server.port, &[&args[..], &["--reuse", "naive"]].concat());
        let (p, n) = (&pooled.stats, &naive.stats);
        assert_eq!(
            p["ok"], p["scheduled"],
            "{engine} pooled: {}",
            pooled.output
        );
        assert!(
            p["stale_closes"].as_u64().unwrap() >= 3,
            "{engine}: {}",
            pooled.output
        );
        let resets = n["classes"]["reset_reused"].as_u64().unwrap_or(0);
        assert!(resets >= 2, "{engine} naive: {}", naive.output);
        assert_eq!(n["stale_closes"], 0, "{engine}: {}", naive.output);
    }
    drop(server);
}

/// The classes with a non-zero count, and whether the identity holds.
/// Sets SO_LINGER 0 on `s`: its close, when it drops, sends an RST.
fn reset_on_close(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a valid linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn classes(ran: &Ran) -> (Vec<String>, bool) {
    let s = &ran.stats;
    let mut got: Vec<String> = s["classes"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64() != Some(0))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    got.sort();
    (got, s["identity_holds"] == true)
}

#[test]
fn both_engines_tell_refused_connects_and_resets_of_reused_connections_apart() {
    let _g = serial();
    // Nothing listens on the port: every connect is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Each connection answers its first request and resets on its second.
    let behave: Behave = |s, _| {
        if read_request(s) && s.write_all(OK).is_ok() && read_request(s) {
            reset_on_close(s);
        }
    };
    let server = Server::start(behave);
    for engine in engines() {
        let refused = load(port, &["--engine", engine]);
        assert!(!refused.output.contains("epoll runs"), "{}", refused.output);
        assert_eq!(
            classes(&refused),
            (vec!["connect_refused".to_string()], true),
            "{engine}: {}",
            refused.output
        );
        let reset = load(server.port, &["-c", "1", "--engine", engine]);
        assert_eq!(
            classes(&reset),
            (vec!["ok".to_string(), "reset_reused".to_string()], true),
            "{engine}: {}",
            reset.output
        );
        let fresh = load(server.port, &["--no-keep-alive", "--engine", engine]);
        assert_eq!(
            classes(&fresh),
            (vec!["ok".to_string()], true),
            "{engine}: {}",
            fresh.output
        );
    }
    drop(server);
}

#[test]
fn io_uring_refused_by_the_kernel_falls_back_to_epoll_with_one_line() {
    let _g = serial();
    let server = Server::start(|s, _| answer_each(s, OK));
    for errno in ["EPERM", "ENOSYS"] {
        let ran = load_env(
            server.port,
            &["--engine", "io_uring"],
            &[("ZDT_IO_URING_FORCE_FAIL", errno)],
        );
        let notes: Vec<&str> = ran
            .output
            .lines()
            .filter(|l| l.contains("io_uring"))
            .collect();
        assert_eq!(notes.len(), 1, "{}", ran.output);
        assert!(notes[0].contains("io_uring unavailable") && notes[0].contains("epoll runs"));
        // The same line is in the report, beside the engine that ran.
        assert_eq!(ran.load["engine"], "epoll", "{}", ran.load);
        assert_eq!(
            notes[0].trim_start_matches("note: "),
            ran.load["engine_note"].as_str().unwrap_or_default(),
            "{}",
            ran.output
        );
        assert_eq!(ran.code, 0, "{}", ran.output);
        assert_eq!(
            classes(&ran),
            (vec!["ok".to_string()], true),
            "{}",
            ran.output
        );
    }
    drop(server);
}
