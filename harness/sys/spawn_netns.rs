//! Which network namespace the children spawned on this thread start in
//! (`in_netns`): a test host's, entered between fork and exec.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

thread_local! {
    /// The network namespace (a `/run/netns/NAME` file) that
    /// [`Child::spawn`](super::child::Child::spawn) on this thread puts its children
    /// in, while [`in_netns`] runs.
    pub(super) static SPAWN_NETNS: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `f` with every [`Child::spawn`](super::child::Child::spawn) it makes (on this
/// thread) placing the child in the network namespace `netns` (a `/run/netns/NAME`
/// file; `None`: the harness's own), through setns(2) between fork and exec. The
/// child stays the leader of its own process group, as every child does: no wrapper
/// process in between.
pub fn in_netns<T>(netns: Option<&Path>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<PathBuf>);
    impl Drop for Reset {
        fn drop(&mut self) {
            SPAWN_NETNS.with(|n| *n.borrow_mut() = self.0.take());
        }
    }
    let before = SPAWN_NETNS.with(|n| n.replace(netns.map(Path::to_path_buf)));
    let _reset = Reset(before);
    f()
}
