//! The Tight encoding and the Cursor pseudo-encoding.

use super::*;

/// Tight's compact length (1-3 bytes, 7 bits each, low bits first).
fn compact(len: usize) -> Vec<u8> {
    let mut out = vec![(len & 0x7f) as u8];
    if len > 0x7f {
        out[0] |= 0x80;
        out.push((len >> 7 & 0x7f) as u8);
        if len > 0x3fff {
            out[1] |= 0x80;
            out.push((len >> 14) as u8);
        }
    }
    out
}

/// A basic-compression rectangle body: control byte, optional filter header, then the data,
/// sent as is under 12 bytes and else compressed on `z` with a compact length.
fn basic(ctl: u8, filter: &[u8], data: &[u8], z: &mut Deflater) -> Vec<u8> {
    let mut body = vec![ctl];
    body.extend_from_slice(filter);
    if data.len() < 12 {
        body.extend_from_slice(data);
    } else {
        let packed = z.compress(data);
        body.extend_from_slice(&compact(packed.len()));
        body.extend_from_slice(&packed);
    }
    body
}

/// Tight's gradient filter, encoding side: residual = pixel - clamp(left + up - up_left).
fn gradient_residuals(px: &[[u8; 3]], w: usize) -> Vec<u8> {
    let at = |x: isize, y: isize, k: usize| -> i16 {
        if x < 0 || y < 0 {
            0
        } else {
            px[y as usize * w + x as usize][k] as i16
        }
    };
    let mut out = Vec::new();
    for (i, p) in px.iter().enumerate() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for (k, &v) in p.iter().enumerate() {
            let predict = (at(x - 1, y, k) + at(x, y - 1, k) - at(x - 1, y - 1, k)).clamp(0, 255);
            out.push(v.wrapping_sub(predict as u8));
        }
    }
    out
}

fn flat(px: &[[u8; 3]]) -> Vec<u8> {
    px.iter().flatten().copied().collect()
}

/// One update with a rectangle of each Tight kind, on all four zlib streams.
fn every_kind(streams: &mut [Deflater; 4]) -> (Vec<u8>, Vec<Vec<[u8; 3]>>) {
    let copy_small = [RED, BLUE];
    let copy_big: Vec<[u8; 3]> = (0..8).map(|i| [i * 30, 255 - i * 30, 7]).collect();
    let gradient: Vec<[u8; 3]> = (0..8)
        .map(|i| [i * 20, i * 20 + 10, 250 - i * 25])
        .collect();
    // Two colours: one bit a pixel, rows padded to a byte (10 pixels: 2 bytes a row).
    let two: Vec<[u8; 3]> = (0..20)
        .map(|i| if (i * 7) % 3 == 0 { GREEN } else { BLUE })
        .collect();
    let mut bits = vec![0u8; 4];
    for (i, p) in two.iter().enumerate() {
        if *p == BLUE {
            bits[(i / 10) * 2 + (i % 10) / 8] |= 0x80 >> (i % 10 % 8);
        }
    }
    // Three colours: a byte a pixel (16 bytes, compressed).
    let three_palette = [RED, GREEN, [9, 9, 9]];
    let idx: Vec<u8> = (0..16).map(|i| (i % 3) as u8).collect();
    let three: Vec<[u8; 3]> = idx.iter().map(|&i| three_palette[i as usize]).collect();

    let mut palette2 = vec![1, 1];
    palette2.extend_from_slice(&flat(&[GREEN, BLUE]));
    let mut palette3 = vec![1, 2];
    palette3.extend_from_slice(&flat(&three_palette));
    let rects = vec![
        // Fill.
        (0, 0, 3, 2, ENC_TIGHT, vec![0x80, 1, 2, 3]),
        // Copy, 6 bytes: sent as is.
        (
            3,
            0,
            2,
            1,
            ENC_TIGHT,
            basic(0x00, &[], &flat(&copy_small), &mut streams[0]),
        ),
        // Copy, 24 bytes, stream 1, no filter byte.
        (
            0,
            2,
            4,
            2,
            ENC_TIGHT,
            basic(0x10, &[], &flat(&copy_big), &mut streams[1]),
        ),
        // Two-colour palette, stream 2: 4 bytes, sent as is.
        (
            0,
            4,
            10,
            2,
            ENC_TIGHT,
            basic(0x60, &palette2, &bits, &mut streams[2]),
        ),
        // Three-colour palette, stream 3, compressed.
        (
            5,
            0,
            4,
            4,
            ENC_TIGHT,
            basic(0x70, &palette3, &idx, &mut streams[3]),
        ),
        // Gradient, stream 0, compressed.
        (
            9,
            0,
            4,
            2,
            ENC_TIGHT,
            basic(
                0x40,
                &[2],
                &gradient_residuals(&gradient, 4),
                &mut streams[0],
            ),
        ),
    ];
    let want = vec![
        vec![[1, 2, 3]; 6],
        copy_small.to_vec(),
        copy_big,
        two,
        three,
        gradient,
    ];
    (update(&rects), want)
}

