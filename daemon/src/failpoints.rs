//! Test support: named points where an operation pauses or fails the way the world sometimes
//! does, set by `NUAGE_FAILPOINTS` (a comma-separated list) or armed in-process by a test. A leaf
//! module: the app and the hypervisor layer both ask it, and it knows neither. Unset in
//! production, where each check costs one lookup.

/// Test support: whether `NUAGE_FAILPOINTS` (a comma-separated list) names this point, or a test
/// armed it with [`arm_failpoint`]. Points that are not pauses ([`failpoint`]) make an operation
/// fail the way the world sometimes does.
pub fn failpoint_set(name: &str) -> bool {
    static POINTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let points = POINTS.get_or_init(|| {
        std::env::var("NUAGE_FAILPOINTS")
            .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
            .unwrap_or_default()
    });
    points.iter().any(|p| p == name) || armed().lock().is_ok_and(|a| a.contains(name))
}

/// A failpoint for one resource: `name:key` (e.g. `resize-after-grow:<vm id>`), so that tests
/// sharing one process arm it for their own server only.
pub fn failpoint_for(name: &str, key: &str) -> bool {
    failpoint_set(name) || failpoint_set(&format!("{name}:{key}"))
}

fn armed() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static ARMED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    ARMED.get_or_init(Default::default)
}

/// Test support: arms a failpoint in this process (the in-process integration tests).
pub fn arm_failpoint(name: &str) {
    if let Ok(mut a) = armed().lock() {
        a.insert(name.to_owned());
    }
}

/// Test support: pauses for a minute at the named point when `NUAGE_FAILPOINTS` (a
/// comma-separated list) names it, so that end-to-end tests can kill the daemon at exactly that
/// point and check what a restart finds. Unset in production, where it costs one lookup.
pub fn failpoint(name: &str) {
    if failpoint_set(name) {
        tracing::warn!(failpoint = name, "failpoint reached: pausing for 60 s");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
