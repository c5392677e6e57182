//! Server messages after the handshake: FramebufferUpdate (its rectangles, one function per
//! encoding), SetColourMapEntries (skipped), Bell and ServerCutText; and the client's update
//! requests.

use crate::decode::{self, Canvas, Inflater};
use crate::encoding::{Encoding, Rect};
use crate::reader::Reader;
use crate::{Client, Error, Event, State, Step, MAX_CURSOR};

/// Not enough bytes yet: `Ok(None)` from the enclosing parser.
type Part<T> = Result<Option<T>, Error>;

/// How a pixel rectangle ended.
enum Drawn {
    /// Painted; a Tight solid fill says its colour, so that a view can fill natively.
    Painted { fill: Option<[u8; 3]> },
    /// A Tight JPEG handed to the view (`consumed` bytes of input used, the JPEG at `jpeg` in
    /// them): parsing waits for its pixels.
    HandedOut {
        consumed: usize,
        jpeg: std::ops::Range<usize>,
    },
}

impl Client {
    pub(crate) fn request_update(&mut self, incremental: bool) {
        self.output.push(3);
        self.output.push(u8::from(incremental));
        self.output.extend_from_slice(&[0, 0, 0, 0]);
        self.output.extend_from_slice(&self.width.to_be_bytes());
        self.output.extend_from_slice(&self.height.to_be_bytes());
    }

    pub(crate) fn server_message(&mut self, r: &mut Reader<'_>, events: &mut Vec<Event>) -> Step {
        let Some(kind) = r.u8() else { return Ok(None) };
        match kind {
            0 => {
                let Some(_pad) = r.u8() else { return Ok(None) };
                let Some(n) = r.u16() else { return Ok(None) };
                // Pipelining: ask for the next update before decoding this one.
                self.request_update(true);
                if n == 0 {
                    events.push(Event::UpdateDone);
                } else {
                    self.state = State::Running { rects_left: n };
                }
            }
            1 => {
                // SetColourMapEntries: not used with true colour; skip it whole.
                let Some(_) = r.take(3) else { return Ok(None) };
                let Some(count) = r.u16() else {
                    return Ok(None);
                };
                let Some(_) = r.take(usize::from(count) * 6) else {
                    return Ok(None);
                };
            }
            2 => events.push(Event::Bell),
            3 => {
                let Some(_) = r.take(3) else { return Ok(None) };
                let Some(len) = r.u32() else { return Ok(None) };
                if len > 1 << 20 {
                    return Err(Error::Unsupported("a clipboard larger than 1 MiB".into()));
                }
                let Some(text) = r.take(len as usize) else {
                    return Ok(None);
                };
                // RFB clipboard text is Latin-1.
                events.push(Event::ClipboardText(
                    text.iter().map(|&b| char::from(b)).collect(),
                ));
            }
            other => return Err(Error::Unsupported(format!("server message type {other}"))),
        }
        Ok(Some(r.pos))
    }

    /// One rectangle of a FramebufferUpdate, `rects_left` of them still to come.
    pub(crate) fn rectangle(
        &mut self,
        r: &mut Reader<'_>,
        rects_left: u16,
        events: &mut Vec<Event>,
    ) -> Step {
        let (Some(x), Some(y), Some(w), Some(h), Some(enc)) =
            (r.u16(), r.u16(), r.u16(), r.u16(), r.i32())
        else {
            return Ok(None);
        };
        let rect = Rect { x, y, w, h };
        let mut left = rects_left - 1;
        let done = match Encoding::from_i32(enc) {
            Encoding::LastRect => {
                left = 0;
                Some(())
            }
            Encoding::QemuExtendedKey => {
                self.extended_key_ack(events);
                Some(())
            }
            Encoding::QemuLedState => led_state(r, events),
            Encoding::ExtendedDesktopSize => self.extended_desktop_size(r, rect, events)?,
            Encoding::Cursor => cursor(r, rect, events)?,
            Encoding::DesktopSize => {
                self.desktop_size(rect, events)?;
                Some(())
            }
            Encoding::Unknown(other) => {
                return Err(Error::Unsupported(format!(
                    "encoding {other}, which was not asked for"
                )))
            }
            pixels => match self.pixels(r, rect, pixels)? {
                None => None,
                Some(Drawn::HandedOut { consumed, jpeg }) => {
                    events.push(Event::Jpeg {
                        x,
                        y,
                        width: w,
                        height: h,
                        data: r.buf[r.pos..][jpeg].to_vec(),
                    });
                    self.awaiting_jpeg = Some((x, y, w, h));
                    self.state = State::Running { rects_left: left };
                    return Ok(Some(r.pos + consumed));
                }
                Some(Drawn::Painted { fill }) => {
                    match fill {
                        Some(rgb) => events.push(Event::Fill {
                            x,
                            y,
                            width: w,
                            height: h,
                            rgb,
                        }),
                        None if w > 0 && h > 0 => events.push(Event::Damage {
                            x,
                            y,
                            width: w,
                            height: h,
                        }),
                        None => {}
                    }
                    Some(())
                }
            },
        };
        if done.is_none() {
            return Ok(None);
        }
        if left == 0 {
            events.push(Event::UpdateDone);
        }
        self.state = State::Running { rects_left: left };
        Ok(Some(r.pos))
    }

