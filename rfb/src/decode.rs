//! The compressed encodings: Zlib, ZRLE (RFC 6143 §7.7.5-6) and Hextile (§7.7.4), decoding into
//! the RGBA framebuffer. Each zlib-based encoding keeps one zlib stream for the whole connection
//! (the server never resets it), inflated with `miniz_oxide` (pure Rust, also in the browser).
//! Every length and index is checked: hostile input is an [`Error`], never a panic, and a stream
//! cannot inflate past a bound derived from the rectangle (no decompression bombs).

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::Error;

/// One persistent zlib stream of a connection, and the buffer it inflates into (kept, so that a
/// rectangle costs no allocation and no clearing once the buffer has grown).
pub struct Inflater {
    state: Box<InflateState>,
    out: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            state: InflateState::new_boxed(DataFormat::Zlib),
            out: Vec::new(),
        }
    }
}

impl Inflater {
    /// Inflates all of `input` (one rectangle's worth, sync-flushed by the server); at most
    /// `limit` bytes out.
    pub fn inflate(&mut self, input: &[u8], limit: usize) -> Result<&[u8], Error> {
        let first = limit.clamp(64, 1 << 16);
        if self.out.len() < first {
            self.out.resize(first, 0);
        }
        let (mut read, mut written) = (0, 0);
        loop {
            let room = self.out.len().min(limit);
            if written == room && room < limit {
                let grown = (self.out.len() * 2).min(limit);
                self.out.resize(grown, 0);
            }
            let end = self.out.len().min(limit);
            let r = inflate(
                &mut self.state,
                &input[read..],
                &mut self.out[written..end],
                MZFlush::Sync,
            );
            read += r.bytes_consumed;
            written += r.bytes_written;
            match r.status {
                Ok(MZStatus::Ok) | Err(MZError::Buf) => {}
                Ok(MZStatus::StreamEnd) => break,
                Ok(MZStatus::NeedDict) | Err(_) => {
                    return Err(Error::Protocol("corrupt zlib data".into()))
                }
            }
            if read == input.len() {
                break;
            }
            if r.bytes_consumed == 0 && r.bytes_written == 0 {
                // No progress: the output is full at the bound with input left (a bomb), or the
                // input is cut.
                return Err(Error::Protocol(if written == limit {
                    "compressed data inflates past its rectangle".into()
                } else {
                    "truncated zlib data".into()
                }));
            }
        }
        Ok(&self.out[..written])
    }
}

/// A cursor over decompressed bytes that fails instead of reading past the end.
struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| Error::Protocol("truncated ZRLE data".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    /// A compressed pixel: R, G, B (our pixel format keeps its colours in the low 3 bytes).
    fn cpixel(&mut self) -> Result<[u8; 3], Error> {
        let b = self.take(3)?;
        Ok([b[0], b[1], b[2]])
    }
}

/// Where decoders paint: the RGBA framebuffer and its width.
pub struct Canvas<'a> {
    pub pixels: &'a mut [u8],
    pub width: usize,
}

impl Canvas<'_> {
    pub(crate) fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let i = (y * self.width + x) * 4;
        self.pixels[i..i + 3].copy_from_slice(&rgb);
        self.pixels[i + 3] = 255;
    }

    /// `w` pixels of row `y` from column `x`, RGBA.
    pub(crate) fn row(&mut self, x: usize, y: usize, w: usize) -> &mut [u8] {
        let i = (y * self.width + x) * 4;
        &mut self.pixels[i..i + w * 4]
    }

    pub(crate) fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        let px = [rgb[0], rgb[1], rgb[2], 255];
        for row in y..y + h {
            for d in self.row(x, row, w).chunks_exact_mut(4) {
                d.copy_from_slice(&px);
            }
        }
    }

    /// Paints rows of `w` 4-byte pixels (R, G, B, unused) from `src`.
    pub(crate) fn rgbx_rows(&mut self, x: usize, y: usize, w: usize, src: &[u8]) {
        if w == 0 {
            return;
        }
        for (row, line) in src.chunks_exact(w * 4).enumerate() {
            let dst = self.row(x, y + row, w);
            dst.copy_from_slice(line);
            for a in dst.iter_mut().skip(3).step_by(4) {
                *a = 255;
            }
        }
    }

    /// Paints `h` rows of `w` packed 3-byte pixels (R, G, B) from `src`.
    pub(crate) fn rgb_rows(&mut self, x: usize, y: usize, w: usize, src: &[u8]) {
        if w == 0 {
            return;
        }
        for (row, line) in src.chunks_exact(w * 3).enumerate() {
            for (d, s) in self
                .row(x, y + row, w)
                .chunks_exact_mut(4)
                .zip(line.chunks_exact(3))
            {
                d[..3].copy_from_slice(s);
                d[3] = 255;
            }
        }
    }
}