fn assert_paints(c: &Client, want: &[Vec<[u8; 3]>]) {
    let at = [
        (0, 0, 3),
        (3, 0, 2),
        (0, 2, 4),
        (0, 4, 10),
        (5, 0, 4),
        (9, 0, 4),
    ];
    for (k, ((x, y, w), px)) in at.iter().zip(want).enumerate() {
        for (i, p) in px.iter().enumerate() {
            assert_eq!(rgb(c, x + i % w, y + i / w), *p, "rectangle {k}, pixel {i}");
        }
    }
}

#[test]
fn tight_fill_copy_palette_and_gradient_paint_the_framebuffer() {
    let mut streams: [Deflater; 4] = std::array::from_fn(|_| Deflater::new());
    let (bytes, want) = every_kind(&mut streams);
    let mut c = connected(14, 6);
    let ev = c.receive(&bytes).unwrap();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Damage { .. }))
            .count(),
        5
    );
    assert!(ev.contains(&Event::Fill {
        x: 0,
        y: 0,
        width: 3,
        height: 2,
        rgb: [1, 2, 3]
    }));
    assert!(ev.contains(&Event::UpdateDone));
    assert_paints(&c, &want);

    // The streams persist: a second update on the same deflaters decodes too; one byte at a
    // time decodes the same as whole.
    let (again, want) = every_kind(&mut streams);
    let mut bytewise = connected(14, 6);
    bytewise.receive(&bytes).unwrap();
    for b in &again {
        bytewise.receive(std::slice::from_ref(b)).unwrap();
    }
    c.receive(&again).unwrap();
    assert_paints(&c, &want);
    assert_eq!(bytewise.framebuffer(), c.framebuffer());

    // A fresh deflater on a stream in use is corrupt data, unless the control byte resets it.
    let big: Vec<u8> = (0..24).collect();
    let rect = |ctl| {
        update(&[(
            0,
            0,
            4,
            2,
            ENC_TIGHT,
            basic(ctl, &[], &big, &mut Deflater::new()),
        )])
    };
    let mut used = connected(14, 6);
    used.receive(&bytes).unwrap();
    assert!(used.receive(&rect(0x10)).is_err());
    c.receive(&rect(0x12)).unwrap();
    assert_eq!(rgb(&c, 1, 0), [3, 4, 5]);
}

#[test]
fn tight_compact_lengths_of_three_bytes() {
    // Incompressible pixels: over 16383 compressed bytes, so the length takes 3 bytes.
    let mut seed = 7u32;
    let px: Vec<u8> = (0..100 * 70 * 3)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        })
        .collect();
    let body = basic(0x00, &[], &px, &mut Deflater::new());
    assert_eq!(body[3] & 0x80, 0);
    assert!(
        body[1] & 0x80 != 0 && body[2] & 0x80 != 0,
        "a 3-byte length"
    );
    let mut c = connected(100, 70);
    c.receive(&update(&[(0, 0, 100, 70, ENC_TIGHT, body)]))
        .unwrap();
    assert_eq!(
        rgb(&c, 99, 69),
        [px[px.len() - 3], px[px.len() - 2], px[px.len() - 1]]
    );
}

