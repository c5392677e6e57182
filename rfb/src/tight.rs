//! The Tight encoding (rfbproto.rst §7.7.6, as QEMU, TigerVNC and noVNC speak it): per
//! rectangle a fill colour, a JPEG image, or "basic" data (copied, palette-indexed or gradient-
//! predicted pixels) that is zlib-compressed on one of four persistent streams when it is 12
//! bytes or more. Pixels travel as 3-byte TPIXELs (R, G, B for our pixel format).
//!
//! JPEG is decoded by `zune-jpeg` (feature `jpeg`), or handed to the caller (the browser decodes
//! it natively): see [`crate::Client::hand_off_jpeg`].
//!
//! Parsing is all-or-nothing like the rest of the client: until the rectangle's last byte has
//! arrived nothing is inflated and no stream is reset, so a rectangle cut across reads decodes
//! exactly as a whole one.

use crate::decode::{Canvas, Inflater};
use crate::Error;

/// Basic data shorter than this is sent as is, not compressed (the protocol's constant).
const MIN_TO_COMPRESS: usize = 12;

/// The four zlib streams of a Tight connection.
#[derive(Default)]
pub struct Tight {
    streams: [Inflater; 4],
}

enum Filter<'a> {
    Copy,
    Palette(&'a [u8]),
    Gradient,
}

/// Reads from the bytes that have arrived; `None` means "wait for more".
struct Avail<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Avail<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// Tight's compact length: 7 bits a byte, low bits first, at most 3 bytes (22 bits).
    fn compact_len(&mut self) -> Option<usize> {
        let mut len = 0usize;
        for i in 0..3 {
            let b = self.u8()? as usize;
            if i == 2 {
                return Some(len | b << 14);
            }
            len |= (b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(len)
    }
}

impl Tight {
    /// Parses and paints one Tight rectangle (already checked to lie inside the canvas) from the
    /// bytes available; `None` when more must arrive first. A JPEG is painted here when
    /// `decode_jpeg`, else left unpainted and its bytes' range given back.
    pub fn rect(
        &mut self,
        c: &mut Canvas<'_>,
        (x, y, w, h): (usize, usize, usize, usize),
        data: &[u8],
        decode_jpeg: bool,
    ) -> Result<Option<Parsed>, Error> {
        let done = |used| {
            Ok(Some(Parsed {
                used,
                jpeg: None,
                fill: None,
            }))
        };
        let mut r = Avail { buf: data, pos: 0 };
        let Some(ctl) = r.u8() else { return Ok(None) };
        let kind = ctl >> 4;
        if kind == 8 {
            let Some(p) = r.take(3) else { return Ok(None) };
            self.reset(ctl);
            let rgb = [p[0], p[1], p[2]];
            c.fill(x, y, w, h, rgb);
            return Ok(Some(Parsed {
                used: r.pos,
                jpeg: None,
                fill: Some(rgb),
            }));
        }
        if kind == 9 {
            let Some(len) = r.compact_len() else {
                return Ok(None);
            };
            let Some(jpeg) = r.take(len) else {
                return Ok(None);
            };
            self.reset(ctl);
            if !decode_jpeg {
                return Ok(Some(Parsed {
                    used: r.pos,
                    jpeg: Some(r.pos - len..r.pos),
                    fill: None,
                }));
            }
            paint_jpeg(c, (x, y, w, h), jpeg)?;
            return done(r.pos);
        }
        if kind & 8 != 0 {
            return Err(Error::Protocol(format!("Tight compression type {kind}")));
        }
        let filter = if kind & 4 == 0 {
            Filter::Copy
        } else {
            match r.u8() {
                None => return Ok(None),
                Some(0) => Filter::Copy,
                Some(1) => {
                    let Some(n) = r.u8() else { return Ok(None) };
                    let Some(colours) = r.take((n as usize + 1) * 3) else {
                        return Ok(None);
                    };
                    Filter::Palette(colours)
                }
                Some(2) => Filter::Gradient,
                Some(f) => return Err(Error::Protocol(format!("Tight filter {f}"))),
            }
        };
        let size = match filter {
            Filter::Palette(p) if p.len() == 6 => w.div_ceil(8) * h,
            Filter::Palette(_) => w * h,
            Filter::Copy | Filter::Gradient => w * h * 3,
        };
        let pixels = if size < MIN_TO_COMPRESS {
            let Some(raw) = r.take(size) else {
                return Ok(None);
            };
            self.reset(ctl);
            raw
        } else {
            let Some(len) = r.compact_len() else {
                return Ok(None);
            };
            let Some(z) = r.take(len) else {
                return Ok(None);
            };
            self.reset(ctl);
            let inflated = self.streams[(kind & 3) as usize].inflate(z, size)?;
            if inflated.len() != size {
                return Err(Error::Protocol("Tight data of the wrong size".into()));
            }
            inflated
        };
        if w == 0 || h == 0 {
            return done(r.pos);
        }
        match filter {
            Filter::Copy => c.rgb_rows(x, y, w, pixels),
            Filter::Palette(colours) => {
                // RGBA per index; indices past the palette are errors.
                let table: Vec<[u8; 4]> = colours
                    .chunks_exact(3)
                    .map(|p| [p[0], p[1], p[2], 255])
                    .collect();
                let bad = || Error::Protocol("Tight palette index out of range".into());
                if table.len() == 2 {
                    let row_bytes = w.div_ceil(8);
                    for (row, bits) in pixels.chunks_exact(row_bytes).enumerate() {
                        for (col, d) in c.row(x, y + row, w).chunks_exact_mut(4).enumerate() {
                            let bit = bits[col / 8] >> (7 - col % 8) & 1;
                            d.copy_from_slice(&table[bit as usize]);
                        }
                    }
                } else {
                    for (row, idx) in pixels.chunks_exact(w).enumerate() {
                        for (d, &i) in c.row(x, y + row, w).chunks_exact_mut(4).zip(idx) {
                            d.copy_from_slice(table.get(i as usize).ok_or_else(bad)?);
                        }
                    }
                }
            }
            Filter::Gradient => {
                // Each component is predicted from left + above - above-left (clamped) and the
                // residual added modulo 256; outside the rectangle counts as 0.
                let mut prev = vec![0u8; w * 3];
                let mut cur = vec![0u8; w * 3];
                for (row, residuals) in pixels.chunks_exact(w * 3).enumerate() {
                    for col in 0..w {
                        for k in 0..3 {
                            let left = if col > 0 { cur[(col - 1) * 3 + k] } else { 0 } as i16;
                            let up = prev[col * 3 + k] as i16;
                            let up_left = if col > 0 { prev[(col - 1) * 3 + k] } else { 0 } as i16;
                            // Clamped to 0..=255 first: the cast is exact.
                            #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
                            let predict = (left + up - up_left).clamp(0, 255) as u8;
                            cur[col * 3 + k] = predict.wrapping_add(residuals[col * 3 + k]);
                        }
                    }
                    c.rgb_rows(x, y + row, w, &cur);
                    std::mem::swap(&mut prev, &mut cur);
                }
            }
        }
        done(r.pos)
    }

    /// The low 4 bits of the control byte ask to reset streams 0-3 before this rectangle.
    fn reset(&mut self, ctl: u8) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if ctl & (1 << i) != 0 {
                *s = Inflater::default();
            }
        }
    }
}

