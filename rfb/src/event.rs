//! What the client tells its view.

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
