//! RFC 6238 time-based codes (SHA-1, 6 digits, 30 s, one step of drift each way) through
//! `totp-rs`, and recovery codes. Pure: the time and the randomness come from the caller.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Recovery codes handed out at enrolment.
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Nuage";

fn totp(secret: &[u8], digits: usize, account: &str) -> TOTP {
    // `new_unchecked`: our secrets are 20 random bytes (160 bits, RFC 4226's recommendation);
    // the checked constructor refuses account names with ':' which a URL escapes anyway.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        1,
        STEP,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
}

/// A fresh secret: 20 random bytes.
pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; 20]>().to_vec()
}

/// The secret in Base32 and the `otpauth://` URL for `account`.
pub fn provisioning(secret: &[u8], account: &str) -> (String, String) {
    let t = totp(secret, DIGITS, account);
    (t.get_secret_base32(), t.get_url())
}

/// The code of time step `step`.
pub fn code_at(secret: &[u8], digits: usize, step: u64) -> String {
    totp(secret, digits, "-").generate(step * STEP)
}

/// The time step whose code `code` is, within one step of `now` (Unix seconds); `None` when it
/// matches none. Every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    use subtle::ConstantTimeEq;
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / STEP;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = code_at(secret, DIGITS, step);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Ten recovery codes (`xxxxx-xxxxx`, 50 random bits each from a 32-letter alphabet without
/// look-alikes).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz234567890";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = rand::random::<[u8; 10]>();
            let letters: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// Whether `text` is shaped like a recovery code (rather than a TOTP code).
pub fn looks_like_recovery_code(text: &str) -> bool {
    normalize(text).len() == 10
}

fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What is stored of a recovery code: the SHA-256 of its letters (50 random bits are beyond
/// guessing; the sign-in limits stand before any guess anyway).
pub fn recovery_hash(code: &str) -> String {
    Sha256::digest(normalize(code).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        // RFC 6238 appendix B: the SHA-1 seed and 8-digit codes.
        let seed = b"12345678901234567890";
        for (time, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(seed, 8, time / STEP), code, "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_step_of_drift_only() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let step = now / STEP;
        for (s, ok) in [
            (step - 2, false),
            (step - 1, true),
            (step, true),
            (step + 1, true),
            (step + 2, false),
        ] {
            let code = code_at(&secret, DIGITS, s);
            assert_eq!(matching_step(&secret, &code, now), ok.then_some(s), "{s}");
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
        assert_eq!(
            matching_step(&new_secret(), &code_at(&secret, 6, step), now),
            None
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        for c in &codes {
            assert!(looks_like_recovery_code(c));
            assert_eq!(
                recovery_hash(c),
                recovery_hash(&c.to_uppercase().replace('-', " "))
            );
        }
        assert!(!looks_like_recovery_code("123456"));
        let (secret, url) = provisioning(&new_secret(), "alice");
        assert_eq!(secret.len(), 32);
        assert!(url.starts_with("otpauth://totp/Nuage:alice?"), "{url}");
        assert!(url.contains("issuer=Nuage"), "{url}");
    }
}
