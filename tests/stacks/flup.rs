//! flup FastCGI behind nginx: django_graceful's symlink swap.

use crate::util::{at, require_stack, run_scenario};

#[test]
fn symlink_swap_behind_nginx_passes() {
    if !require_stack(&["nginx", "flup"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/symlink-fastcgi.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}
