//! A sans-I/O RFB (VNC) client, after RFC 6143: feed it the bytes the server sent
//! ([`Client::receive`]), send what it queued ([`Client::take_output`]), and read the framebuffer
//! it keeps as RGBA ([`Client::framebuffer`]). It never reads or writes a socket, so the same code
//! runs natively (tests, benchmarks) and in the browser (behind a WebSocket).
//!
//! Like mini-redis's `parse_frame`, every parser returns `Ok(None)` until a whole message has
//! arrived; nothing is consumed until then. Hostile input gives an [`Error`], never a panic.
//!
//! Update requests are pipelined: as soon as a FramebufferUpdate *begins* to arrive, the next
//! incremental request is queued, before the rectangles are decoded, so the screen's latency is
//! one network round trip rather than two.
//!
//! Supported now: RFB 3.3, 3.7 and 3.8 handshakes with security None or VNC authentication;
//! encodings Tight (with JPEG), ZRLE, Hextile, Zlib, CopyRect and Raw (preferred in that
//! order); pseudo-encodings Cursor, ExtendedDesktopSize, DesktopSize, LastRect, QEMU extended
//! key events and LED state, Tight's JPEG quality and compression level; Bell and
//! ServerCutText.
#![forbid(unsafe_code)]

use std::fmt;

pub(crate) mod decode;
pub mod keys;
mod tight;

/// Encodings and pseudo-encodings this client asks for, most preferred first.
pub const ENCODINGS: [i32; 14] = [
    ENC_TIGHT,
    ENC_ZRLE,
    ENC_HEXTILE,
    ENC_ZLIB,
    ENC_COPY_RECT,
    ENC_RAW,
    ENC_EXTENDED_DESKTOP_SIZE,
    ENC_DESKTOP_SIZE,
    ENC_LAST_RECT,
    ENC_QEMU_EXTENDED_KEY,
    ENC_QEMU_LED_STATE,
    ENC_CURSOR,
    ENC_JPEG_QUALITY_0 + 6,
    ENC_COMPRESS_LEVEL_0 + 2,
];
pub const ENC_RAW: i32 = 0;
pub const ENC_COPY_RECT: i32 = 1;
pub const ENC_HEXTILE: i32 = 5;
pub const ENC_ZLIB: i32 = 6;
pub const ENC_TIGHT: i32 = 7;
pub const ENC_ZRLE: i32 = 16;
/// The server draws no pointer into the framebuffer and sends its image (RGB + mask) instead.
pub const ENC_CURSOR: i32 = -239;
/// Tight's JPEG quality, levels 0-9 from this value up (without one, Tight sends no JPEG).
pub const ENC_JPEG_QUALITY_0: i32 = -32;
/// Tight's zlib level, levels 0-9 from this value up.
pub const ENC_COMPRESS_LEVEL_0: i32 = -256;
pub const ENC_LAST_RECT: i32 = -224;
pub const ENC_DESKTOP_SIZE: i32 = -223;
/// The desktop's size with its screens (a u8 count, 3 bytes of padding, 16 bytes a screen).
pub const ENC_EXTENDED_DESKTOP_SIZE: i32 = -308;
/// QEMU's extended key events: keys travel as scancodes, so the guest's own keymap decides what
/// they mean and every keyboard layout works.
pub const ENC_QEMU_EXTENDED_KEY: i32 = -258;
/// QEMU tells the client the guest's keyboard LEDs (Caps, Num, Scroll Lock).
pub const ENC_QEMU_LED_STATE: i32 = -261;

/// VNC authentication's answer to `challenge`: DES (ECB) of it under the password's first 8
/// bytes, zero-padded, each byte's bits reversed (RFC 6143 §7.2.2 and its errata).
pub fn vnc_auth_response(password: &[u8], challenge: &[u8]) -> [u8; 16] {
    use des::cipher::{BlockEncrypt, KeyInit};
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let cipher = des::Des::new(&key.into());
    let mut out = [0u8; 16];
    out.copy_from_slice(&challenge[..16]);
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}

