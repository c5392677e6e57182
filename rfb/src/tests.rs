// Test streams truncate on purpose: random bytes cut to `u8`, lengths packed into their fields.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
use super::*;

mod tight;

/// Server bytes for a handshake at `version` with security None, then ServerInit.
fn greeting(version: &str, width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut s = format!("RFB {version}\n").into_bytes();
    match version {
        "003.003" => s.extend_from_slice(&1u32.to_be_bytes()),
        "003.007" => s.extend_from_slice(&[1, 1]),
        _ => {
            s.extend_from_slice(&[2, 2, 1]);
            s.extend_from_slice(&0u32.to_be_bytes());
        }
    }
    s.extend_from_slice(&server_init(width, height, name));
    s
}

fn server_init(width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&width.to_be_bytes());
    s.extend_from_slice(&height.to_be_bytes());
    s.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    s.extend_from_slice(&(name.len() as u32).to_be_bytes());
    s.extend_from_slice(name.as_bytes());
    s
}

/// x, y, width, height, encoding, and the encoding's bytes.
type Rect = (u16, u16, u16, u16, i32, Vec<u8>);

fn update(rects: &[Rect]) -> Vec<u8> {
    let mut s = vec![0, 0];
    s.extend_from_slice(&(rects.len() as u16).to_be_bytes());
    for (x, y, w, h, enc, body) in rects {
        for v in [x, y, w, h] {
            s.extend_from_slice(&v.to_be_bytes());
        }
        s.extend_from_slice(&enc.to_be_bytes());
        s.extend_from_slice(body);
    }
    s
}

fn connected(width: u16, height: u16) -> Client {
    let mut c = Client::new();
    let ev = c
        .receive(&greeting("003.008", width, height, "test"))
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::Connected {
            width,
            height,
            name: "test".into()
        }]
    );
    c.take_output();
    c
}

fn pixel(c: &Client, x: usize, y: usize) -> [u8; 4] {
    let i = (y * c.width() as usize + x) * 4;
    c.framebuffer()[i..i + 4].try_into().unwrap()
}

#[test]
fn every_handshake_version_reaches_server_init() {
    for (version, reply) in [
        ("003.008", "RFB 003.008\n"),
        ("003.007", "RFB 003.007\n"),
        ("003.003", "RFB 003.003\n"),
        ("003.889", "RFB 003.008\n"),
    ] {
        let mut c = Client::new();
        let ev = c
            .receive(&greeting(version, 720, 400, "QEMU (guest)"))
            .unwrap();
        assert_eq!(
            ev,
            vec![Event::Connected {
                width: 720,
                height: 400,
                name: "QEMU (guest)".into()
            }],
            "{version}"
        );
        let out = c.take_output();
        assert!(out.starts_with(reply.as_bytes()), "{version}: {out:?}");
        let after = &out[12..];
        // 3.7/3.8 choose type None (1); every version sends ClientInit (shared = 1).
        let (choice, rest) = if version == "003.003" {
            (&after[..0], after)
        } else {
            (&after[..1], &after[1..])
        };
        assert!(choice.is_empty() || choice == [1], "{version}");
        assert_eq!(rest[0], 1, "ClientInit shared");
        // SetPixelFormat (20 bytes), SetEncodings, then a full update request.
        assert_eq!(rest[1], 0);
        assert_eq!(&rest[5..9], &[32, 24, 0, 1]);
        assert_eq!(rest[21], 2);
        let n = u16::from_be_bytes([rest[23], rest[24]]) as usize;
        let request = &rest[25 + 4 * n..];
        assert_eq!(request, &[3, 0, 0, 0, 0, 0, 2, 208, 1, 144], "{version}");
        assert_eq!(c.framebuffer().len(), 720 * 400 * 4);
    }
}

