//! Draws an update's steps ([`rfb::Dirty::take`]) on a canvas: fills natively; a large copy
//! from an ImageData that is a view of the framebuffer in wasm memory (no copy on our side; the
//! canvas takes only the dirty part), a small one from its own rows. Also compiled into `bench/wasm-decode`, so the browser
//! benchmark measures exactly this.

use wasm_bindgen::Clamped;
use web_sys::{CanvasRenderingContext2d, ImageData};

pub fn paint(client: &rfb::Client, ctx: &CanvasRenderingContext2d, steps: &[rfb::Paint]) {
    let (fw, fh) = (client.width() as usize, client.height() as usize);
    if steps.is_empty() || fw == 0 || fh == 0 {
        return;
    }
    let fb = client.framebuffer();
    let mut rect = Vec::new();
    for step in steps {
        match *step {
            rfb::Paint::Fill((x, y, w, h), [r, g, b]) => {
                ctx.set_fill_style_str(&format!("rgb({r},{g},{b})"));
                ctx.fill_rect(x.into(), y.into(), w.into(), h.into());
            }
            rfb::Paint::Copy((x, y, w, h)) => {
                let (xu, yu) = (x as usize, y as usize);
                let w = (w as usize).min(fw.saturating_sub(xu));
                let h = (h as usize).min(fh.saturating_sub(yu));
                if w == 0 || h == 0 {
                    continue;
                }
                // Chromium converts a whole ImageData per putImageData, dirty rectangle or not:
                // a small rectangle is copied out first; a large one is put from a view.
                let img = if w * h * 4 < fw * fh {
                    rect.clear();
                    for row in yu..yu + h {
                        let start = (row * fw + xu) * 4;
                        rect.extend_from_slice(&fb[start..start + w * 4]);
                    }
                    ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rect), px(w), px(h))
                        .map(|img| (img, x as f64, y as f64, 0.0, 0.0))
                } else {
                    ImageData::new_with_u8_clamped_array_and_sh(Clamped(fb), px(fw), px(fh))
                        .map(|img| (img, 0.0, 0.0, x as f64, y as f64))
                };
                if let Ok((img, dx, dy, sx, sy)) = img {
                    let _ = ctx
                        .put_image_data_with_dirty_x_and_dirty_y_and_dirty_width_and_dirty_height(
                            &img, dx, dy, sx, sy, w as f64, h as f64,
                        );
                }
            }
        }
    }
}

/// A screen dimension (at most 65535, RFB's limit) as the canvas API takes it.
fn px(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
