//! Browser keys to X11 keysyms (what RFB KeyEvent messages carry). `KeyboardEvent.key` names the
//! character or the key; this maps it to the keysym the guest's keymap turns into scancodes.

/// The keysym for a `KeyboardEvent.key` value, or `None` for keys RFB cannot express.
pub fn keysym_for_key(key: &str) -> Option<u32> {
    let named = match key {
        "Backspace" => 0xff08,
        "Tab" => 0xff09,
        "Enter" => 0xff0d,
        "Escape" => 0xff1b,
        "Delete" => 0xffff,
        "Home" => 0xff50,
        "ArrowLeft" => 0xff51,
        "ArrowUp" => 0xff52,
        "ArrowRight" => 0xff53,
        "ArrowDown" => 0xff54,
        "PageUp" => 0xff55,
        "PageDown" => 0xff56,
        "End" => 0xff57,
        "Insert" => 0xff63,
        "Shift" => 0xffe1,
        "Control" => 0xffe3,
        "Alt" => 0xffe9,
        "AltGraph" => 0xfe03,
        "Meta" | "OS" => 0xffe7,
        "CapsLock" => 0xffe5,
        _ => 0,
    };
    if named != 0 {
        return Some(named);
    }
    if let Some(n) = key.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
        return (1..=12).contains(&n).then_some(0xffbd + n);
    }
    let mut chars = key.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    let code = c as u32;
    Some(match code {
        // Latin-1 characters are their own keysyms; others use the Unicode keysym range.
        0x20..=0x7e | 0xa0..=0xff => code,
        _ => 0x0100_0000 | code,
    })
}

/// Keysyms for Ctrl-Alt-Del, pressed in this order and released in reverse.
pub const CTRL_ALT_DEL: [u32; 3] = [0xffe3, 0xffe9, 0xffff];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_keysyms() {
        let table = [
            ("a", Some(0x61)),
            ("A", Some(0x41)),
            (">", Some(0x3e)),
            (" ", Some(0x20)),
            ("é", Some(0xe9)),
            ("€", Some(0x0100_20ac)),
            ("Enter", Some(0xff0d)),
            ("Backspace", Some(0xff08)),
            ("ArrowUp", Some(0xff52)),
            ("F1", Some(0xffbe)),
            ("F12", Some(0xffc9)),
            ("F13", None),
            ("Shift", Some(0xffe1)),
            ("Dead", None),
            ("Unidentified", None),
            ("", None),
        ];
        for (key, want) in table {
            assert_eq!(keysym_for_key(key), want, "{key:?}");
        }
    }
}