/// What a rectangle used, where its JPEG lies when it was not decoded here, and its colour when
/// it was a solid fill.
pub struct Parsed {
    pub used: usize,
    pub jpeg: Option<std::ops::Range<usize>>,
    pub fill: Option<[u8; 3]>,
}

#[cfg(not(feature = "jpeg"))]
fn paint_jpeg(_: &mut Canvas<'_>, _: (usize, usize, usize, usize), _: &[u8]) -> Result<(), Error> {
    Err(Error::Unsupported(
        "JPEG without the jpeg feature (hand it off instead)".into(),
    ))
}

/// Decodes a JPEG that must be exactly the rectangle's size and paints it.
#[cfg(feature = "jpeg")]
fn paint_jpeg(
    c: &mut Canvas<'_>,
    (x, y, w, h): (usize, usize, usize, usize),
    jpeg: &[u8],
) -> Result<(), Error> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let bad = |what: String| Error::Protocol(format!("Tight JPEG: {what}"));
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(w.max(1))
        .set_max_height(h.max(1));
    let mut d = zune_jpeg::JpegDecoder::new_with_options(jpeg, options);
    let rgb = d.decode().map_err(|e| bad(format!("{e:?}")))?;
    if d.dimensions() != Some((w, h)) || rgb.len() != w * h * 3 {
        return Err(bad(format!(
            "an image of {:?} for a {w}x{h} rectangle",
            d.dimensions()
        )));
    }
    c.rgb_rows(x, y, w, &rgb);
    Ok(())
}
