//! An update's damage gathered, so that a view draws once per update.

use crate::Event;

/// What an update changed, gathered from its events so that a view draws once per update
/// ([`Event::UpdateDone`]): solid fills first (a canvas fills natively, far faster than it
/// copies pixels), then the other rectangles from the framebuffer, one by one or, when there are
/// many, as their bounding box (each canvas call costs more than its pixels).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    fills: Vec<Paint>,
    rects: Vec<(u16, u16, u16, u16)>,
}

/// One drawing step for a view: `(x, y, width, height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// Fill with this colour.
    Fill((u16, u16, u16, u16), [u8; 3]),
    /// Copy from the framebuffer.
    Copy((u16, u16, u16, u16)),
}

impl Dirty {
    /// Above this many rectangles, their bounding box is copied instead.
    pub const MAX_RECTS: usize = 32;

    /// Gathers a [`Event::Damage`] or [`Event::Fill`]; other events are ignored.
    pub fn add(&mut self, ev: &Event) {
        match *ev {
            Event::Damage {
                x,
                y,
                width,
                height,
            } if width > 0 && height > 0 => self.rects.push((x, y, width, height)),
            Event::Fill {
                x,
                y,
                width,
                height,
                rgb,
            } if width > 0 && height > 0 => {
                self.fills.push(Paint::Fill((x, y, width, height), rgb))
            }
            _ => {}
        }
    }

    /// The steps to draw, in order, and a fresh start. Drawing the fills first is right whatever
    /// the order the rectangles came in: the copies show the framebuffer's final pixels.
    pub fn take(&mut self) -> Vec<Paint> {
        let mut out = std::mem::take(&mut self.fills);
        let rects = std::mem::take(&mut self.rects);
        if rects.len() <= Self::MAX_RECTS {
            out.extend(rects.into_iter().map(Paint::Copy));
        } else {
            let x0 = rects.iter().map(|r| r.0).min().unwrap_or(0);
            let y0 = rects.iter().map(|r| r.1).min().unwrap_or(0);
            let x1 = rects
                .iter()
                .map(|r| u32::from(r.0) + u32::from(r.2))
                .max()
                .unwrap_or(0);
            let y1 = rects
                .iter()
                .map(|r| u32::from(r.1) + u32::from(r.3))
                .max()
                .unwrap_or(0);
            let span = |end: u32, start: u16| {
                u16::try_from(end.saturating_sub(u32::from(start))).unwrap_or(u16::MAX)
            };
            out.push(Paint::Copy((x0, y0, span(x1, x0), span(y1, y0))));
        }
        out
    }
}