/// The largest framebuffer accepted (a guard against absurd sizes in hostile input).
pub const MAX_DIMENSION: u16 = 8192;
/// The largest pointer image accepted (real ones are 16-64 pixels).
pub const MAX_CURSOR: u16 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server speaks something that is not RFB 3.x.
    Protocol(String),
    /// The server offers no security type this client supports, or refused it.
    Security(String),
    /// A message this client cannot handle (an encoding it did not ask for, a bad size).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(m) => write!(f, "RFB protocol error: {m}"),
            Error::Security(m) => write!(f, "RFB security: {m}"),
            Error::Unsupported(m) => write!(f, "RFB: unsupported {m}"),
        }
    }
}

impl std::error::Error for Error {}

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

/// What happened, for the view to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake is done: the desktop's size and name.
    Connected {
        width: u16,
        height: u16,
        name: String,
    },
    /// This rectangle of the framebuffer changed (draw only it).
    Damage {
        x: u16,
        y: u16,
        width: u16,
        height: u16,
    },
    /// This rectangle of the framebuffer was filled with one colour (already applied; a view
    /// may draw it as a fill rather than copy its pixels).
    Fill {
        x: u16,
        y: u16,
        width: u16,
        height: u16,
        rgb: [u8; 3],
    },
    /// A whole FramebufferUpdate has been applied.
    UpdateDone,
    /// The desktop changed size; the framebuffer was cleared to the new size.
    Resized {
        width: u16,
        height: u16,
    },
    Bell,
    ClipboardText(String),
    /// The server takes scancodes ([`Client::key_event`] sends them from now on).
    ExtendedKeys,
    /// The pointer's new image, RGBA (transparent outside its mask), and its hotspot; drawn by
    /// the view as the mouse cursor. A 0x0 image hides the pointer.
    Cursor {
        hotspot_x: u16,
        hotspot_y: u16,
        width: u16,
        height: u16,
        rgba: Vec<u8>,
    },
    /// A Tight JPEG rectangle for the caller to decode (after [`Client::hand_off_jpeg`]): hand
    /// its pixels to [`Client::jpeg_decoded`]; until then the client parses nothing further.
    Jpeg {
        x: u16,
        y: u16,
        width: u16,
        height: u16,
        data: Vec<u8>,
    },
    /// The guest's keyboard LEDs.
    Leds {
        scroll_lock: bool,
        num_lock: bool,
        caps_lock: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version,
    /// 3.3: the server picks a u32 security type.
    SecurityType33,
    /// 3.7/3.8: a count and a list of types.
    SecurityTypes,
    /// VNC authentication: the server's 16-byte challenge.
    VncChallenge,
    /// 3.8 (and 3.3/3.7 after VNC authentication): a u32 result, then (3.8) a reason on failure.
    SecurityResult,
    ServerInit,
    /// Normal operation; `rects_left` while inside a FramebufferUpdate.
    Running {
        rects_left: u16,
    },
    Failed,
}

/// The client's side of one RFB connection.
pub struct Client {
    state: State,
    minor: u8,
    input: Vec<u8>,
    output: Vec<u8>,
    width: u16,
    height: u16,
    /// RGBA, row-major, `width * height * 4` bytes.
    pixels: Vec<u8>,
    /// The server acknowledged QEMU extended key events.
    extended_keys: bool,
    /// The encodings asked for, most preferred first.
    encodings: Vec<i32>,
    /// For VNC authentication (security type 2), when the server asks for it.
    password: Option<Vec<u8>>,
    /// The connection's zlib streams, one per encoding (they persist across rectangles).
    zlib: decode::Inflater,
    zrle: decode::Inflater,
    tight: tight::Tight,
    /// Decode Tight's JPEG here (else hand it to the caller).
    decode_jpeg: bool,
    /// A handed-off JPEG rectangle not yet decoded: parsing waits for it.
    awaiting_jpeg: Option<(u16, u16, u16, u16)>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads big-endian integers from the front of a slice, or says "not yet".
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
}

