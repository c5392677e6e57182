//! What a rectangle's header says: where it is ([`Rect`]) and how it is encoded ([`Encoding`]).

use crate::{
    ENC_COPY_RECT, ENC_CURSOR, ENC_DESKTOP_SIZE, ENC_EXTENDED_DESKTOP_SIZE, ENC_HEXTILE,
    ENC_LAST_RECT, ENC_QEMU_EXTENDED_KEY, ENC_QEMU_LED_STATE, ENC_RAW, ENC_TIGHT, ENC_ZLIB,
    ENC_ZRLE,
};

/// A rectangle of the desktop, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    /// Whether it lies inside a `width` × `height` desktop.
    pub fn inside(&self, width: u16, height: u16) -> bool {
        u32::from(self.x) + u32::from(self.w) <= u32::from(width)
            && u32::from(self.y) + u32::from(self.h) <= u32::from(height)
    }

    /// `(x, y, w, h)` as indices into the framebuffer.
    pub fn usize(&self) -> (usize, usize, usize, usize) {
        (
            usize::from(self.x),
            usize::from(self.y),
            usize::from(self.w),
            usize::from(self.h),
        )
    }

    /// Its area in pixels.
    pub fn pixels(&self) -> usize {
        usize::from(self.w) * usize::from(self.h)
    }
}

/// How a rectangle's pixels come, or which pseudo-encoding it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    CopyRect,
    Hextile,
    Zlib,
    Tight,
    Zrle,
    /// The guest's pointer image.
    Cursor,
    /// The end of an update whose rectangle count was not known.
    LastRect,
    DesktopSize,
    ExtendedDesktopSize,
    /// The server takes QEMU's extended key events (scancodes).
    QemuExtendedKey,
    /// The keyboard's lock LEDs.
    QemuLedState,
    /// One this client did not ask for.
    Unknown(i32),
}

impl Encoding {
    pub fn from_i32(n: i32) -> Encoding {
        match n {
            ENC_RAW => Encoding::Raw,
            ENC_COPY_RECT => Encoding::CopyRect,
            ENC_HEXTILE => Encoding::Hextile,
            ENC_ZLIB => Encoding::Zlib,
            ENC_TIGHT => Encoding::Tight,
            ENC_ZRLE => Encoding::Zrle,
            ENC_CURSOR => Encoding::Cursor,
            ENC_LAST_RECT => Encoding::LastRect,
            ENC_DESKTOP_SIZE => Encoding::DesktopSize,
            ENC_EXTENDED_DESKTOP_SIZE => Encoding::ExtendedDesktopSize,
            ENC_QEMU_EXTENDED_KEY => Encoding::QemuExtendedKey,
            ENC_QEMU_LED_STATE => Encoding::QemuLedState,
            other => Encoding::Unknown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_know_whether_they_fit_and_encodings_their_numbers() {
        let r = Rect {
            x: 10,
            y: 0,
            w: 710,
            h: 400,
        };
        assert!(r.inside(720, 400));
        assert!(!r.inside(719, 400));
        assert!(!Rect {
            x: u16::MAX,
            y: 0,
            w: 2,
            h: 1
        }
        .inside(u16::MAX, 1));
        assert_eq!(r.pixels(), 710 * 400);
        for (n, e) in [
            (ENC_RAW, Encoding::Raw),
            (ENC_TIGHT, Encoding::Tight),
            (ENC_QEMU_LED_STATE, Encoding::QemuLedState),
        ] {
            assert_eq!(Encoding::from_i32(n), e);
        }
        assert_eq!(Encoding::from_i32(99), Encoding::Unknown(99));
    }
}