    fn extended_key_ack(&mut self, events: &mut Vec<Event>) {
        if !self.extended_keys {
            self.extended_keys = true;
            events.push(Event::ExtendedKeys);
        }
    }

    fn extended_desktop_size(
        &mut self,
        r: &mut Reader<'_>,
        rect: Rect,
        events: &mut Vec<Event>,
    ) -> Part<()> {
        let Some(head) = r.take(4) else {
            return Ok(None);
        };
        let Some(_screens) = r.take(usize::from(head[0]) * 16) else {
            return Ok(None);
        };
        // y != 0 answers a size the client asked for; only a change (x = 0 or 1 with status 0)
        // resizes the framebuffer.
        if rect.y == 0 && (rect.w, rect.h) != (self.width, self.height) {
            self.desktop_size(rect, events)?;
        }
        Ok(Some(()))
    }

    fn desktop_size(&mut self, rect: Rect, events: &mut Vec<Event>) -> Result<(), Error> {
        self.resize(rect.w, rect.h)?;
        events.push(Event::Resized {
            width: rect.w,
            height: rect.h,
        });
        Ok(())
    }

    /// A rectangle of pixels in one of the pixel encodings, checked to lie inside the desktop.
    fn pixels(&mut self, r: &mut Reader<'_>, rect: Rect, enc: Encoding) -> Part<Drawn> {
        if !rect.inside(self.width, self.height) {
            return Err(Error::Protocol(format!(
                "rectangle {}x{}+{}+{} outside the {}x{} desktop",
                rect.w, rect.h, rect.x, rect.y, self.width, self.height
            )));
        }
        let mut canvas = Canvas {
            pixels: &mut self.pixels,
            width: usize::from(self.width),
        };
        let painted = |done: Option<()>| done.map(|()| Drawn::Painted { fill: None });
        match enc {
            Encoding::Raw => Ok(painted(raw(&mut canvas, r, rect))),
            Encoding::Zlib => Ok(painted(zlib(&mut self.zlib, &mut canvas, r, rect)?)),
            Encoding::Zrle => Ok(painted(zrle(&mut self.zrle, &mut canvas, r, rect)?)),
            Encoding::Hextile => Ok(painted(hextile(&mut canvas, r, rect)?)),
            Encoding::Tight => {
                let rest = &r.buf[r.pos..];
                let Some(parsed) =
                    self.tight
                        .rect(&mut canvas, rect.usize(), rest, self.decode_jpeg)?
                else {
                    return Ok(None);
                };
                if let Some(jpeg) = parsed.jpeg {
                    return Ok(Some(Drawn::HandedOut {
                        consumed: parsed.used,
                        jpeg,
                    }));
                }
                r.pos += parsed.used;
                Ok(Some(Drawn::Painted { fill: parsed.fill }))
            }
            Encoding::CopyRect => {
                let (Some(sx), Some(sy)) = (r.u16(), r.u16()) else {
                    return Ok(None);
                };
                let source = Rect {
                    x: sx,
                    y: sy,
                    ..rect
                };
                if !source.inside(self.width, self.height) {
                    return Err(Error::Protocol(
                        "CopyRect source outside the desktop".into(),
                    ));
                }
                self.copy_rect(source, rect);
                Ok(Some(Drawn::Painted { fill: None }))
            }
            other => Err(Error::Unsupported(format!(
                "{other:?} is not a pixel encoding"
            ))),
        }
    }

