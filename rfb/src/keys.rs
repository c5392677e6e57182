//! Browser keys to what RFB carries: X11 keysyms (`KeyboardEvent.key`, the character typed, for
//! servers that only take keysyms) and scancodes (`KeyboardEvent.code`, the physical key, for
//! QEMU's extended key events, with which the guest's own keymap decides what a key means).

/// The left Shift key.
pub const SHIFT_L: u32 = 0xffe1;

const NAMED_KEYSYMS: &[(&str, u32)] = &[
    ("Backspace", 0xff08),
    ("Tab", 0xff09),
    ("Enter", 0xff0d),
    ("Escape", 0xff1b),
    ("Delete", 0xffff),
    ("Home", 0xff50),
    ("ArrowLeft", 0xff51),
    ("ArrowUp", 0xff52),
    ("ArrowRight", 0xff53),
    ("ArrowDown", 0xff54),
    ("PageUp", 0xff55),
    ("PageDown", 0xff56),
    ("End", 0xff57),
    ("Insert", 0xff63),
    ("Shift", 0xffe1),
    ("Control", 0xffe3),
    ("Alt", 0xffe9),
    ("AltGraph", 0xfe03),
    ("Meta", 0xffe7),
    ("OS", 0xffe7),
    ("CapsLock", 0xffe5),
];

/// The keysym for a `KeyboardEvent.key` value, or `None` for keys RFB cannot express.
pub fn keysym_for_key(key: &str) -> Option<u32> {
    let named = NAMED_KEYSYMS
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(0, |&(_, k)| k);
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

/// Their scancodes (left Control, left Alt, Delete), in the same order.
pub const CTRL_ALT_DEL_SCANCODES: [u32; 3] = [0x1d, 0x38, 0xd3];

/// Named physical keys and their QEMU key numbers (E0-prefixed keys are `0x80 | code`).
const NAMED_CODES: &[(&str, u32)] = &[
    ("Escape", 0x01),
    ("Minus", 0x0c),
    ("Equal", 0x0d),
    ("Backspace", 0x0e),
    ("Tab", 0x0f),
    ("BracketLeft", 0x1a),
    ("BracketRight", 0x1b),
    ("Enter", 0x1c),
    ("ControlLeft", 0x1d),
    ("Semicolon", 0x27),
    ("Quote", 0x28),
    ("Backquote", 0x29),
    ("ShiftLeft", 0x2a),
    ("Backslash", 0x2b),
    ("Comma", 0x33),
    ("Period", 0x34),
    ("Slash", 0x35),
    ("ShiftRight", 0x36),
    ("NumpadMultiply", 0x37),
    ("AltLeft", 0x38),
    ("Space", 0x39),
    ("CapsLock", 0x3a),
    ("NumLock", 0x45),
    ("ScrollLock", 0x46),
    ("Numpad7", 0x47),
    ("Numpad8", 0x48),
    ("Numpad9", 0x49),
    ("NumpadSubtract", 0x4a),
    ("Numpad4", 0x4b),
    ("Numpad5", 0x4c),
    ("Numpad6", 0x4d),
    ("NumpadAdd", 0x4e),
    ("Numpad1", 0x4f),
    ("Numpad2", 0x50),
    ("Numpad3", 0x51),
    ("Numpad0", 0x52),
    ("NumpadDecimal", 0x53),
    ("IntlBackslash", 0x56),
    ("IntlRo", 0x73),
    ("IntlYen", 0x7d),
    ("NumpadEnter", 0x9c),
    ("ControlRight", 0x9d),
    ("NumpadDivide", 0xb5),
    ("PrintScreen", 0xb7),
    ("AltRight", 0xb8),
    ("Home", 0xc7),
    ("ArrowUp", 0xc8),
    ("PageUp", 0xc9),
    ("ArrowLeft", 0xcb),
    ("ArrowRight", 0xcd),
    ("End", 0xcf),
    ("ArrowDown", 0xd0),
    ("PageDown", 0xd1),
    ("Insert", 0xd2),
    ("Delete", 0xd3),
    ("MetaLeft", 0xdb),
    ("OSLeft", 0xdb),
    ("MetaRight", 0xdc),
    ("OSRight", 0xdc),
    ("ContextMenu", 0xdd),
];

/// QEMU's key number for a `KeyboardEvent.code` (the physical key, whatever the layout): the XT
/// set-1 scancode, or `0x80 | code` for the keys an E0 prefix marks.
pub fn xt_scancode_for_code(code: &str) -> Option<u32> {
    const LETTERS: [u32; 26] = [
        0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18,
        0x19, 0x10, 0x13, 0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c,
    ];
    if let Some(l) = code.strip_prefix("Key") {
        let mut c = l.chars();
        return match (c.next(), c.next()) {
            (Some(ch @ 'A'..='Z'), None) => Some(LETTERS[(ch as u8 - b'A') as usize]),
            _ => None,
        };
    }
    if let Some(d) = code
        .strip_prefix("Digit")
        .and_then(|d| d.parse::<u32>().ok())
    {
        return match d {
            0 => Some(0x0b),
            1..=9 => Some(0x01 + d),
            _ => None,
        };
    }
    if let Some(n) = code.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
        return match n {
            1..=10 => Some(0x3a + n),
            11 => Some(0x57),
            12 => Some(0x58),
            _ => None,
        };
    }
    // A table, not a `match`: string matches compile to far more wasm than this data.
    NAMED_CODES
        .iter()
        .find(|(name, _)| *name == code)
        .map(|&(_, c)| c)
}

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

    #[test]
    fn physical_keys_map_to_xt_scancodes() {
        let table = [
            ("KeyA", Some(0x1e)),
            ("KeyQ", Some(0x10)),
            ("KeyZ", Some(0x2c)),
            ("KeyM", Some(0x32)),
            ("Digit1", Some(0x02)),
            ("Digit9", Some(0x0a)),
            ("Digit0", Some(0x0b)),
            ("Enter", Some(0x1c)),
            ("Space", Some(0x39)),
            ("F1", Some(0x3b)),
            ("F10", Some(0x44)),
            ("F11", Some(0x57)),
            ("F12", Some(0x58)),
            ("F13", None),
            ("IntlBackslash", Some(0x56)),
            // E0-prefixed keys are 0x80 | their code.
            ("ArrowUp", Some(0xc8)),
            ("ControlRight", Some(0x9d)),
            ("Delete", Some(0xd3)),
            ("KeyAA", None),
            ("Keya", None),
            ("Digit10", None),
            ("", None),
            ("Unidentified", None),
        ];
        for (code, want) in table {
            assert_eq!(xt_scancode_for_code(code), want, "{code:?}");
        }
        // The 26 letters and 10 digits each have their own scancode.
        let mut all: Vec<u32> = ('A'..='Z')
            .map(|c| xt_scancode_for_code(&format!("Key{c}")).unwrap())
            .chain((0..10).map(|d| xt_scancode_for_code(&format!("Digit{d}")).unwrap()))
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 36);
        assert_eq!(
            CTRL_ALT_DEL_SCANCODES.map(Some),
            ["ControlLeft", "AltLeft", "Delete"].map(xt_scancode_for_code)
        );
    }
}