#[test]
fn refusals_and_foreign_servers_are_errors() {
    let mut c = Client::new();
    assert!(matches!(
        c.receive(b"HTTP/1.1 200"),
        Err(Error::Protocol(_))
    ));
    let mut c = Client::new();
    let mut s = b"RFB 003.008\n".to_vec();
    s.push(0);
    s.extend_from_slice(&7u32.to_be_bytes());
    s.extend_from_slice(b"go away");
    assert!(matches!(c.receive(&s), Err(Error::Security(m)) if m.contains("go away")));
    let mut c = Client::new();
    assert!(
        matches!(c.receive(b"RFB 003.008\n\x01\x02"), Err(Error::Security(_))),
        "only VNC auth offered"
    );
    let mut c = Client::new();
    let mut s = b"RFB 003.008\n\x01\x01".to_vec();
    s.extend_from_slice(&1u32.to_be_bytes());
    s.extend_from_slice(&3u32.to_be_bytes());
    s.extend_from_slice(b"bad");
    assert!(matches!(c.receive(&s), Err(Error::Security(m)) if m.contains("bad")));
    assert!(
        c.receive(b"more").is_err(),
        "a failed connection stays failed"
    );
}

#[test]
fn raw_and_copy_rect_paint_the_framebuffer() {
    let mut c = connected(4, 2);
    let red_green = [255, 0, 0, 0, 0, 255, 0, 0].to_vec();
    let ev = c
        .receive(&update(&[(1, 0, 2, 1, ENC_RAW, red_green)]))
        .unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Damage {
                x: 1,
                y: 0,
                width: 2,
                height: 1
            },
            Event::UpdateDone
        ]
    );
    assert_eq!(pixel(&c, 1, 0), [255, 0, 0, 255]);
    assert_eq!(pixel(&c, 2, 0), [0, 255, 0, 255]);
    assert_eq!(pixel(&c, 0, 0), [0, 0, 0, 255]);
    let mut src = Vec::new();
    src.extend_from_slice(&1u16.to_be_bytes());
    src.extend_from_slice(&0u16.to_be_bytes());
    c.receive(&update(&[(2, 1, 2, 1, ENC_COPY_RECT, src)]))
        .unwrap();
    assert_eq!(pixel(&c, 2, 1), [255, 0, 0, 255]);
    assert_eq!(pixel(&c, 3, 1), [0, 255, 0, 255]);
}

#[test]
fn overlapping_copy_rect_moves_like_a_scroll() {
    let mut c = connected(1, 3);
    let column = [1, 1, 1, 0, 2, 2, 2, 0, 3, 3, 3, 0].to_vec();
    c.receive(&update(&[(0, 0, 1, 3, ENC_RAW, column)]))
        .unwrap();
    // Scroll down by one: rows 0..2 to 1..3.
    let mut src = Vec::new();
    src.extend_from_slice(&[0, 0, 0, 0]);
    c.receive(&update(&[(0, 1, 1, 2, ENC_COPY_RECT, src)]))
        .unwrap();
    assert_eq!(
        [pixel(&c, 0, 0)[0], pixel(&c, 0, 1)[0], pixel(&c, 0, 2)[0]],
        [1, 1, 2]
    );
}

#[test]
fn desktop_size_and_last_rect_pseudo_encodings() {
    let mut c = connected(4, 2);
    let ev = c
        // Five rectangles announced; LastRect ends the update after two.
        .receive(&{
            let mut u = update(&[
                (0, 0, 8, 6, ENC_DESKTOP_SIZE, vec![]),
                (0, 0, 0, 0, ENC_LAST_RECT, vec![]),
            ]);
            u[3] = 5;
            u
        })
        .unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Resized {
                width: 8,
                height: 6
            },
            Event::UpdateDone
        ]
    );
    assert_eq!(c.framebuffer().len(), 8 * 6 * 4);
}

#[test]
fn the_next_update_is_requested_as_soon_as_one_begins() {
    let mut c = connected(4, 2);
    // Only the update's header has arrived, not its rectangle.
    let header = [0, 0, 0, 1];
    assert!(c.receive(&header).unwrap().is_empty());
    assert_eq!(
        c.take_output(),
        [3, 1, 0, 0, 0, 0, 0, 4, 0, 2],
        "incremental request already queued"
    );
}