/// Paints a ZRLE rectangle (already checked to lie inside the canvas) from its inflated data.
pub fn zrle(
    c: &mut Canvas<'_>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    data: &[u8],
) -> Result<(), Error> {
    let mut b = Bytes { buf: data, pos: 0 };
    for ty in (0..h).step_by(64) {
        for tx in (0..w).step_by(64) {
            let (tw, th) = ((w - tx).min(64), (h - ty).min(64));
            let (ox, oy) = (x + tx, y + ty);
            let sub = b.u8()?;
            match sub {
                0 => c.rgb_rows(ox, oy, tw, b.take(tw * th * 3)?),
                1 => {
                    let p = b.cpixel()?;
                    c.fill(ox, oy, tw, th, p);
                }
                2..=16 => {
                    let n = sub as usize;
                    let mut palette = [[0u8; 3]; 16];
                    for p in palette.iter_mut().take(n) {
                        *p = b.cpixel()?;
                    }
                    let bits = match n {
                        2 => 1,
                        3..=4 => 2,
                        _ => 4,
                    };
                    let row_bytes = (tw * bits).div_ceil(8);
                    for row in 0..th {
                        let packed = b.take(row_bytes)?;
                        for col in 0..tw {
                            let bit = col * bits;
                            let byte = packed[bit / 8];
                            let idx = (byte >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
                            let p = *palette
                                .get(idx as usize)
                                .filter(|_| (idx as usize) < n)
                                .ok_or_else(|| {
                                    Error::Protocol("ZRLE palette index out of range".into())
                                })?;
                            c.put(ox + col, oy + row, p);
                        }
                    }
                }
                128 | 130..=255 => {
                    let mut palette = [[0u8; 3]; 127];
                    let n = if sub == 128 { 0 } else { sub as usize - 128 };
                    for p in palette.iter_mut().take(n) {
                        *p = b.cpixel()?;
                    }
                    let total = tw * th;
                    let mut i = 0;
                    while i < total {
                        let (p, run) = if sub == 128 {
                            (b.cpixel()?, run_length(&mut b)?)
                        } else {
                            let idx = b.u8()?;
                            let p = *palette
                                .get((idx & 127) as usize)
                                .filter(|_| ((idx & 127) as usize) < n)
                                .ok_or_else(|| {
                                    Error::Protocol("ZRLE palette index out of range".into())
                                })?;
                            (
                                p,
                                if idx & 128 != 0 {
                                    run_length(&mut b)?
                                } else {
                                    1
                                },
                            )
                        };
                        if run > total - i {
                            return Err(Error::Protocol("ZRLE run past its tile".into()));
                        }
                        for k in i..i + run {
                            c.put(ox + k % tw, oy + k / tw, p);
                        }
                        i += run;
                    }
                }
                other => return Err(Error::Protocol(format!("ZRLE subencoding {other}"))),
            }
        }
    }
    Ok(())
}

/// A run length: bytes of 255 add up, the first other byte ends it; the length is the sum + 1.
fn run_length(b: &mut Bytes<'_>) -> Result<usize, Error> {
    let mut len = 1usize;
    loop {
        let v = b.u8()?;
        len += v as usize;
        if v != 255 {
            return Ok(len);
        }
        if len > 64 * 64 {
            return Err(Error::Protocol("ZRLE run past its tile".into()));
        }
    }
}

/// The most a ZRLE rectangle's data can inflate to: raw tiles at 3 bytes a pixel, or a run of
/// 1 per pixel in 4, plus each tile's subencoding and palette.
pub fn zrle_bound(w: usize, h: usize) -> usize {
    let tiles = w.div_ceil(64) * h.div_ceil(64);
    w * h * 4 + tiles * (1 + 127 * 3) + 16
}

/// Parses and paints a Hextile rectangle from `data` (the bytes available); returns how many it
/// used, or `None` when more must arrive first (the tiles painted so far are painted again then,
/// identically).
pub fn hextile(
    c: &mut Canvas<'_>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    data: &[u8],
) -> Result<Option<usize>, Error> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = data.get(pos..pos + n)?;
        pos += n;
        Some(s)
    };
    let mut bg = [0u8; 3];
    let mut fg = [0u8; 3];
    for ty in (0..h).step_by(16) {
        for tx in (0..w).step_by(16) {
            let (tw, th) = ((w - tx).min(16), (h - ty).min(16));
            let (ox, oy) = (x + tx, y + ty);
            let Some(&[mask]) = take(1) else {
                return Ok(None);
            };
            if mask & 1 != 0 {
                let Some(raw) = take(tw * th * 4) else {
                    return Ok(None);
                };
                for (i, px) in raw.chunks_exact(4).enumerate() {
                    c.put(ox + i % tw, oy + i / tw, [px[0], px[1], px[2]]);
                }
                continue;
            }
            if mask & 2 != 0 {
                let Some(p) = take(4) else { return Ok(None) };
                bg = [p[0], p[1], p[2]];
            }
            c.fill(ox, oy, tw, th, bg);
            if mask & 4 != 0 {
                let Some(p) = take(4) else { return Ok(None) };
                fg = [p[0], p[1], p[2]];
            }
            if mask & 8 != 0 {
                let Some(&[n]) = take(1) else { return Ok(None) };
                let coloured = mask & 16 != 0;
                for _ in 0..n {
                    let colour = if coloured {
                        let Some(p) = take(4) else { return Ok(None) };
                        [p[0], p[1], p[2]]
                    } else {
                        fg
                    };
                    let Some(&[xy, wh]) = take(2) else {
                        return Ok(None);
                    };
                    let (sx, sy) = ((xy >> 4) as usize, (xy & 15) as usize);
                    let (sw, sh) = ((wh >> 4) as usize + 1, (wh & 15) as usize + 1);
                    if sx + sw > tw || sy + sh > th {
                        return Err(Error::Protocol(
                            "Hextile subrectangle outside its tile".into(),
                        ));
                    }
                    c.fill(ox + sx, oy + sy, sw, sh, colour);
                }
            }
        }
    }
    Ok(Some(pos))
}
