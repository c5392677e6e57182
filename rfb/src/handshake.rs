//! The handshake: version, security (None or VNC authentication), ClientInit and ServerInit,
//! after which the client sets its pixel format and encodings and asks for the first update.

use crate::reader::Reader;
use crate::{Client, Error, Event, State, Step};

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

impl Client {
    /// One handshake message, in whatever state before `Running` the client is.
    pub(crate) fn handshake(&mut self, r: &mut Reader<'_>, events: &mut Vec<Event>) -> Step {
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
                    0 => return self.failure(r),
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
                    return self.failure(r);
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
                    return self.failure(r);
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
            State::Running { .. } | State::Failed => {
                return Err(Error::Protocol("the handshake is over".into()))
            }
        }
        Ok(Some(r.pos))
    }

    /// A refusal: a u32 reason length and the reason (3.3 and 3.8), if it has arrived.
    pub(crate) fn failure(&mut self, r: &mut Reader<'_>) -> Step {
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
}