#[test]
fn tight_jpeg_rectangles_decode_and_bad_ones_are_errors() {
    let (w, h) = (32u16, 16u16);
    let px: Vec<u8> = (0..w as usize * h as usize)
        .flat_map(|i| [(i % 32 * 8) as u8, 128, (i / 32 * 16) as u8])
        .collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 95)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let body = |data: &[u8]| {
        let mut b = vec![0x90];
        b.extend_from_slice(&compact(data.len()));
        b.extend_from_slice(data);
        b
    };
    let mut c = connected(40, 20);
    c.receive(&update(&[(4, 2, w, h, ENC_TIGHT, body(&jpeg))]))
        .unwrap();
    // Lossy, but close: every component within a few steps of the original.
    let mut worst = 0;
    for (i, p) in px.chunks_exact(3).enumerate() {
        let got = rgb(&c, 4 + i % 32, 2 + i / 32);
        for k in 0..3 {
            worst = worst.max((got[k] as i16 - p[k] as i16).abs());
        }
    }
    assert!(worst <= 12, "JPEG pixels off by {worst}");
    assert_eq!(rgb(&c, 0, 0), [0, 0, 0], "outside the rectangle untouched");

    // An image of another size than its rectangle, a cut JPEG, and garbage: errors.
    for (rw, data) in [
        (16, jpeg.clone()),
        (32, jpeg[..jpeg.len() / 2].to_vec()),
        (32, vec![0xff; 64]),
    ] {
        let mut c = connected(40, 20);
        let r = c.receive(&update(&[(0, 0, rw, h, ENC_TIGHT, body(&data))]));
        assert!(r.is_err(), "{rw} wide, {} bytes: {r:?}", data.len());
    }
    // PNG (TightPNG only) and unknown kinds or filters are errors.
    for bad in [vec![0xa0, 0], vec![0xf0], vec![0x40, 3]] {
        let mut c = connected(40, 20);
        assert!(c.receive(&update(&[(0, 0, 4, 4, ENC_TIGHT, bad)])).is_err());
    }
    // Palette index past the palette.
    let mut c = connected(40, 20);
    let r = c.receive(&update(&[(
        0,
        0,
        2,
        2,
        ENC_TIGHT,
        vec![0x40, 1, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 1, 2, 7],
    )]));
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn cursor_pseudo_encoding_gives_the_pointer_image_with_its_mask() {
    let mut c = connected(8, 8);
    // 3x2, hotspot (1, 1): pixels R, G, B, X; mask rows of one byte: 101, 011.
    let mut body = Vec::new();
    for i in 0..6u8 {
        body.extend_from_slice(&[i, 10 + i, 20 + i, 0]);
    }
    body.extend_from_slice(&[0b1010_0000, 0b0110_0000]);
    let ev = c
        .receive(&update(&[(1, 1, 3, 2, ENC_CURSOR, body)]))
        .unwrap();
    let Some(Event::Cursor {
        hotspot_x: 1,
        hotspot_y: 1,
        width: 3,
        height: 2,
        rgba,
    }) = ev.first()
    else {
        panic!("{ev:?}")
    };
    let alpha: Vec<u8> = rgba.chunks_exact(4).map(|p| p[3]).collect();
    assert_eq!(alpha, [255, 0, 255, 0, 255, 255]);
    assert_eq!(&rgba[4..7], &[1, 11, 21]);
    // The framebuffer is not drawn on; a hidden pointer is 0x0; a huge one is refused.
    assert_eq!(pixel(&c, 1, 1), [0, 0, 0, 255]);
    let ev = c
        .receive(&update(&[(0, 0, 0, 0, ENC_CURSOR, vec![])]))
        .unwrap();
    assert!(
        matches!(ev.first(), Some(Event::Cursor { width: 0, .. })),
        "{ev:?}"
    );
    assert!(c
        .receive(&update(&[(0, 0, 4000, 4000, ENC_CURSOR, vec![])]))
        .is_err());
}