    /// Copies `from` to `to`'s position (same size), overlapping or not.
    fn copy_rect(&mut self, from: Rect, to: Rect) {
        let stride = usize::from(self.width) * 4;
        let len = usize::from(to.w) * 4;
        // Overlapping copies must read rows in the direction that does not overwrite the source.
        let rows: Box<dyn Iterator<Item = usize>> = if to.y > from.y {
            Box::new((0..usize::from(to.h)).rev())
        } else {
            Box::new(0..usize::from(to.h))
        };
        for row in rows {
            let src = (usize::from(from.y) + row) * stride + usize::from(from.x) * 4;
            let dst = (usize::from(to.y) + row) * stride + usize::from(to.x) * 4;
            self.pixels.copy_within(src..src + len, dst);
        }
    }
}

fn led_state(r: &mut Reader<'_>, events: &mut Vec<Event>) -> Option<()> {
    let leds = r.u8()?;
    events.push(Event::Leds {
        scroll_lock: leds & 1 != 0,
        num_lock: leds & 2 != 0,
        caps_lock: leds & 4 != 0,
    });
    Some(())
}

/// The guest's pointer image: RGBX pixels and a 1-bit mask, as RGBA.
fn cursor(r: &mut Reader<'_>, rect: Rect, events: &mut Vec<Event>) -> Part<()> {
    if rect.w > MAX_CURSOR || rect.h > MAX_CURSOR {
        return Err(Error::Unsupported(format!(
            "a {}x{} cursor",
            rect.w, rect.h
        )));
    }
    let (_, _, wu, hu) = rect.usize();
    let Some(pixels) = r.take(wu * hu * 4) else {
        return Ok(None);
    };
    let Some(mask) = r.take(wu.div_ceil(8) * hu) else {
        return Ok(None);
    };
    let mut rgba = pixels.to_vec();
    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
        let (row, col) = (i / wu, i % wu);
        let bit = mask[row * wu.div_ceil(8) + col / 8] >> (7 - col % 8) & 1;
        px[3] = if bit == 1 { 255 } else { 0 };
    }
    events.push(Event::Cursor {
        hotspot_x: rect.x,
        hotspot_y: rect.y,
        width: rect.w,
        height: rect.h,
        rgba,
    });
    Ok(Some(()))
}

fn raw(canvas: &mut Canvas<'_>, r: &mut Reader<'_>, rect: Rect) -> Option<()> {
    let data = r.take(rect.pixels() * 4)?;
    let (x, y, w, _) = rect.usize();
    canvas.rgbx_rows(x, y, w, data);
    Some(())
}

/// A u32 length and that many bytes of a compressed rectangle (at most 64 MiB).
fn compressed<'a>(r: &mut Reader<'a>) -> Part<&'a [u8]> {
    let Some(len) = r.u32() else { return Ok(None) };
    if len > 64 << 20 {
        return Err(Error::Protocol("a compressed rectangle over 64 MiB".into()));
    }
    Ok(r.take(len as usize))
}

fn zlib(
    stream: &mut Inflater,
    canvas: &mut Canvas<'_>,
    r: &mut Reader<'_>,
    rect: Rect,
) -> Part<()> {
    let Some(data) = compressed(r)? else {
        return Ok(None);
    };
    let want = rect.pixels() * 4;
    let raw = stream.inflate(data, want)?;
    if raw.len() != want {
        return Err(Error::Protocol("Zlib rectangle of the wrong size".into()));
    }
    let (x, y, w, _) = rect.usize();
    canvas.rgbx_rows(x, y, w, raw);
    Ok(Some(()))
}

fn zrle(
    stream: &mut Inflater,
    canvas: &mut Canvas<'_>,
    r: &mut Reader<'_>,
    rect: Rect,
) -> Part<()> {
    let Some(data) = compressed(r)? else {
        return Ok(None);
    };
    let (x, y, w, h) = rect.usize();
    let raw = stream.inflate(data, decode::zrle_bound(w, h))?;
    decode::zrle(canvas, x, y, w, h, raw)?;
    Ok(Some(()))
}

fn hextile(canvas: &mut Canvas<'_>, r: &mut Reader<'_>, rect: Rect) -> Part<()> {
    let (x, y, w, h) = rect.usize();
    let Some(used) = decode::hextile(canvas, x, y, w, h, &r.buf[r.pos..])? else {
        return Ok(None);
    };
    r.pos += used;
    Ok(Some(()))
}
