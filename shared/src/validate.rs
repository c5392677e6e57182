//! The rules names and passwords follow, checked by the daemon and by the forms as you type.

/// The rules for a username, shared so the console can check as the user types.
pub fn validate_username(name: &str) -> Result<(), &'static str> {
    let ok_len = (1..=32).contains(&name.len());
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok_len && ok_first && ok_rest {
        Ok(())
    } else {
        Err(
            "A username is 1 to 32 characters: lowercase letters, digits, '-', '_' or '.', \
             starting with a letter or a digit.",
        )
    }
}

/// The rules for a password.
pub fn validate_password(password: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        0..=7 => Err("A password has at least 8 characters."),
        8..=1024 => Ok(()),
        _ => Err("A password has at most 1024 characters."),
    }
}

/// A VPS name: 1 to 63 of `[a-z0-9-]`, unique per owner. Hostnames follow the same rule and may
/// not start or end with '-'.
pub fn validate_vm_name(name: &str) -> Result<(), &'static str> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("A server name is 1 to 63 characters: lowercase letters, digits and '-'.")
    }
}

pub fn validate_hostname(name: &str) -> Result<(), &'static str> {
    if validate_vm_name(name).is_ok() && !name.starts_with('-') && !name.ends_with('-') {
        Ok(())
    } else {
        Err("A hostname is 1 to 63 characters: lowercase letters, digits and '-', not at either end.")
    }
}

/// An image name: 1 to 64 characters of `[a-z0-9._-]`, starting with a letter or digit.
pub fn validate_image_name(name: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("An image name is 1 to 64 characters: lowercase letters, digits, '.', '_' or '-'.")
    }
}
