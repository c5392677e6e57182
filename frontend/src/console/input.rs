//! Input, as pure functions tested natively: DOM mouse buttons and wheel steps as RFB's button
//! mask, a point on the (scaled) canvas as a point on the guest's screen, Ctrl-Alt-Del as key
//! events.

use rfb::keys::{CTRL_ALT_DEL, CTRL_ALT_DEL_SCANCODES};

/// Maps DOM mouse buttons (1 left, 2 right, 4 middle) to RFB's (1 left, 2 middle, 4 right).
pub fn rfb_buttons(dom: u16) -> u8 {
    u8::try_from((dom & 1) | ((dom & 4) >> 1) | ((dom & 2) << 1)).unwrap_or(0)
}

/// The RFB button mask for one wheel step: 8 up, 16 down, 32 left, 64 right; 0 for none.
pub fn wheel_button(dx: f64, dy: f64) -> u8 {
    if dy < 0.0 {
        8
    } else if dy > 0.0 {
        16
    } else if dx < 0.0 {
        32
    } else if dx > 0.0 {
        64
    } else {
        0
    }
}

/// Where a point `offset` of a canvas shown `shown` pixels wide and high is on a `screen`-sized
/// guest screen (the canvas may be scaled to fit). A float-to-int `as` saturates, and the
/// guest clamps to its screen.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn screen_point(offset: (i32, i32), shown: (i32, i32), screen: (u32, u32)) -> (u16, u16) {
    let scale = |o: i32, s: i32, full: u32| {
        (f64::from(o.max(0)) * f64::from(full) / f64::from(s.max(1))) as u16
    };
    (
        scale(offset.0, shown.0, screen.0),
        scale(offset.1, shown.1, screen.1),
    )
}

/// Ctrl-Alt-Del as (keysym, scancode, down) key events: pressed in order, released in reverse.
pub fn ctrl_alt_del() -> Vec<(u32, u32, bool)> {
    let keys: Vec<(u32, u32)> = CTRL_ALT_DEL
        .into_iter()
        .zip(CTRL_ALT_DEL_SCANCODES)
        .collect();
    let down = keys.iter().map(|&(k, s)| (k, s, true));
    let up = keys.iter().rev().map(|&(k, s)| (k, s, false));
    down.chain(up).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn mouse_buttons_map_to_rfb_order() {
        assert_eq!(rfb_buttons(0), 0);
        assert_eq!(rfb_buttons(1), 1, "left");
        assert_eq!(rfb_buttons(2), 4, "right");
        assert_eq!(rfb_buttons(4), 2, "middle");
        assert_eq!(rfb_buttons(7), 7);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn wheel_steps_map_to_rfb_buttons_4_to_7() {
        assert_eq!(wheel_button(0.0, -3.0), 8, "up");
        assert_eq!(wheel_button(0.0, 100.0), 16, "down");
        assert_eq!(wheel_button(-1.0, 0.0), 32, "left");
        assert_eq!(wheel_button(5.0, 0.0), 64, "right");
        assert_eq!(wheel_button(0.0, 0.0), 0);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_point_on_a_scaled_canvas_is_the_same_point_on_the_guest_screen() {
        // A 720x400 screen shown at 360x200: everything doubles.
        assert_eq!(screen_point((10, 20), (360, 200), (720, 400)), (20, 40));
        // Shown 1:1.
        assert_eq!(screen_point((719, 399), (720, 400), (720, 400)), (719, 399));
        // Outside to the left or above (a negative offset), and a canvas not laid out yet.
        assert_eq!(screen_point((-5, -1), (360, 200), (720, 400)), (0, 0));
        assert_eq!(screen_point((3, 3), (0, 0), (720, 400)), (2160, 1200));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn ctrl_alt_del_presses_in_order_and_releases_in_reverse() {
        let events = ctrl_alt_del();
        assert_eq!(events.len(), 2 * CTRL_ALT_DEL.len());
        let (first, last) = (events[0], events[events.len() - 1]);
        assert!(first.2 && !last.2);
        assert_eq!(
            (first.0, first.1),
            (last.0, last.1),
            "the first key pressed is released last"
        );
        assert!(events[..CTRL_ALT_DEL.len()].iter().all(|e| e.2));
    }
}