/// The outcome of trying to parse one message: not enough bytes yet, or consumed `n` bytes.
type Step = Result<Option<usize>, Error>;

impl Client {
    /// Sets the password for VNC authentication (security type 2), used only when the server
    /// offers nothing weaker to agree on. Only its first 8 bytes count (the protocol's limit).
    pub fn set_password(&mut self, password: &str) {
        self.password = Some(password.as_bytes().to_vec());
    }

    /// A client asking for these encodings (most preferred first; include the pseudo-encodings
    /// wanted), e.g. to compare decoders on the same screen.
    pub fn with_encodings(encodings: &[i32]) -> Client {
        Client {
            encodings: encodings.to_vec(),
            ..Client::new()
        }
    }

    pub fn new() -> Client {
        Client {
            state: State::Version,
            minor: 8,
            input: Vec::new(),
            output: Vec::new(),
            width: 0,
            height: 0,
            pixels: Vec::new(),
            extended_keys: false,
            encodings: ENCODINGS.to_vec(),
            password: None,
            zlib: Default::default(),
            zrle: Default::default(),
            tight: Default::default(),
            decode_jpeg: cfg!(feature = "jpeg"),
            awaiting_jpeg: None,
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The framebuffer as RGBA bytes, row-major.
    pub fn framebuffer(&self) -> &[u8] {
        &self.pixels
    }

    /// Bytes to send to the server, taken (the queue is emptied).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Feeds bytes from the server; returns what happened. After an error, the connection is
    /// dead: every later call returns the same kind of error.
    pub fn receive(&mut self, data: &[u8]) -> Result<Vec<Event>, Error> {
        if self.state == State::Failed {
            return Err(Error::Protocol("the connection already failed".into()));
        }
        self.input.extend_from_slice(data);
        let mut events = Vec::new();
        loop {
            if self.awaiting_jpeg.is_some() {
                return Ok(events);
            }
            let step = self.step(&mut events);
            match step {
                Ok(Some(n)) => {
                    self.input.drain(..n);
                }
                Ok(None) => return Ok(events),
                Err(e) => {
                    self.state = State::Failed;
                    return Err(e);
                }
            }
        }
    }

    /// Tight's JPEG rectangles come out as [`Event::Jpeg`] for the caller to decode (the
    /// browser's decoder is native code, and leaving ours out makes the wasm smaller). Always so
    /// without the `jpeg` feature.
    pub fn hand_off_jpeg(&mut self) {
        self.decode_jpeg = false;
    }

    /// The RGBA pixels of the [`Event::Jpeg`] handed off; paints them and goes on parsing what
    /// arrived meanwhile. Pixels of the wrong size, or none awaited, are an error.
    pub fn jpeg_decoded(&mut self, rgba: &[u8]) -> Result<Vec<Event>, Error> {
        let Some((x, y, w, h)) = self.awaiting_jpeg.take() else {
            return Err(Error::Protocol("no JPEG rectangle is awaited".into()));
        };
        if rgba.len() != w as usize * h as usize * 4 {
            self.state = State::Failed;
            return Err(Error::Protocol(format!(
                "a decoded JPEG of {} bytes for a {w}x{h} rectangle",
                rgba.len()
            )));
        }
        decode::Canvas {
            pixels: &mut self.pixels,
            width: self.width as usize,
        }
        .rgbx_rows(x as usize, y as usize, w as usize, rgba);
        let mut events = vec![Event::Damage {
            x,
            y,
            width: w,
            height: h,
        }];
        if self.state == (State::Running { rects_left: 0 }) {
            events.push(Event::UpdateDone);
        }
        events.extend(self.receive(&[])?);
        Ok(events)
    }

    /// Whether keys go as scancodes (the server acknowledged QEMU extended key events).
    pub fn extended_keys(&self) -> bool {
        self.extended_keys
    }

    /// Sends a key down or up: as its scancode (QEMU's key number: XT set 1, `0x80 | code` for
    /// E0-prefixed keys) when the server takes scancodes, else as its keysym. Nothing is sent
    /// when neither applies.
    pub fn key_event(&mut self, keysym: Option<u32>, scancode: Option<u32>, down: bool) {
        if !matches!(self.state, State::Running { .. }) {
            return;
        }
        match (self.extended_keys, scancode, keysym) {
            (true, Some(code), ks) => {
                self.output.extend_from_slice(&[255, 0]);
                self.output.extend_from_slice(&(down as u16).to_be_bytes());
                self.output
                    .extend_from_slice(&ks.unwrap_or(0).to_be_bytes());
                self.output.extend_from_slice(&code.to_be_bytes());
            }
            (_, _, Some(ks)) => self.key(ks, down),
            _ => {}
        }
    }

    /// Sends a key (an X11 keysym) down or up.
    pub fn key(&mut self, keysym: u32, down: bool) {
        if matches!(self.state, State::Running { .. }) {
            self.output.extend_from_slice(&[4, down as u8, 0, 0]);
            self.output.extend_from_slice(&keysym.to_be_bytes());
        }
    }

    /// Types `text` as key presses (keysyms, with Shift around the characters that take it on
    /// a US keyboard), for pasting into guests without a clipboard agent. Newlines become Return,
    /// tabs Tab; other control characters are skipped. Returns how many characters were typed.
    pub fn type_text(&mut self, text: &str) -> usize {
        if !matches!(self.state, State::Running { .. }) {
            return 0;
        }
        let mut typed = 0;
        for ch in text.chars() {
            let keysym = match ch {
                '\n' => 0xff0d,
                '\r' => continue,
                '\t' => 0xff09,
                c if c.is_control() => continue,
                // Latin-1 keysyms are the code points; the rest of Unicode is 0x0100_0000 + it.
                c if (c as u32) < 0x100 => c as u32,
                c => 0x0100_0000 + c as u32,
            };
            // Servers that map keysyms to scancodes through a keymap (QEMU) press no Shift of
            // their own: a character that takes Shift on a US keyboard gets one around it.
            let shift = ch.is_ascii_uppercase() || "~!@#$%^&*()_+{}|:\"<>?".contains(ch);
            if shift {
                self.key(keys::SHIFT_L, true);
            }
            self.key(keysym, true);
            self.key(keysym, false);
            if shift {
                self.key(keys::SHIFT_L, false);
            }
            typed += 1;
        }
        typed
    }

    /// Moves the pointer to (x, y) with `buttons` (bit 0 left, 1 middle, 2 right, 3/4 wheel).
    pub fn pointer(&mut self, x: u16, y: u16, buttons: u8) {
        if matches!(self.state, State::Running { .. }) {
            self.output.push(5);
            self.output.push(buttons);
            self.output.extend_from_slice(&x.to_be_bytes());
            self.output.extend_from_slice(&y.to_be_bytes());
        }
    }

    fn request_update(&mut self, incremental: bool) {
        self.output.push(3);
        self.output.push(incremental as u8);
        self.output.extend_from_slice(&[0, 0, 0, 0]);
        self.output.extend_from_slice(&self.width.to_be_bytes());
        self.output.extend_from_slice(&self.height.to_be_bytes());
    }

    fn step(&mut self, events: &mut Vec<Event>) -> Step {
        let input = std::mem::take(&mut self.input);
        let result = self.parse(&input, events);
        self.input = input;
        result
    }

    fn parse(&mut self, input: &[u8], events: &mut Vec<Event>) -> Step {
        let mut r = Reader::new(input);
        match self.state {
            State::Version => {
                let Some(v) = r.take(12) else { return Ok(None) };
                if &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' || &v[4..7] != b"003" {
                    return Err(Error::Protocol(format!(
                        "not an RFB 3.x greeting: {:?}",
                        String::from_utf8_lossy(v)
                    )));
                }
                let minor = std::str::from_utf8(&v[8..11])
                    .ok()
                    .and_then(|m| m.parse::<u16>().ok())
                    .ok_or_else(|| Error::Protocol("bad version number".into()))?;
                // Servers may announce 3.4/3.6 (Apple) or higher minors: speak the best we know.
                self.minor = match minor {
                    0..=6 => 3,
                    7 => 7,
                    _ => 8,
                };
                self.output
                    .extend_from_slice(format!("RFB 003.00{}\n", self.minor).as_bytes());
                self.state = if self.minor == 3 {
                    State::SecurityType33
                } else {
                    State::SecurityTypes
                };
            }
            State::SecurityType33 => {
                let Some(t) = r.u32() else { return Ok(None) };
                match t {
                    1 => self.client_init(),
                    2 if self.password.is_some() => self.state = State::VncChallenge,
                    2 => return Err(Error::Security("the server wants a VNC password".into())),
                    0 => return self.failure(&mut r),
                    other => {
                        return Err(Error::Security(format!(
                            "the server demands security type {other}"
                        )))
                    }
                }
            }
            State::SecurityTypes => {
                let Some(n) = r.u8() else { return Ok(None) };
                if n == 0 {
                    return self.failure(&mut r);
                }
                let Some(types) = r.take(n as usize) else {
                    return Ok(None);
                };
                if types.contains(&1) {
                    self.output.push(1);
                    if self.minor >= 8 {
                        self.state = State::SecurityResult;
                    } else {
                        self.client_init();
                    }
                } else if types.contains(&2) && self.password.is_some() {
                    self.output.push(2);
                    self.state = State::VncChallenge;
                } else if types.contains(&2) {
                    return Err(Error::Security("the server wants a VNC password".into()));
                } else {
                    return Err(Error::Security(format!(
                        "no supported security type among {types:?}"
                    )));
                }
            }
            State::VncChallenge => {
                let Some(challenge) = r.take(16) else {
                    return Ok(None);
                };
                let response =
                    vnc_auth_response(self.password.as_deref().unwrap_or(&[]), challenge);
                self.output.extend_from_slice(&response);
                self.state = State::SecurityResult;
            }
            State::SecurityResult => {
                let Some(result) = r.u32() else {
                    return Ok(None);
                };
                if result != 0 {
                    if self.minor < 8 {
                        return Err(Error::Security("the server refused the password".into()));
                    }
                    return self.failure(&mut r);
                }
                self.client_init();
            }
            State::ServerInit => {
                let Some(w) = r.u16() else { return Ok(None) };
                let Some(h) = r.u16() else { return Ok(None) };
                let Some(_pixel_format) = r.take(16) else {
                    return Ok(None);
                };
                let Some(len) = r.u32() else { return Ok(None) };
                if len > 64 * 1024 {
                    return Err(Error::Protocol("desktop name too long".into()));
                }
                let Some(name) = r.take(len as usize) else {
                    return Ok(None);
                };
                self.resize(w, h)?;
                events.push(Event::Connected {
                    width: w,
                    height: h,
                    name: String::from_utf8_lossy(name).into_owned(),
                });
                self.set_pixel_format_and_encodings();
                self.request_update(false);
                self.state = State::Running { rects_left: 0 };
            }
            State::Running { rects_left: 0 } => return self.server_message(&mut r, events),
            State::Running { rects_left } => return self.rectangle(&mut r, rects_left, events),
            State::Failed => return Err(Error::Protocol("the connection already failed".into())),
        }
        Ok(Some(r.pos))
    }

    /// A refusal: a u32 reason length and the reason (3.3 and 3.8), if it has arrived.
    fn failure(&mut self, r: &mut Reader<'_>) -> Step {
        let Some(len) = r.u32() else { return Ok(None) };
        let len = (len as usize).min(64 * 1024);
        let Some(reason) = r.take(len) else {
            return Ok(None);
        };
        Err(Error::Security(format!(
            "refused: {}",
            String::from_utf8_lossy(reason)
        )))
    }

    fn client_init(&mut self) {
        // Shared: other clients (an admin's, say) stay connected.
        self.output.push(1);
        self.state = State::ServerInit;
    }

    /// 32 bits per pixel, depth 24, little endian, true colour, red at bit 0: pixels arrive as
    /// R, G, B, X bytes, which is RGBA order in memory (alpha set by the decoder).
    fn set_pixel_format_and_encodings(&mut self) {
        self.output.extend_from_slice(&[0, 0, 0, 0]);
        self.output.extend_from_slice(&[32, 24, 0, 1]);
        self.output.extend_from_slice(&255u16.to_be_bytes());
        self.output.extend_from_slice(&255u16.to_be_bytes());
        self.output.extend_from_slice(&255u16.to_be_bytes());
        self.output.extend_from_slice(&[0, 8, 16, 0, 0, 0]);
        self.output.extend_from_slice(&[2, 0]);
        let n = u16::try_from(self.encodings.len()).unwrap_or(u16::MAX);
        self.output.extend_from_slice(&n.to_be_bytes());
        for e in self.encodings.iter().take(usize::from(n)) {
            self.output.extend_from_slice(&e.to_be_bytes());
        }
    }

    fn resize(&mut self, width: u16, height: u16) -> Result<(), Error> {
        if width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(Error::Unsupported(format!("a {width}x{height} desktop")));
        }
        self.width = width;
        self.height = height;
        self.pixels = vec![0; width as usize * height as usize * 4];
        for px in self.pixels.chunks_exact_mut(4) {
            px[3] = 255;
        }
        Ok(())
    }

