//! Small live graphs drawn as SVG from Rust: no charting library, a polyline per series.

use leptos::prelude::*;
use nuage_shared::MetricSample;

/// Width and height of a graph's drawing area (SVG user units).
const W: f32 = 300.0;
const H: f32 = 80.0;

/// The `points` of a polyline for `values` (oldest first), scaled to `max` and spread over `W`.
pub fn polyline(values: &[f32], max: f32) -> String {
    let n = values.len();
    if n == 0 || max <= 0.0 {
        return String::new();
    }
    let step = if n > 1 { W / (n - 1) as f32 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = H - (v.max(0.0) / max).min(1.0) * H;
            format!(
                "{},{}",
                fixed((i as f32 * step) as f64, 1),
                fixed(y as f64, 1)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A ceiling for the y axis: the largest value rounded up to 1, 2 or 5 × a power of ten.
pub fn nice_max(values: impl Iterator<Item = f32>, floor: f32) -> f32 {
    let m = values.fold(floor, f32::max);
    // Powers of ten by multiplication (no libm in the wasm).
    let mut p = 1.0f32;
    while p * 10.0 <= m {
        p *= 10.0;
    }
    while p > m && p > f32::MIN_POSITIVE {
        p /= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|k| k * p)
        .find(|c| *c >= m)
        .unwrap_or(m)
}

/// `v` with `decimals` (0-3) digits after the point, rounded, by integer arithmetic: the console
/// formats no float through `core::fmt`, which keeps about 7 KiB of float-printing code (gzipped)
/// out of the wasm.
// `n` and `h` are non-negative and rounded; a float-to-int `as` saturates.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn fixed(v: f64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals.min(3));
    let sign = if v < 0.0 { "-" } else { "" };
    let n = (v.abs() * scale as f64 + 0.5) as u64;
    if decimals == 0 {
        format!("{sign}{n}")
    } else {
        format!(
            "{sign}{}.{:0width$}",
            n / scale,
            n % scale,
            width = decimals.min(3) as usize
        )
    }
}

/// A ratio such as 4, 1.5 or 0.25, without the float-to-shortest formatting code.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn ratio(r: f64) -> String {
    let h = (r.max(0.0) * 100.0 + 0.5) as u64;
    match (h / 100, h % 100) {
        (i, 0) => i.to_string(),
        (i, f) if f % 10 == 0 => format!("{i}.{}", f / 10),
        (i, f) => format!("{i}.{f:02}"),
    }
}

/// Bytes per second (or bytes) as a short human figure.
pub fn human_bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{} {}", fixed(v, if u == 0 { 0 } else { 1 }), units[u])
}

/// One series: its label, colour class and how to read it from a sample.
pub struct Series {
    pub label: &'static str,
    pub class: &'static str,
    pub get: fn(&MetricSample) -> f32,
}

/// A graph of one or two series over the samples, with the latest values written out. Plain
/// (not reactive): the caller redraws it when the samples change, which keeps the wasm small.
pub fn graph(
    title: &'static str,
    id: &'static str,
    samples: &[MetricSample],
    series: &[Series],
    fmt: fn(f32) -> String,
    floor: f32,
) -> impl IntoView {
    let max = nice_max(
        samples
            .iter()
            .flat_map(|x| series.iter().map(move |se| (se.get)(x))),
        floor,
    );
    let legends = series
        .iter()
        .map(|se| {
            let last = samples.last().map(|x| fmt((se.get)(x)));
            view! {
                <span class=format!("legend {}", se.class)>
                    {format!("{} {}", se.label, last.unwrap_or_else(|| "–".into()))}
                </span>
            }
        })
        .collect_view();
    let lines = series
        .iter()
        .map(|se| {
            let values: Vec<f32> = samples.iter().map(se.get).collect();
            view! { <polyline class=se.class points=polyline(&values, max)/> }
        })
        .collect_view();
    view! {
        <figure class="graph" id=id>
            <figcaption><span class="graph-title">{title}</span>{legends}</figcaption>
            // Coordinates as text: Display of an f32 would pull float-to-shortest into the wasm.
            <svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label=title>
                <line x1="0" y1="80" x2="300" y2="80" class="axis"/>
                {lines}
            </svg>
            <div class="graph-scale muted">{format!("max {}", fmt(max))}</div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn fixed_point_figures_round_like_format_does() {
        for (v, d, want) in [
            (0.0, 0, "0"),
            (12.5, 0, "13"),
            (99.94, 1, "99.9"),
            (99.96, 1, "100.0"),
            (0.05, 1, "0.1"),
            (2.5149, 2, "2.51"),
            (-1.25, 1, "-1.3"),
            (80.0, 1, "80.0"),
            (1234567.0, 0, "1234567"),
        ] {
            assert_eq!(fixed(v, d), want, "{v} with {d} decimals");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn polylines_scale_into_the_box() {
        assert_eq!(polyline(&[], 10.0), "");
        assert_eq!(
            polyline(&[0.0, 5.0, 10.0], 10.0),
            "0.0,80.0 150.0,40.0 300.0,0.0"
        );
        // Values beyond the ceiling (or negative) stay inside the box.
        assert_eq!(polyline(&[20.0, -1.0], 10.0), "0.0,0.0 300.0,80.0");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn ceilings_are_round_and_never_below_the_floor() {
        assert_eq!(nice_max([3.2f32, 7.9].into_iter(), 1.0), 10.0);
        assert_eq!(nice_max([120.0f32].into_iter(), 1.0), 200.0);
        assert_eq!(nice_max([0.0f32].into_iter(), 100.0), 100.0);
        assert!((nice_max([0.03f32].into_iter(), 0.0) - 0.05).abs() < 1e-6);
        assert_eq!(
            (ratio(4.0), ratio(1.5), ratio(0.25)),
            ("4".into(), "1.5".into(), "0.25".into())
        );
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
