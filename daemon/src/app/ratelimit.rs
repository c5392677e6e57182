//! Sign-in throttling: failed sign-ins counted per username and per client (IPv6 clients per
//! /64), with growing delays past a limit, and a bound on how many password checks run at once.
//!
//! The rules, and why:
//! - An attempt is *reserved* before its password is checked, under one lock: a burst of
//!   concurrent guesses cannot all pass the check before the first failure is counted. Past the
//!   limit, the attempts in flight count as failures-to-be, so a burst gets exactly the limit.
//! - Past [`PER_USER`] failures a username, and past [`PER_CLIENT`] a client, may try again only
//!   after a delay that doubles with every further failure ([`delay`]), from 30 s up to 15 min.
//! - The username's delay does not apply to a client that has not failed in the window: the
//!   owner signing in from their own address is never locked out by someone else's guesses.
//!   (An attacker with many addresses gets one guess per fresh address; each address then has
//!   its own delays, and IPv6 addresses count per /64.)
//! - A success clears nothing: an attacker who also has an account must not be able to reset
//!   their address's count by signing into it. Failures are forgotten [`WINDOW`] after the last.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long failures are remembered after the last one.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Failures a username may collect before delays apply.
pub const PER_USER: u32 = 5;
/// Failures a client may collect before delays apply (it may try several names).
pub const PER_CLIENT: u32 = 20;
/// The first delay past a limit; each further failure doubles it, up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// Keys remembered at most (an attacker's memory bill); expired ones are forgotten first.
const MAX_KEYS: usize = 100_000;

/// The delay after `over` failures past a limit (`over` ≥ 1).
pub fn delay(over: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << over.saturating_sub(1).min(10))
        .min(MAX_DELAY)
}

/// Wrong second-factor codes before each further one waits ([`delay`], doubling).
pub const CODE_FAILURES: u32 = 5;

/// Wrong second-factor codes per user, with no exemption for a clean client: whoever holds the
/// password must not get more than a few guesses at six digits however many addresses they
/// use. Past [`CODE_FAILURES`] each guess waits twice as long as the last (30 s up to 15 min);
/// a right code, or a day without failures, forgets them. Only users whose password was right
/// (or who are signed in) reach it, so it holds at most one entry per user.
#[derive(Default)]
pub struct CodeLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl CodeLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `user` must wait before their next code is checked, if at all.
    pub fn wait(&self, user: &str, now: Instant) -> Option<Duration> {
        let (count, last) = *self.lock().get(user)?;
        if count < CODE_FAILURES || now.duration_since(last) > Duration::from_secs(86_400) {
            return None;
        }
        let until = last + delay(count - CODE_FAILURES + 1);
        (until > now).then(|| until - now)
    }

    pub fn failed(&self, user: &str, now: Instant) {
        let mut map = self.lock();
        let e = map.entry(user.to_owned()).or_insert((0, now));
        if now.duration_since(e.1) > Duration::from_secs(86_400) {
            e.0 = 0;
        }
        *e = (e.0 + 1, now);
    }

    pub fn succeeded(&self, user: &str) {
        self.lock().remove(user);
    }
}

/// The key a client is counted under: its address, or its /64 for IPv6 (one subscriber's
/// prefix); IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    in_flight: u32,
    last_failure: Instant,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            failures: 0,
            in_flight: 0,
            last_failure: now,
        }
    }

    fn failures(&self, now: Instant) -> u32 {
        if now.duration_since(self.last_failure) >= WINDOW {
            0
        } else {
            self.failures
        }
    }

    /// How long until one more attempt may start, with `limit` failures allowed freely.
    fn wait(&self, limit: u32, now: Instant) -> Option<Duration> {
        let failures = self.failures(now);
        let pending = failures + self.in_flight;
        if pending < limit {
            return None;
        }
        if self.in_flight > 0 {
            // Past the limit only one attempt at a time, once its delay has passed.
            return Some(delay(pending + 1 - limit).max(Duration::from_secs(1)));
        }
        let until = self.last_failure + delay(failures + 1 - limit);
        (until > now).then(|| until - now)
    }
}

#[derive(Default)]
pub struct LoginLimiter {
    entries: Mutex<HashMap<String, Entry>>,
}

