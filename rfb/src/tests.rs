use super::*;

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
        (0, 0, 1, 1, 7),
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
    valid.extend_from_slice(&update(&[
        (0, 0, 4, 4, ENC_RAW, vec![7; 64]),
        (4, 4, 4, 4, ENC_COPY_RECT, vec![0, 0, 0, 0]),
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
