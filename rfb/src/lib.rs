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
mod dirty;
mod encoding;
mod event;
mod handshake;
pub mod keys;
mod messages;
mod reader;
mod tight;

pub use dirty::{Dirty, Paint};
pub use encoding::{Encoding, Rect};
pub use event::Event;
pub use handshake::vnc_auth_response;
use reader::Reader;

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

/// The outcome of trying to parse one message: not enough bytes yet, or consumed `n` bytes.
/// How far a parser got: `Ok(None)` until its whole message has arrived, else the bytes used.
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

    fn step(&mut self, events: &mut Vec<Event>) -> Step {
        let input = std::mem::take(&mut self.input);
        let result = self.parse(&input, events);
        self.input = input;
        result
    }

    fn parse(&mut self, input: &[u8], events: &mut Vec<Event>) -> Step {
        let mut r = Reader::new(input);
        match self.state {
            State::Running { rects_left: 0 } => self.server_message(&mut r, events),
            State::Running { rects_left } => self.rectangle(&mut r, rects_left, events),
            State::Failed => Err(Error::Protocol("the connection already failed".into())),
            _ => self.handshake(&mut r, events),
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
}

#[cfg(test)]
mod tests;
