//! The console relay's side of RFB's opening, for a guest's VNC server on the loopback (the
//! fallback): that server asks for VNC authentication with a password of this boot's own, which
//! the relay answers ([`login`]); the browser, already authorised by its ticket, is then offered
//! security type None by the relay itself ([`greet`]) and never learns the password. After both,
//! the relay only copies bytes: the browser's ClientInit goes to the guest's server.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time each side has for its part of the opening.
const OPENING: Duration = Duration::from_secs(10);

fn refused(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_owned())
}

/// Logs in to the VNC server on `stream` with `password` (RFB 3.8, VNC authentication).
pub async fn login(stream: &mut tokio::net::TcpStream, password: &str) -> std::io::Result<()> {
    tokio::time::timeout(OPENING, async {
        let mut version = [0u8; 12];
        stream.read_exact(&mut version).await?;
        if !version.starts_with(b"RFB 003.") {
            return Err(refused("not an RFB server"));
        }
        stream.write_all(b"RFB 003.008\n").await?;
        let count = stream.read_u8().await?;
        if count == 0 {
            return Err(refused("the VNC server refused the connection"));
        }
        let mut types = vec![0u8; usize::from(count)];
        stream.read_exact(&mut types).await?;
        if !types.contains(&2) {
            return Err(refused("the VNC server offers no VNC authentication"));
        }
        stream.write_all(&[2]).await?;
        let mut challenge = [0u8; 16];
        stream.read_exact(&mut challenge).await?;
        stream
            .write_all(&rfb::vnc_auth_response(password.as_bytes(), &challenge))
            .await?;
        match stream.read_u32().await? {
            0 => Ok(()),
            _ => Err(refused("the VNC server refused the password")),
        }
    })
    .await
    .map_err(|_| refused("the VNC server did not answer in time"))?
}

/// Plays the server's opening to the browser (RFB 3.8, security None) and returns what the
/// browser sent past it (the start of its ClientInit), for the guest's server.
pub async fn greet(ws: &mut WebSocket) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(OPENING, async {
        ws.send(Message::Binary(b"RFB 003.008\n".as_slice().into()))
            .await
            .map_err(std::io::Error::other)?;
        let mut got = Vec::new();
        let mut need = 12;
        let mut offered = false;
        loop {
            while got.len() < need {
                match ws.recv().await {
                    Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
                    Some(Ok(Message::Text(t))) => got.extend_from_slice(t.as_bytes()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => return Err(refused("the browser went away")),
                }
            }
            if !offered {
                if &got[..12] != b"RFB 003.008\n" {
                    return Err(refused("the browser speaks another RFB version"));
                }
                // One security type: None.
                ws.send(Message::Binary(vec![1u8, 1].into()))
                    .await
                    .map_err(std::io::Error::other)?;
                offered = true;
                need = 13;
                continue;
            }
            if got[12] != 1 {
                return Err(refused("the browser chose another security type"));
            }
            ws.send(Message::Binary(vec![0u8, 0, 0, 0].into()))
                .await
                .map_err(std::io::Error::other)?;
            return Ok(got.split_off(13));
        }
    })
    .await
    .map_err(|_| refused("the browser did not answer in time"))?
}