#[test]
fn the_client_asks_for_tight_with_jpeg_and_the_cursor() {
    let enc = ENCODINGS;
    assert_eq!(enc[0], ENC_TIGHT, "Tight is preferred");
    for want in [ENC_CURSOR, ENC_JPEG_QUALITY_0 + 6, ENC_COMPRESS_LEVEL_0 + 2] {
        assert!(enc.contains(&want), "{want}");
    }
}

#[test]
fn a_handed_off_jpeg_pauses_parsing_until_its_pixels_come_back() {
    let jpeg_rect = |data: &[u8]| {
        let mut b = vec![0x90];
        b.extend_from_slice(&compact(data.len()));
        b.extend_from_slice(data);
        (0, 0, 2, 1, ENC_TIGHT, b)
    };
    let bytes = update(&[
        jpeg_rect(b"not decoded here"),
        (2, 0, 2, 1, ENC_TIGHT, vec![0x80, 9, 9, 9]),
    ]);
    let mut c = connected(4, 1);
    c.hand_off_jpeg();
    let ev = c.receive(&bytes).unwrap();
    assert_eq!(
        ev,
        vec![Event::Jpeg {
            x: 0,
            y: 0,
            width: 2,
            height: 1,
            data: b"not decoded here".to_vec()
        }]
    );
    // The fill after it waits, even when more bytes arrive.
    assert!(c.receive(&update(&[])).unwrap().is_empty());
    assert_eq!(rgb(&c, 2, 0), [0, 0, 0]);
    let ev = c.jpeg_decoded(&[1, 2, 3, 255, 4, 5, 6, 255]).unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Damage {
                x: 0,
                y: 0,
                width: 2,
                height: 1
            },
            Event::Fill {
                x: 2,
                y: 0,
                width: 2,
                height: 1,
                rgb: [9, 9, 9]
            },
            Event::UpdateDone,
            Event::UpdateDone,
        ]
    );
    assert_eq!(
        [rgb(&c, 0, 0), rgb(&c, 1, 0), rgb(&c, 3, 0)],
        [[1, 2, 3], [4, 5, 6], [9, 9, 9]]
    );
    // Nothing awaited, or pixels of the wrong size: errors.
    assert!(c.jpeg_decoded(&[0; 8]).is_err());
    let mut c = connected(4, 1);
    c.hand_off_jpeg();
    c.receive(&bytes).unwrap();
    assert!(c.jpeg_decoded(&[0; 4]).is_err());
}

#[test]
fn dirty_gathers_an_update_into_fills_then_copies() {
    let mut d = Dirty::default();
    assert_eq!(d.take(), vec![]);
    let damage = |x, y, width, height| Event::Damage {
        x,
        y,
        width,
        height,
    };
    d.add(&damage(10, 10, 0, 5));
    assert_eq!(d.take(), vec![], "an empty rectangle is no damage");
    d.add(&damage(10, 20, 5, 5));
    d.add(&Event::Fill {
        x: 0,
        y: 0,
        width: 4,
        height: 4,
        rgb: [1, 2, 3],
    });
    d.add(&Event::Bell);
    assert_eq!(
        d.take(),
        vec![
            Paint::Fill((0, 0, 4, 4), [1, 2, 3]),
            Paint::Copy((10, 20, 5, 5))
        ]
    );
    assert_eq!(d.take(), vec![]);
    // Many rectangles: one copy of their bounding box.
    for i in 0..=Dirty::MAX_RECTS as u16 {
        d.add(&damage(i * 2, 100 - i, 1, 1));
    }
    let n = Dirty::MAX_RECTS as u16;
    assert_eq!(d.take(), vec![Paint::Copy((0, 100 - n, n * 2 + 1, n + 1))]);
}
