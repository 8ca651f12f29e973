//! Test hosts: network namespaces the harness creates for a run and removes after it.
//!
//! Host `i` (from 1) of a run is the namespace `zdt<pid>h<i>` (the harness's pid, so
//! names are unique per run and fit IFNAMSIZ), joined to the harness's namespace by a
//! veth pair: the host side is named like the namespace and has
//! `10.201.K.(4(i-1)+1)/30`, the side inside is `eth0` with `10.201.K.(4(i-1)+2)/30`
//! (and `lo` is up): `zdt<pid>h1` has `.1` and `.2`, `zdt<pid>h2` `.5` and `.6`. `K` is
//! the first third octet no address or route on the machine uses yet, so a run started
//! while another one has its hosts gets another block: runs choose `K` and create their
//! links one at a time, under an exclusive lock on [`LOCK_FILE`], and a run checks that
//! each of its addresses is routed over its own veth before it goes on. Nothing else is
//! routed: traffic to a test host goes over its veth and nowhere else, also while its
//! link is down (the route stays, marked `linkdown`; creation refuses to go on if
//! `ignore_routes_with_linkdown` would drop it).
//!
//! Removal (`ip link del` of the host side, which takes the pair, then `ip netns
//! del`) runs on [`TestHosts::remove`], on drop (errors, panics that unwind), and, if
//! the harness is killed (SIGKILL, a second Ctrl-C), in the reaper, which is told
//! each name before it is created. If the reaper dies with the harness too (the whole
//! container killed), the next run that creates test hosts removes (under the lock)
//! those of runs whose pid is gone and whose namespace has no process left (a run in
//! another PID namespace has pids that mean nothing here, but its instances are in
//! its namespaces) ([`TestHosts::create`]); `ip netns list` shows them until then.
//!
//! Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): without it the
//! error says so, and the run is a harness error (exit 2).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bounded::run_bounded;
use crate::error::{Error, Result};

/// Every test host's name starts with this, then the harness's pid, `h` and its index.
pub const PREFIX: &str = "zdt";
/// The interface inside each namespace.
pub const INNER_IF: &str = "eth0";
/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);
/// The lock file that makes runs choose their block and create their links (and
/// remove those of dead runs) one at a time.
pub const LOCK_FILE: &str = "/run/zdt-check-netns.lock";
/// How long a run waits for the lock (another run creating its hosts holds it for
/// well under a second per host).
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// An exclusive flock(2) on a lock file, held until dropped (the file is closed).
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] std::fs::File);