#[test]
fn bytes_may_arrive_one_at_a_time() {
    let mut stream = greeting("003.008", 2, 2, "x");
    stream.extend_from_slice(&update(&[(0, 0, 2, 2, ENC_RAW, vec![9; 16])]));
    stream.extend_from_slice(&[2]);
    let mut whole = Client::new();
    let all = whole.receive(&stream).unwrap();
    let mut split = Client::new();
    let mut events = Vec::new();
    for b in &stream {
        events.extend(split.receive(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(events, all);
    assert_eq!(split.framebuffer(), whole.framebuffer());
    assert_eq!(split.take_output(), whole.take_output());
    assert_eq!(events.last(), Some(&Event::Bell));
}

#[test]
fn hostile_rectangles_are_errors_not_panics() {
    for (x, y, w, h, enc) in [
        (3, 0, 2, 1, ENC_RAW),
        (0, 0, 5, 1, ENC_COPY_RECT),
        (u16::MAX, u16::MAX, u16::MAX, u16::MAX, ENC_RAW),
        (0, 0, 1, 1, 9999),
    ] {
        let mut c = connected(4, 2);
        assert!(
            c.receive(&update(&[(x, y, w, h, enc, vec![0; 8])]))
                .is_err(),
            "{x} {y} {w} {h} {enc}"
        );
    }
    let mut c = connected(4, 2);
    assert!(c
        .receive(&update(&[(0, 0, 9000, 9000, ENC_DESKTOP_SIZE, vec![])]))
        .is_err());
    let mut c = Client::new();
    assert!(c.receive(&greeting("003.008", 9000, 10, "big")).is_err());
}

#[test]
fn random_and_mutated_streams_never_panic() {
    // A small deterministic xorshift generator: the same streams on every run.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut valid = greeting("003.008", 16, 8, "fuzz");
    let mut zrle = vec![130, 1, 2, 3, 4, 5, 6, 0x80, 9, 1, 0, 0x81, 3];
    zrle.extend_from_slice(&[0, 1]);
    valid.extend_from_slice(&update(&[
        (0, 0, 4, 4, ENC_RAW, vec![7; 64]),
        (4, 4, 4, 4, ENC_COPY_RECT, vec![0, 0, 0, 0]),
        (0, 0, 4, 4, ENC_ZRLE, Deflater::new().body(&zrle)),
        (
            8,
            0,
            4,
            4,
            ENC_HEXTILE,
            vec![2 | 8 | 16, 9, 9, 9, 0, 1, 1, 2, 3, 0, 0x00, 0x11],
        ),
        (12, 0, 4, 4, ENC_ZLIB, Deflater::new().body(&[5; 64])),
    ]));
    for round in 0..3000 {
        let mut stream = if round % 2 == 0 {
            let mut s = valid.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % s.len();
                s[i] = next() as u8;
            }
            s
        } else {
            let mut s = greeting("003.008", (next() % 64) as u16, (next() % 64) as u16, "r");
            s.extend((0..next() % 512).map(|_| next() as u8));
            s
        };
        let cut = (next() as usize) % (stream.len() + 1);
        let tail = stream.split_off(cut);
        let mut c = Client::new();
        let _ = c.receive(&stream);
        let _ = c.receive(&tail);
        let _ = c.take_output();
    }
}

#[test]
fn keys_go_as_scancodes_once_qemu_acknowledges_extended_key_events() {
    let mut c = connected(4, 4);
    // Before the acknowledgement: the keysym, as a plain KeyEvent.
    c.key_event(Some(0x61), Some(0x1e), true);
    assert_eq!(c.take_output(), [4, 1, 0, 0, 0, 0, 0, 0x61]);
    // The server acknowledges with the pseudo-encoding (no payload) and reports its LEDs.
    let ev = c
        .receive(&update(&[
            (0, 0, 4, 4, ENC_QEMU_EXTENDED_KEY, vec![]),
            (0, 0, 4, 4, ENC_QEMU_LED_STATE, vec![0b101]),
        ]))
        .unwrap();
    assert_eq!(
        ev,
        vec![
            Event::ExtendedKeys,
            Event::Leds {
                scroll_lock: true,
                num_lock: false,
                caps_lock: true
            },
            Event::UpdateDone
        ]
    );
    assert!(c.extended_keys());
    c.take_output();
    // QEMU extended key event: 255, 0, down-flag u16, keysym u32, key number u32.
    c.key_event(Some(0x61), Some(0x1e), true);
    assert_eq!(
        c.take_output(),
        [255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]
    );
    // A key with no keysym (a dead key, say) still travels by its scancode.
    c.key_event(None, Some(0xc8), false);
    assert_eq!(c.take_output(), [255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc8]);
    // A key with no scancode falls back to its keysym; one with neither sends nothing.
    c.key_event(Some(0x20ac), None, true);
    assert_eq!(c.take_output(), [4, 1, 0, 0, 0, 0, 0x20, 0xac]);
    c.key_event(None, None, true);
    assert!(c.take_output().is_empty());
}

#[test]
fn the_client_asks_for_extended_keys_and_leds() {
    let mut c = Client::new();
    c.receive(&greeting("003.008", 4, 4, "q")).unwrap();
    let out = c.take_output();
    for enc in [ENC_QEMU_EXTENDED_KEY, ENC_QEMU_LED_STATE] {
        assert!(
            out.windows(4).any(|w| w == enc.to_be_bytes()),
            "SetEncodings lacks {enc}"
        );
    }
}

/// A server-side zlib stream: each call compresses `data` and sync-flushes, as a VNC server does
/// per rectangle; returns the rectangle body (u32 length + bytes).
struct Deflater(Box<miniz_oxide::deflate::core::CompressorOxide>);

impl Deflater {
    fn new() -> Deflater {
        Deflater(Box::new(miniz_oxide::deflate::core::CompressorOxide::new(
            miniz_oxide::deflate::core::create_comp_flags_from_zip_params(6, 15, 0),
        )))
    }

    fn body(&mut self, data: &[u8]) -> Vec<u8> {
        let out = self.compress(data);
        let mut body = (out.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(&out);
        body
    }

    /// The compressed bytes alone, sync-flushed.
    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() * 2 + 1024];
        let r = miniz_oxide::deflate::stream::deflate(
            &mut self.0,
            data,
            &mut out,
            miniz_oxide::MZFlush::Sync,
        );
        assert_eq!(r.bytes_consumed, data.len());
        out.truncate(r.bytes_written);
        out
    }
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

fn rgb(c: &Client, x: usize, y: usize) -> [u8; 3] {
    let p = pixel(c, x, y);
    [p[0], p[1], p[2]]
}

#[test]
fn inflater_round_trips() {
    let mut z = Deflater::new();
    let data: Vec<u8> = (0..100u8).collect();
    let body = z.body(&data);
    let mut i = decode::Inflater::default();
    let out = i.inflate(&body[4..], 1000).unwrap();
    assert_eq!(out, data);
}

#[test]
fn zrle_tiles_of_every_kind_paint_the_framebuffer() {
    let mut c = connected(80, 4);
    let mut z = Deflater::new();
    // 70x2 at (0,0): two tiles across (64 and 6 wide). The first solid red, the second raw.
    let mut data = vec![1];
    data.extend_from_slice(&RED);
    data.push(0);
    for i in 0..12u8 {
        data.extend_from_slice(&[i, 2 * i, 3 * i]);
    }
    let ev = c
        .receive(&update(&[(0, 0, 70, 2, ENC_ZRLE, z.body(&data))]))
        .unwrap();
    assert!(
        ev.contains(&Event::Damage {
            x: 0,
            y: 0,
            width: 70,
            height: 2
        }),
        "{ev:?}"
    );
    assert_eq!(rgb(&c, 0, 0), RED);
    assert_eq!(rgb(&c, 63, 1), RED);
    assert_eq!(rgb(&c, 64, 0), [0, 0, 0]);
    assert_eq!(rgb(&c, 69, 1), [11, 22, 33]);

    // The same stream goes on: a packed palette (2 colours, 1 bit a pixel, rows padded to bytes),
    // then plain RLE, then palette RLE.
    let mut packed = vec![2];
    packed.extend_from_slice(&GREEN);
    packed.extend_from_slice(&BLUE);
    packed.extend_from_slice(&[0b1010_0000, 0b0101_0000]); // 4x2: B G B G / G B G B
    let mut rle = vec![128];
    rle.extend_from_slice(&RED);
    rle.push(2); // a run of 3
    rle.extend_from_slice(&GREEN);
    rle.push(4); // a run of 5
    let mut prle = vec![130];
    prle.extend_from_slice(&BLUE);
    prle.extend_from_slice(&RED);
    prle.extend_from_slice(&[0x80, 6, 1]); // index 0 (blue) for 7, then one red
    c.receive(&update(&[
        (0, 2, 4, 2, ENC_ZRLE, z.body(&packed)),
        (4, 2, 4, 2, ENC_ZRLE, z.body(&rle)),
        (8, 2, 4, 2, ENC_ZRLE, z.body(&prle)),
    ]))
    .unwrap();
    assert_eq!(
        [rgb(&c, 0, 2), rgb(&c, 1, 2), rgb(&c, 0, 3), rgb(&c, 1, 3)],
        [BLUE, GREEN, GREEN, BLUE]
    );
    assert_eq!(
        [rgb(&c, 6, 2), rgb(&c, 7, 2), rgb(&c, 7, 3)],
        [RED, GREEN, GREEN]
    );
    assert_eq!(
        [rgb(&c, 8, 2), rgb(&c, 10, 3), rgb(&c, 11, 3)],
        [BLUE, BLUE, RED]
    );
}

#[test]
fn zlib_and_hextile_paint_the_framebuffer() {
    let mut c = connected(20, 20);
    let mut z = Deflater::new();
    let raw: Vec<u8> = (0..4 * 2).flat_map(|i: u8| [i, i, i, 0]).collect();
    c.receive(&update(&[(1, 1, 4, 2, ENC_ZLIB, z.body(&raw))]))
        .unwrap();
    assert_eq!(rgb(&c, 1, 1), [0, 0, 0]);
    assert_eq!(rgb(&c, 4, 2), [7, 7, 7]);

    // Hextile 20x18: four tiles (16+4 wide, 16+2 high).
    let mut h = Vec::new();
    // Tile 1: background green, foreground red, two subrectangles in the foreground colour.
    h.push(2 | 4 | 8);
    h.extend_from_slice(&[0, 255, 0, 0, 255, 0, 0, 0, 2]);
    h.extend_from_slice(&[0x00, 0x11]); // (0,0) 2x2
    h.extend_from_slice(&[0xFF, 0x00]); // (15,15) 1x1
                                        // Tile 2: raw 4x16.
    h.push(1);
    h.extend((0..64).flat_map(|_| [0u8, 0, 255, 0]));
    // Tile 3: keeps the background (green), one coloured subrectangle.
    h.push(8 | 16);
    h.extend_from_slice(&[1, 255, 255, 255, 0, 0x21, 0x10]); // white at (2,1) 2x1
                                                             // Tile 4: nothing new: the background again.
    h.push(0);
    let whole = update(&[(0, 0, 20, 18, ENC_HEXTILE, h.clone())]);
    c.receive(&whole).unwrap();
    assert_eq!(
        [rgb(&c, 0, 0), rgb(&c, 1, 1), rgb(&c, 2, 2)],
        [RED, RED, GREEN]
    );
    assert_eq!([rgb(&c, 15, 15), rgb(&c, 14, 15)], [RED, GREEN]);
    assert_eq!([rgb(&c, 16, 0), rgb(&c, 19, 15)], [BLUE, BLUE]);
    assert_eq!(
        [
            rgb(&c, 2, 17),
            rgb(&c, 3, 17),
            rgb(&c, 4, 17),
            rgb(&c, 0, 16)
        ],
        [[255, 255, 255], [255, 255, 255], GREEN, GREEN]
    );
    assert_eq!(rgb(&c, 18, 17), GREEN);

    // The same Hextile rectangle arriving a byte at a time paints the same.
    let mut split = connected(20, 20);
    split
        .receive(&update(&[(
            1,
            1,
            4,
            2,
            ENC_ZLIB,
            Deflater::new().body(&raw),
        )]))
        .unwrap();
    for b in &whole {
        split.receive(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(split.framebuffer(), c.framebuffer());
}

#[test]
fn hostile_compressed_rectangles_are_errors_not_panics() {
    let mut z = Deflater::new();
    let cases: Vec<(i32, Vec<u8>)> = vec![
        // A palette index past the palette.
        (
            ENC_ZRLE,
            z.body(&[3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0xFF, 0xFF]),
        ),
        // A run past the tile.
        (ENC_ZRLE, Deflater::new().body(&[128, 1, 2, 3, 255, 255])),
        // An unknown subencoding.
        (ENC_ZRLE, Deflater::new().body(&[17])),
        // Truncated tile data.
        (ENC_ZRLE, Deflater::new().body(&[0, 1, 2])),
        // Not zlib at all.
        (ENC_ZRLE, vec![0, 0, 0, 4, 1, 2, 3, 4]),
        // Zlib data too short for the rectangle.
        (ENC_ZLIB, Deflater::new().body(&[1, 2, 3])),
        // A Hextile subrectangle outside its tile.
        (ENC_HEXTILE, vec![8, 1, 0xF0, 0x10]),
    ];
    for (i, (enc, body)) in cases.into_iter().enumerate() {
        let mut c = connected(4, 2);
        assert!(
            c.receive(&update(&[(0, 0, 4, 2, enc, body)])).is_err(),
            "case {i}"
        );
    }
    // A zlib bomb: 64 MiB of zeros for a 4x2 rectangle stops at the bound.
    let bomb = Deflater::new().body(&vec![0u8; 1 << 20]);
    let mut c = connected(4, 2);
    assert!(c.receive(&update(&[(0, 0, 4, 2, ENC_ZLIB, bomb)])).is_err());
}

#[test]
fn text_is_typed_as_keysym_presses() {
    let mut c = connected(4, 2);
    assert_eq!(c.type_text("Aé\r\n\u{7}€"), 4);
    let out = c.take_output();
    let keys: Vec<(u8, u32)> = out
        .chunks_exact(8)
        .map(|m| {
            assert_eq!(m[0], 4, "a KeyEvent");
            (m[1], u32::from_be_bytes([m[4], m[5], m[6], m[7]]))
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            (1, 0xffe1),
            (1, 0x41),
            (0, 0x41),
            (0, 0xffe1),
            (1, 0xe9),
            (0, 0xe9),
            (1, 0xff0d),
            (0, 0xff0d),
            (1, 0x0100_20ac),
            (0, 0x0100_20ac)
        ]
    );
    // Nothing before the connection is up.
    assert_eq!(Client::new().type_text("x"), 0);
}

/// The server's side of real sessions with QEMU 7.2 (the test guest's text console, 720x400),
/// recorded by the relay end-to-end test, one per encoding.
fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("qemu-{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn recorded_qemu_sessions_decode_to_the_same_screen() {
    let mut frames = Vec::new();
    for name in ["zrle", "hextile", "zlib", "tight"] {
        let bytes = fixture(name);
        let mut c = Client::new();
        let events = c.receive(&bytes).unwrap();
        assert!(
            matches!(events.first(), Some(Event::Connected { width: 720, .. })),
            "{name}: {:?}",
            events.first()
        );
        assert!(events.contains(&Event::UpdateDone), "{name}");
        let lit = c
            .framebuffer()
            .chunks_exact(4)
            .filter(|p| p[0] > 64 || p[1] > 64 || p[2] > 64)
            .count();
        assert!(
            lit > 500,
            "{name}: the guest's text shows ({lit} lit pixels)"
        );
        // Cut anywhere, the stream decodes the same.
        let mut split = Client::new();
        for chunk in bytes.chunks(997) {
            split.receive(chunk).unwrap();
        }
        assert_eq!(split.framebuffer(), c.framebuffer(), "{name} in pieces");
        frames.push((name, c.framebuffer().to_vec()));
    }
    for (name, fb) in &frames[1..] {
        let differ = fb
            .chunks_exact(4)
            .zip(frames[0].1.chunks_exact(4))
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ < 200, "{name} and zrle differ in {differ} pixels");
    }
}

#[test]
fn recorded_sessions_mutated_never_panic() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in ["zrle", "hextile", "zlib", "tight"] {
        let good = fixture(name);
        for _ in 0..100 {
            let mut s = good.clone();
            for _ in 0..(next() % 6 + 1) {
                let i = (next() as usize) % s.len();
                s[i] = next() as u8;
            }
            let mut c = Client::new();
            let _ = c.receive(&s);
        }
    }
}

#[test]
fn vnc_authentication_answers_the_challenge_with_des() {
    // The expected answer from OpenSSL: `openssl enc -des-ecb -nopad -K cea6c64ea62e0000` (the
    // password "secret", zero-padded, each byte's bits reversed) of the bytes 0..16.
    let challenge: Vec<u8> = (0..16).collect();
    let want = [
        0xee, 0x22, 0x53, 0x9f, 0x33, 0xa5, 0x98, 0x3e, 0xc1, 0x2f, 0x9c, 0x2e, 0xdb, 0xc9, 0x95,
        0xdd,
    ];
    assert_eq!(vnc_auth_response(b"secret", &challenge), want);

    for version in ["003.003", "003.008"] {
        // A server that offers only VNC authentication.
        let mut hello = format!("RFB {version}\n").into_bytes();
        if version == "003.003" {
            hello.extend_from_slice(&2u32.to_be_bytes());
        } else {
            hello.extend_from_slice(&[1, 2]);
        }
        hello.extend_from_slice(&challenge);
        // Without a password: a clear error.
        let err = Client::new().receive(&hello).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        // With one: the answer, then on success ServerInit.
        let mut c = Client::new();
        c.set_password("secret");
        c.receive(&hello).unwrap();
        let out = c.take_output();
        assert!(out.ends_with(&want), "{version}: {out:?}");
        let mut ok = 0u32.to_be_bytes().to_vec();
        ok.extend_from_slice(&server_init(4, 2, "vm"));
        let ev = c.receive(&ok).unwrap();
        assert!(
            matches!(ev[0], Event::Connected { width: 4, .. }),
            "{version}"
        );
        // A refused password is an error that says so.
        let mut c = Client::new();
        c.set_password("wrong");
        c.receive(&hello).unwrap();
        let mut no = 1u32.to_be_bytes().to_vec();
        if version == "003.008" {
            no.extend_from_slice(&14u32.to_be_bytes());
            no.extend_from_slice(b"Authentication");
        }
        let err = c.receive(&no).unwrap_err();
        assert!(matches!(err, Error::Security(_)), "{version}: {err}");
    }
}

#[test]
fn extended_desktop_size_resizes_with_its_screens() {
    let mut c = connected(4, 2);
    // One screen: id, x, y, width, height, flags.
    let mut body = vec![1, 0, 0, 0];
    body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 6, 0, 0, 0, 0]);
    let ev = c
        .receive(&update(&[(
            0,
            0,
            8,
            6,
            ENC_EXTENDED_DESKTOP_SIZE,
            body.clone(),
        )]))
        .unwrap();
    assert!(
        ev.contains(&Event::Resized {
            width: 8,
            height: 6
        }),
        "{ev:?}"
    );
    assert_eq!((c.width(), c.height()), (8, 6));
    // An error status (y != 0) to a request changes nothing.
    c.receive(&update(&[(1, 3, 16, 16, ENC_EXTENDED_DESKTOP_SIZE, body)]))
        .unwrap();
    assert_eq!((c.width(), c.height()), (8, 6));
    // Too large, or cut, is an error or a wait, never a panic.
    let huge = vec![0, 0, 0, 0];
    assert!(c
        .receive(&update(&[(
            0,
            0,
            9000,
            9000,
            ENC_EXTENDED_DESKTOP_SIZE,
            huge
        )]))
        .is_err());
}
