//! Failed sign-ins, counted per username and per client address in a sliding window; past the
//! limit, sign-ins are refused (429) before any password is checked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Failures a username may collect in a window.
pub const PER_USER: u32 = 5;
/// Failures a client address may collect in a window (it may try several names).
pub const PER_CLIENT: u32 = 20;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    fn count(map: &HashMap<String, (u32, Instant)>, key: &str, now: Instant) -> u32 {
        map.get(key)
            .filter(|(_, since)| now.duration_since(*since) < WINDOW)
            .map_or(0, |(n, _)| *n)
    }

    /// When either key is over its limit: how long until it may try again.
    pub fn blocked(&self, user: &str, client: Option<&str>, now: Instant) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let over = |key: String, limit: u32| {
            (Self::count(&map, &key, now) >= limit)
                .then(|| {
                    map.get(&key)
                        .map(|(_, since)| WINDOW.saturating_sub(now.duration_since(*since)))
                })
                .flatten()
        };
        over(format!("user:{user}"), PER_USER)
            .or_else(|| client.and_then(|c| over(format!("client:{c}"), PER_CLIENT)))
    }

    pub fn failed(&self, user: &str, client: Option<&str>, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Bound the memory an attacker can make us spend: forget expired entries.
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        }
        let keys =
            std::iter::once(format!("user:{user}")).chain(client.map(|c| format!("client:{c}")));
        for key in keys {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A successful sign-in clears the username's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("user:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_blocked_after_five_failures_until_the_window_passes() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..PER_USER {
            assert!(l.blocked("alice", Some("10.0.0.1"), t0).is_none());
            l.failed("alice", Some("10.0.0.1"), t0);
        }
        assert!(
            l.blocked("alice", Some("10.0.0.2"), t0).is_some(),
            "blocked from any address"
        );
        assert!(
            l.blocked("bob", Some("10.0.0.1"), t0).is_none(),
            "other users are not"
        );
        assert!(
            l.blocked("alice", None, t0 + WINDOW).is_none(),
            "the window passes"
        );
        l.succeeded("alice");
        assert!(l.blocked("alice", None, t0).is_none());
    }

    #[test]
    fn an_address_trying_many_names_is_blocked() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..PER_CLIENT {
            l.failed(&format!("user{i}"), Some("192.0.2.9"), t0);
        }
        assert!(l.blocked("someone-new", Some("192.0.2.9"), t0).is_some());
        assert!(l.blocked("someone-new", Some("192.0.2.10"), t0).is_none());
    }
}