/// Takes the exclusive lock on `path` (created with mode 0600 if missing; never
/// through a symlink), waiting at most `timeout` for whoever holds it.
pub fn lock(path: &Path, timeout: Duration) -> Result<Lock> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            let why = format!("opening the lock file {}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Error::Harness(format!(
                    "cannot create test hosts (network namespaces, for hosts = \"netns\"); \
                     this needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): {why}"
                ))
            } else {
                Error::Harness(format!("test hosts: {why}"))
            }
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: flock(2) on a file descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Lock(f));
        }
        let e = std::io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR)
        ) {
            return Err(Error::Harness(format!(
                "test hosts: locking {}: {e}",
                path.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::Harness(format!(
                "test hosts: another run held the lock {} for {timeout:?} (it creates its \
                 test hosts under it); nothing was created",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One test host: a network namespace and its veth link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestHost {
    /// The namespace's name, also the name of its veth's host side.
    pub name: String,
    /// The host side's address (the harness's end of the link).
    pub gateway: Ipv4Addr,
    /// The address inside the namespace, where its app listens.
    pub addr: Ipv4Addr,
}

impl TestHost {
    /// The namespace's file, for setns(2) (see [`super::spawn_netns::in_netns`]).
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

/// The name of host `i` of the run with pid `pid`: `zdt<pid>h<i>` (at most 15 bytes).
pub fn host_name(pid: u32, i: usize) -> String {
    format!("{PREFIX}{pid}h{i}")
}

/// The pid of the run a test host name belongs to, if it is one of ours.
pub fn owner_pid(name: &str) -> Option<u32> {
    let (pid, index) = name.strip_prefix(PREFIX)?.split_once('h')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(index)).then(|| pid.parse().ok())?
}

/// The `ip` program (iproute2).
fn ip_bin() -> Result<PathBuf> {
    super::tools::on_path("ip")
        .or_else(|| Some(PathBuf::from("/usr/sbin/ip")).filter(|p| p.exists()))
        .or_else(|| Some(PathBuf::from("/sbin/ip")).filter(|p| p.exists()))
        .ok_or_else(|| {
            Error::Harness(
                "test hosts need `ip` (iproute2): run `bash .ci/install-servers.sh`".into(),
            )
        })
}

/// Runs `ip args` with `input` on stdin; its stdout, or an error with its stderr.
fn ip(args: &[&str], input: &str) -> Result<String> {
    let bin = ip_bin()?;
    let out = run_bounded(&bin, args, input, IP_TIMEOUT)
        .map_err(|e| Error::Harness(format!("ip {}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Harness(format!(
            "ip {} ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The namespaces and host-side links named like test hosts (any run's) that exist now.
pub fn existing() -> Result<(Vec<String>, Vec<String>)> {
    let netns = ip(&["netns", "list"], "")?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| owner_pid(n).is_some())
        .map(str::to_string)
        .collect();
    // Only veth links (the host sides are): the full list can be long.
    let links = ip(&["-o", "link", "show", "type", "veth"], "")?
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default())
        .filter(|n| owner_pid(n).is_some())
        .map(str::to_string)
        .collect();
    Ok((netns, links))
}

/// Removes the test hosts called `names` (links and namespaces; a missing one is
/// fine), then checks that none is left (a namespace still held by a process that is
/// exiting goes a moment later: retried for up to 2 s).
pub fn remove_named(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut batch = String::new();
    for n in names {
        batch.push_str(&format!("link del {n}\n"));
    }
    for n in names {
        batch.push_str(&format!("netns del {n}\n"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        // -force: go on after an error (what is gone already).
        let _ = ip(&["-force", "-batch", "-"], &batch);
        let (netns, links) = existing()?;
        let mut left: Vec<&String> = netns
            .iter()
            .chain(&links)
            .filter(|n| names.contains(n))
            .collect();
        // A host whose namespace and link are both left is named once.
        left.sort();
        left.dedup();
        if left.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Harness(format!(
                "test hosts not removed: {}",
                left.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the test hosts of runs whose harness is gone (killed with its reaper):
/// its pid is not alive here and its namespace, if it has one, holds no process (a
/// run in another PID namespace sharing this network namespace has a pid that means
/// nothing here, but its instances run in its namespaces). Call it under [`lock`].
fn remove_stale(_lock: &Lock) -> Result<()> {
    let (netns, links) = existing()?;
    let mut stale: Vec<String> = Vec::new();
    for n in netns.iter().chain(&links) {
        if stale.contains(n) || owner_pid(n).is_none_or(pid_alive) {
            continue;
        }
        if netns.contains(n) {
            // Not stale while a process is in it, nor when that cannot be told.
            match ip(&["netns", "pids", n], "") {
                Ok(pids) if pids.trim().is_empty() => {}
                _ => continue,
            }
        }
        stale.push(n.clone());
    }
    stale.sort();
    remove_named(&stale)
}

/// Whether a process with this pid exists.
fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The first third octet `K` such that nothing in 10.201.K.0/24 is an address or a
/// route on the machine yet (given `ip -4 -o addr` and `ip -4 route` output).
pub fn free_block(addrs_and_routes: &str) -> Option<u8> {
    (0..=255u8).find(|k| !addrs_and_routes.contains(&format!("10.201.{k}.")))
}

/// A run's test hosts; removed on [`TestHosts::remove`] or drop.
#[derive(Debug)]
pub struct TestHosts {
    hosts: Vec<TestHost>,
    removed: bool,
}

impl TestHosts {
    /// Creates `n` test hosts (at most 63), first removing those of dead runs. A
    /// failure (not root: EPERM) is a harness error that says what is needed; what was
    /// created before it is removed.
    pub fn create(n: usize) -> Result<TestHosts> {
        if n == 0 || n > 63 {
            return Err(Error::Harness(format!(
                "test hosts: {n} asked for, 1 to 63 per run"
            )));
        }
        // A route marked linkdown must stay in use, or a host whose link is down would
        // be reached through the default route instead (off this machine).
        for conf in ["all", "default"] {
            let f = format!("/proc/sys/net/ipv4/conf/{conf}/ignore_routes_with_linkdown");
            if std::fs::read_to_string(&f).map_or(true, |v| v.trim() != "0") {
                return Err(Error::Harness(format!(
                    "test hosts need {f} to be 0 (a host whose link is down must not be routed elsewhere)"
                )));
            }
        }
        // From choosing the block until the links exist (and are checked), and while
        // removing what dead runs left, no other run does the same.
        let lock = lock(Path::new(LOCK_FILE), LOCK_TIMEOUT)?;
        // Best effort: what a dead run left does not stop this one.
        if let Err(e) = remove_stale(&lock) {
            eprintln!("zdt-check: removing the test hosts of dead runs: {e}");
        }
        let used = ip(&["-4", "-o", "addr", "show"], "")? + &ip(&["-4", "route", "show"], "")?;
        let k = free_block(&used).ok_or_else(|| {
            Error::Harness("test hosts: every 10.201.K.0/24 block is in use".into())
        })?;
        let pid = std::process::id();
        let hosts: Vec<TestHost> = (0..n)
            .map(|i| {
                let base = 4 * i as u8;
                TestHost {
                    name: host_name(pid, i + 1),
                    gateway: Ipv4Addr::new(10, 201, k, base + 1),
                    addr: Ipv4Addr::new(10, 201, k, base + 2),
                }
            })
            .collect();
        // Known to the reaper before they exist, and removed on drop from here on.
        for h in &hosts {
            super::reaper::note_netns(true, &h.name);
        }
        let me = TestHosts {
            hosts,
            removed: false,
        };
        let mut outside = String::new();
        for h in &me.hosts {
            outside.push_str(&format!(
                "netns add {n}\nlink add {n} type veth peer name {INNER_IF} netns {n}\naddr add {g}/30 dev {n}\nlink set {n} up\n",
                n = h.name,
                g = h.gateway
            ));
        }
        ip(&["-batch", "-"], &outside).map_err(|e| {
            Error::Harness(format!(
                "cannot create test hosts (network namespaces, for hosts = \"netns\"); \
                 this needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): {e}"
            ))
        })?;
        for h in &me.hosts {
            let inside = format!(
                "addr add {a}/30 dev {INNER_IF}\nlink set {INNER_IF} up\nlink set lo up\n",
                a = h.addr
            );
            ip(&["-n", &h.name, "-batch", "-"], &inside)?;
        }
        // Another block user (a route added meanwhile, a run that did not lock) would
        // take the traffic: each address must go over its own veth.
        for h in &me.hosts {
            route_check(h)?;
        }
        // The hosts (removed first on an error above), then the lock.
        drop(lock);
        Ok(me)
    }

    /// The hosts, in order (host `i` serves server `s<i+1>`).
    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }

    /// Removes every host (idempotent): nothing named like them is left after `Ok`.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        let r = remove_named(&names);
        if r.is_ok() {
            self.removed = true;
            for n in &names {
                super::reaper::note_netns(false, n);
            }
        }
        r
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("zdt-check: {e}");
        }
    }
}

/// Takes host `h` off the network (`up = false`: its inner `eth0` goes down, so the
/// host side loses its carrier and packets to it are dropped; the route stays, marked
/// `linkdown`) or puts it back. Returns `ip route get <addr>` as it is afterwards, and
/// fails if that route no longer goes over the host's own link.
pub fn set_link(h: &TestHost, up: bool) -> Result<String> {
    let state = if up { "up" } else { "down" };
    ip(&["-n", &h.name, "link", "set", INNER_IF, state], "")?;
    route_check(h).inspect_err(|_| {
        let _ = ip(&["-n", &h.name, "link", "set", INNER_IF, "up"], "");
    })
}

/// The file of the sysctl `key` (`net.ipv4.tcp_migrate_req` →
/// `/proc/sys/net/ipv4/tcp_migrate_req`), if `key` is a network sysctl's name (these are
/// per network namespace; nothing else may be set on a test host).
pub fn sysctl_file(key: &str) -> Option<PathBuf> {
    let ok = key.starts_with("net.")
        && key
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    ok.then(|| Path::new("/proc/sys").join(key.replace('.', "/")))
}

/// Sets the network sysctl `key` to `value` in host `h`'s namespace only (never the
/// harness's own), and reads it back. Returns the value it had before.
pub fn set_sysctl(h: &TestHost, key: &str, value: &str) -> Result<String> {
    sysctl_in(h, key, Some(value.to_string()))
}

/// The network sysctl `key` as it is in host `h`'s namespace.
pub fn read_sysctl(h: &TestHost, key: &str) -> Result<String> {
    sysctl_in(h, key, None)
}

/// Reads the network sysctl `key` in `h`'s namespace (and sets it to `value`, checked
/// by reading it back), from a thread of its own that enters the namespace (setns(2))
/// and ends after, so no other thread of the harness moves. Returns the value read
/// first.
fn sysctl_in(h: &TestHost, key: &str, value: Option<String>) -> Result<String> {
    let file = sysctl_file(key).ok_or_else(|| {
        Error::Harness(format!(
            "test host {}: {key} is not a network sysctl",
            h.name
        ))
    })?;
    let netns = h.netns_path();
    let what = format!("test host {}: sysctl {key}", h.name);
    let worker = std::thread::Builder::new()
        .name("zdt-netns-sysctl".into())
        .spawn(move || -> std::result::Result<String, String> {
            let ns = std::fs::File::open(&netns)
                .map_err(|e| format!("opening {}: {e}", netns.display()))?;
            // SAFETY: setns(2) on a descriptor this thread owns; only this thread moves.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
            let read = || {
                std::fs::read_to_string(&file)
                    .map(|v| v.trim().to_string())
                    .map_err(|e| format!("reading {}: {e}", file.display()))
            };
            let before = read()?;
            if let Some(value) = value {
                std::fs::write(&file, format!("{value}\n"))
                    .map_err(|e| format!("writing {}: {e}", file.display()))?;
                let after = read()?;
                if after != value {
                    return Err(format!("set to {value}, reads back {after}"));
                }
            }
            Ok(before)
        })
        .map_err(|e| Error::Harness(format!("{what}: {e}")))?;
    worker
        .join()
        .map_err(|_| Error::Harness(format!("{what}: the thread panicked")))?
        .map_err(|e| Error::Harness(format!("{what}: {e}")))
}

/// `ip route get <addr>` for host `h` (its first line), or an error if the route does
/// not go over the host's own veth (`dev <name>`).
fn route_check(h: &TestHost) -> Result<String> {
    let route = ip(&["route", "get", &h.addr.to_string()], "")?;
    let route = route.lines().next().unwrap_or_default().trim().to_string();
    if !routed_over(&route, &h.name) {
        return Err(Error::Harness(format!(
            "test host {}: {} is routed elsewhere ({route}), not over its own link: \
             another user of the block?",
            h.name, h.addr
        )));
    }
    Ok(route)
}

/// Whether a line of `ip route get` output goes out over device `dev`.
fn routed_over(route: &str, dev: &str) -> bool {
    let words: Vec<&str> = route.split_whitespace().collect();
    words.windows(2).any(|w| w[0] == "dev" && w[1] == dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_recognised() {
        let n = host_name(4_194_304, 63);
        assert_eq!(n, "zdt4194304h63");
        assert!(n.len() <= 15, "IFNAMSIZ");
        assert_eq!(owner_pid(&n), Some(4_194_304));
        for other in ["zdt", "zdth1", "zdt12h", "zdt12x1", "eth0", "zdt12h1x"] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }

    #[test]
    fn a_block_in_use_is_skipped() {
        assert_eq!(free_block(""), Some(0));
        let used = "4: eth0    inet 10.201.0.1/30 scope global\n10.201.1.0/30 dev x\n";
        assert_eq!(free_block(used), Some(2));
        let all: String = (0..=255).map(|k| format!("10.201.{k}.1 ")).collect();
        assert_eq!(free_block(&all), None);
    }

    #[test]
    fn a_route_must_name_the_hosts_own_link() {
        let r = "10.201.0.2 dev zdt12h1 src 10.201.0.1 uid 0";
        assert!(routed_over(r, "zdt12h1"));
        assert!(!routed_over(r, "zdt12h"));
        assert!(!routed_over(
            "10.201.0.2 via 10.0.0.1 dev eth0 src 10.0.0.5",
            "zdt12h1"
        ));
        assert!(!routed_over(
            "10.201.0.2 dev zdt13h1 src 10.201.0.1",
            "zdt12h1"
        ));
    }

    #[test]
    fn the_lock_is_exclusive_and_its_wait_bounded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns.lock");
        let held = lock(&path, Duration::from_secs(1)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let t = Instant::now();
        let e = lock(&path, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another run held the lock"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Released when the holder is dropped, even while another waits.
        let waiter = std::thread::spawn(move || lock(&path, Duration::from_secs(5)).is_ok());
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        assert!(waiter.join().unwrap());
        // Never through a symlink.
        let link = dir.path().join("link.lock");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert!(lock(&link, Duration::from_millis(10)).is_err());
        assert!(!dir.path().join("target").exists());
    }

    #[test]
    fn only_network_sysctls_name_a_file() {
        assert_eq!(
            sysctl_file("net.ipv4.tcp_migrate_req").unwrap(),
            Path::new("/proc/sys/net/ipv4/tcp_migrate_req")
        );
        for bad in [
            "kernel.pid_max",
            "net..x",
            "net.ipv4/../../x",
            "net.ipv4.",
            "net",
        ] {
            assert_eq!(sysctl_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn netns_path_is_under_run_netns() {
        let h = TestHost {
            name: "zdt1h1".into(),
            gateway: Ipv4Addr::new(10, 201, 0, 1),
            addr: Ipv4Addr::new(10, 201, 0, 2),
        };
        assert_eq!(h.netns_path(), Path::new("/run/netns/zdt1h1"));
    }
}