    fn server_message(&mut self, r: &mut Reader<'_>, events: &mut Vec<Event>) -> Step {
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
                let Some(_) = r.take(count as usize * 6) else {
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
                    text.iter().map(|&b| b as char).collect(),
                ));
            }
            other => return Err(Error::Unsupported(format!("server message type {other}"))),
        }
        Ok(Some(r.pos))
    }

    fn rectangle(&mut self, r: &mut Reader<'_>, rects_left: u16, events: &mut Vec<Event>) -> Step {
        let (Some(x), Some(y), Some(w), Some(h), Some(enc)) =
            (r.u16(), r.u16(), r.u16(), r.u16(), r.i32())
        else {
            return Ok(None);
        };
        let mut left = rects_left - 1;
        match enc {
            ENC_LAST_RECT => left = 0,
            ENC_QEMU_EXTENDED_KEY => {
                if !self.extended_keys {
                    self.extended_keys = true;
                    events.push(Event::ExtendedKeys);
                }
            }
            ENC_QEMU_LED_STATE => {
                let Some(leds) = r.u8() else { return Ok(None) };
                events.push(Event::Leds {
                    scroll_lock: leds & 1 != 0,
                    num_lock: leds & 2 != 0,
                    caps_lock: leds & 4 != 0,
                });
            }
            ENC_EXTENDED_DESKTOP_SIZE => {
                let Some(head) = r.take(4) else {
                    return Ok(None);
                };
                let Some(_screens) = r.take(head[0] as usize * 16) else {
                    return Ok(None);
                };
                // y != 0 answers a size the client asked for; only a change (x = 0 or 1 with
                // status 0) resizes the framebuffer.
                if y == 0 && (w, h) != (self.width, self.height) {
                    self.resize(w, h)?;
                    events.push(Event::Resized {
                        width: w,
                        height: h,
                    });
                }
            }
            ENC_CURSOR => {
                if w > MAX_CURSOR || h > MAX_CURSOR {
                    return Err(Error::Unsupported(format!("a {w}x{h} cursor")));
                }
                let (wu, hu) = (w as usize, h as usize);
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
                    hotspot_x: x,
                    hotspot_y: y,
                    width: w,
                    height: h,
                    rgba,
                });
            }
            ENC_DESKTOP_SIZE => {
                self.resize(w, h)?;
                events.push(Event::Resized {
                    width: w,
                    height: h,
                });
            }
            ENC_RAW | ENC_COPY_RECT | ENC_ZLIB | ENC_ZRLE | ENC_HEXTILE | ENC_TIGHT => {
                if x as u32 + w as u32 > self.width as u32
                    || y as u32 + h as u32 > self.height as u32
                {
                    return Err(Error::Protocol(format!(
                        "rectangle {w}x{h}+{x}+{y} outside the {}x{} desktop",
                        self.width, self.height
                    )));
                }
                let (xu, yu, wu, hu) = (x as usize, y as usize, w as usize, h as usize);
                // Tight's solid fills are told apart, so that a view can fill natively.
                let mut fill = None;
                let mut canvas = decode::Canvas {
                    pixels: &mut self.pixels,
                    width: self.width as usize,
                };
                if enc == ENC_ZLIB || enc == ENC_ZRLE {
                    let Some(len) = r.u32() else { return Ok(None) };
                    if len > 64 << 20 {
                        return Err(Error::Protocol("a compressed rectangle over 64 MiB".into()));
                    }
                    let Some(data) = r.take(len as usize) else {
                        return Ok(None);
                    };
                    if enc == ENC_ZLIB {
                        let raw = self.zlib.inflate(data, wu * hu * 4)?;
                        if raw.len() != wu * hu * 4 {
                            return Err(Error::Protocol("Zlib rectangle of the wrong size".into()));
                        }
                        canvas.rgbx_rows(xu, yu, wu, raw);
                    } else {
                        let raw = self.zrle.inflate(data, decode::zrle_bound(wu, hu))?;
                        decode::zrle(&mut canvas, xu, yu, wu, hu, raw)?;
                    }
                } else if enc == ENC_TIGHT {
                    let rest = &r.buf[r.pos..];
                    let Some(parsed) =
                        self.tight
                            .rect(&mut canvas, (xu, yu, wu, hu), rest, self.decode_jpeg)?
                    else {
                        return Ok(None);
                    };
                    if let Some(jpeg) = parsed.jpeg {
                        events.push(Event::Jpeg {
                            x,
                            y,
                            width: w,
                            height: h,
                            data: rest[jpeg].to_vec(),
                        });
                        self.awaiting_jpeg = Some((x, y, w, h));
                        self.state = State::Running { rects_left: left };
                        return Ok(Some(r.pos + parsed.used));
                    }
                    r.pos += parsed.used;
                    fill = parsed.fill;
                } else if enc == ENC_HEXTILE {
                    let rest = &r.buf[r.pos..];
                    let Some(used) = decode::hextile(&mut canvas, xu, yu, wu, hu, rest)? else {
                        return Ok(None);
                    };
                    r.pos += used;
                } else if enc == ENC_RAW {
                    let Some(data) = r.take(w as usize * h as usize * 4) else {
                        return Ok(None);
                    };
                    canvas.rgbx_rows(xu, yu, wu, data);
                } else {
                    let (Some(sx), Some(sy)) = (r.u16(), r.u16()) else {
                        return Ok(None);
                    };
                    if sx as u32 + w as u32 > self.width as u32
                        || sy as u32 + h as u32 > self.height as u32
                    {
                        return Err(Error::Protocol(
                            "CopyRect source outside the desktop".into(),
                        ));
                    }
                    self.copy_rect(sx, sy, x, y, w, h);
                }
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
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "encoding {other}, which was not asked for"
                )))
            }
        }
        if left == 0 {
            events.push(Event::UpdateDone);
        }
        self.state = State::Running { rects_left: left };
        Ok(Some(r.pos))
    }

    fn copy_rect(&mut self, sx: u16, sy: u16, x: u16, y: u16, w: u16, h: u16) {
        let stride = self.width as usize * 4;
        let len = w as usize * 4;
        // Overlapping copies must read rows in the direction that does not overwrite the source.
        let rows: Box<dyn Iterator<Item = usize>> = if y > sy {
            Box::new((0..h as usize).rev())
        } else {
            Box::new(0..h as usize)
        };
        for row in rows {
            let src = (sy as usize + row) * stride + sx as usize * 4;
            let dst = (y as usize + row) * stride + x as usize * 4;
            self.pixels.copy_within(src..src + len, dst);
        }
    }
}

#[cfg(test)]
mod tests;
