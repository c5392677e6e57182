//! Any bytes after a valid handshake, cut into pieces of any size: the client returns events or
//! an error, never panics, never allocates without bound. Handed-off JPEG rectangles get pixels
//! back, so parsing goes on past them.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// RFB 3.8, security None, then ServerInit for a 64x48 desktop in the client's pixel format.
fn greeting() -> Vec<u8> {
    let mut s = b"RFB 003.008\n".to_vec();
    s.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
    s.extend_from_slice(&[0, 64, 0, 48]);
    s.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
    s.extend_from_slice(&[0, 0, 0, 4]);
    s.extend_from_slice(b"fuzz");
    s
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let mut c = rfb::Client::new();
    if control & 0x80 != 0 {
        c.hand_off_jpeg();
    }
    if c.receive(&greeting()).is_err() {
        return;
    }
    let piece = (control & 0x7f) as usize + 1;
    for chunk in stream.chunks(piece) {
        let mut events = match c.receive(chunk) {
            Ok(ev) => ev,
            Err(_) => return,
        };
        while let Some(rfb::Event::Jpeg { width, height, .. }) =
            events.iter().find(|e| matches!(e, rfb::Event::Jpeg { .. })).cloned()
        {
            let pixels = vec![0u8; width as usize * height as usize * 4];
            events = match c.jpeg_decoded(&pixels) {
                Ok(ev) => ev,
                Err(_) => return,
            };
        }
        let _ = c.take_output();
        assert_eq!(c.framebuffer().len(), c.width() as usize * c.height() as usize * 4);
    }
});