/// A reserved sign-in attempt: report its outcome with [`Attempt::failed`]; dropped without
/// one (a success, or a client that went away before the answer) it counts as no failure.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    keys: Vec<String>,
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an attempt to sign in as `user` from `client`, or says how long to wait.
    pub fn reserve(
        &self,
        user: &str,
        client: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let user_key = format!("user:{user}");
        let client_key = client.map(|c| format!("client:{}", client_key(c)));
        let mut map = self.lock();
        let get = |map: &HashMap<String, Entry>, k: &str| {
            map.get(k).copied().unwrap_or_else(|| Entry::fresh(now))
        };
        let user_entry = get(&map, &user_key);
        let client_entry = client_key.as_deref().map(|k| get(&map, k));
        if let Some(wait) = client_entry.and_then(|c| c.wait(PER_CLIENT, now)) {
            return Err(wait);
        }
        // A client with no failure and nothing in flight is not throttled by the username's
        // count: that is how the owner still gets in during an attack.
        let clean = client_entry.is_some_and(|c| c.failures(now) == 0 && c.in_flight == 0);
        if !clean {
            if let Some(wait) = user_entry.wait(PER_USER, now) {
                return Err(wait);
            }
        }
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| e.in_flight > 0 || e.failures(now) > 0);
            if map.len() >= MAX_KEYS {
                // Full of failing keys (a flood from many addresses): forget the oldest half
                // rather than refuse everyone, the owner included.
                let mut ages: Vec<Instant> = map.values().map(|e| e.last_failure).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, e| e.in_flight > 0 || e.last_failure > cut);
            }
        }
        let keys: Vec<String> = std::iter::once(user_key).chain(client_key).collect();
        for k in &keys {
            let e = map.entry(k.clone()).or_insert_with(|| Entry::fresh(now));
            if e.failures(now) == 0 {
                e.failures = 0;
            }
            e.in_flight += 1;
        }
        Ok(Attempt {
            limiter: self,
            keys,
        })
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the user unknown): counted against both keys.
    pub fn failed(mut self, now: Instant) {
        let mut map = self.limiter.lock();
        for k in std::mem::take(&mut self.keys) {
            let e = map.entry(k).or_insert_with(|| Entry::fresh(now));
            e.in_flight = e.in_flight.saturating_sub(1);
            e.failures = e.failures(now) + 1;
            e.last_failure = now;
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut map = self.limiter.lock();
        for k in &self.keys {
            if let Some(e) = map.get_mut(k) {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A1: &str = "192.0.2.1";
    const A2: &str = "192.0.2.2";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_burst_gets_exactly_the_limit_however_concurrent() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        // 200 attempts reserved before any of them finishes.
        let mut accepted = Vec::new();
        for _ in 0..200 {
            if let Ok(a) = l.reserve("admin", ip(A1), t0) {
                accepted.push(a);
            }
        }
        assert_eq!(u32::try_from(accepted.len()).unwrap(), PER_USER);
        for a in accepted {
            a.failed(t0);
        }
        assert!(l.reserve("admin", ip(A1), t0).is_err());
    }

    #[test]
    fn the_owner_from_a_clean_address_is_never_locked_out() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..PER_USER {
            l.reserve("admin", ip(A1), t0).unwrap().failed(t0);
        }
        assert!(l.reserve("admin", ip(A1), t0).is_err(), "the guesser waits");
        let owner = l.reserve("admin", ip(A2), t0);
        assert!(
            owner.is_ok(),
            "a client that never failed may still sign in"
        );
        drop(owner);
        // Unknown client addresses get no such pass.
        assert!(l.reserve("admin", None, t0).is_err());
    }

    #[test]
    fn wrong_codes_wait_longer_and_longer_from_any_address_until_a_right_one() {
        let l = CodeLimiter::default();
        let t0 = Instant::now();
        for _ in 0..CODE_FAILURES {
            assert_eq!(l.wait("alice", t0), None);
            l.failed("alice", t0);
        }
        assert_eq!(l.wait("alice", t0), Some(FIRST_DELAY));
        assert_eq!(l.wait("bob", t0), None, "per user");
        let t1 = t0 + FIRST_DELAY;
        assert_eq!(l.wait("alice", t1), None);
        l.failed("alice", t1);
        assert_eq!(l.wait("alice", t1), Some(FIRST_DELAY * 2));
        l.succeeded("alice");
        assert_eq!(l.wait("alice", t1), None);
    }

    #[test]
    fn delays_grow_with_each_failure_past_the_limit_and_the_window_forgets() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..PER_USER {
            l.reserve("alice", ip(A1), t0).unwrap().failed(t0);
        }
        assert_eq!(l.reserve("alice", ip(A1), t0).err(), Some(FIRST_DELAY));
        let t1 = t0 + FIRST_DELAY;
        l.reserve("alice", ip(A1), t1).unwrap().failed(t1);
        assert_eq!(l.reserve("alice", ip(A1), t1).err(), Some(FIRST_DELAY * 2));
        assert!(l.reserve("alice", ip(A1), t1 + FIRST_DELAY).is_err());
        let t2 = t1 + FIRST_DELAY * 2;
        l.reserve("alice", ip(A1), t2).unwrap().failed(t2);
        assert_eq!(l.reserve("alice", ip(A1), t2).err(), Some(FIRST_DELAY * 4));
        assert!(l.reserve("alice", ip(A1), t2 + WINDOW).is_ok());
        assert_eq!(delay(30), MAX_DELAY);
    }

    #[test]
    fn an_address_trying_many_names_is_slowed_and_ipv6_counts_per_64() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..PER_CLIENT {
            l.reserve(&format!("user{i}"), ip("2001:db8:1:2::1"), t0)
                .unwrap()
                .failed(t0);
        }
        // Another address in the same /64 is the same client.
        assert!(l
            .reserve("someone-new", ip("2001:db8:1:2::ffff"), t0)
            .is_err());
        assert!(l.reserve("someone-new", ip("2001:db8:1:3::1"), t0).is_ok());
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn a_success_or_an_abandoned_attempt_counts_no_failure_and_clears_nothing() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..PER_USER - 1 {
            l.reserve("bob", ip(A1), t0).unwrap().failed(t0);
        }
        drop(l.reserve("bob", ip(A1), t0).unwrap());
        // Still one failure left before the delay: the success did not clear and was not counted.
        l.reserve("bob", ip(A1), t0).unwrap().failed(t0);
        assert!(l.reserve("bob", ip(A1), t0).is_err());
    }
}
