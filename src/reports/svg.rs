//! Charts drawn on the server as SVG, to be put inline in a page.
//!
//! Each chart is an image for assistive technologies (`role="img"`) named by
//! its `<title>` and described by its `<desc>`; the page shows the same figures
//! in a table next to it, so nothing is only in the drawing. Every text that
//! comes from data is XML-escaped here, which is why [`Svg`] may be written
//! into a page as is.

use std::fmt::Write as _;

/// A finished chart, safe to insert in HTML as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(String);

impl Svg {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Svg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// Built only by this module, from escaped text.
impl askama::filters::HtmlSafe for Svg {}

/// Escapes text for an XML text node or attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// One bar: its label, its value (for the length) and the value as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

const WIDTH: f64 = 720.0;
const LABEL_W: f64 = 240.0;
const VALUE_W: f64 = 110.0;
const ROW_H: f64 = 24.0;
/// Dark enough on white for text and large shapes alike (RGAA contrast).
const BAR_COLOUR: &str = "#1d4f91";
const TEXT_COLOUR: &str = "#1a1a1a";

fn open(out: &mut String, id: &str, title: &str, desc: &str, height: f64) {
    let id = escape(id);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" font-family=\"sans-serif\" font-size=\"13\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(desc)
    );
}

/// A horizontal bar chart; `max` fixes the full length (e.g. 1.0 for rates),
/// otherwise the largest value does. Labels longer than the label column are
/// cut with an ellipsis (the table beside has them whole).
pub fn bar_chart(id: &str, title: &str, desc: &str, bars: &[Bar], max: Option<f64>) -> Svg {
    let height = (bars.len().max(1) as f64) * ROW_H + 8.0;
    let mut out = String::new();
    open(&mut out, id, title, desc, height);
    let top = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let span = WIDTH - LABEL_W - VALUE_W;
    for (k, b) in bars.iter().enumerate() {
        let y = 4.0 + k as f64 * ROW_H;
        let len = (b.value.max(0.0) / top).min(1.0) * span;
        let label: String = if b.label.chars().count() > 32 {
            b.label.chars().take(31).chain(std::iter::once('…')).collect()
        } else {
            b.label.clone()
        };
        let _ = write!(
            out,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" fill=\"{TEXT_COLOUR}\">{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{ry}\" width=\"{len:.1}\" height=\"{h}\" fill=\"{BAR_COLOUR}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\" fill=\"{TEXT_COLOUR}\">{}</text>",
            escape(&label),
            escape(&b.shown),
            lx = LABEL_W - 8.0,
            ty = y + 16.0,
            ry = y + 3.0,
            h = ROW_H - 6.0,
            vx = LABEL_W + len + 6.0,
        );
    }
    out.push_str("</svg>");
    Svg(out)
}

/// A weekday × hour grid: `cells[day][hour]`, darker for more; `shown`
/// writes a value for each cell's tooltip.
pub fn heat_map(
    id: &str,
    title: &str,
    desc: &str,
    days: &[&str; 7],
    cells: &[[f64; 24]; 7],
    shown: impl Fn(f64) -> String,
) -> Svg {
    let (left, top, cw, ch) = (100.0, 22.0, 25.0, 26.0);
    let height = top + 7.0 * ch + 6.0;
    let mut out = String::new();
    open(&mut out, id, title, desc, height);
    let max = cells
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    for h in (0..24).step_by(2) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"{TEXT_COLOUR}\" font-size=\"11\">{h}</text>",
            left + h as f64 * cw + cw / 2.0
        );
    }
    for (d, row) in cells.iter().enumerate() {
        let y = top + d as f64 * ch;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{TEXT_COLOUR}\">{}</text>",
            left - 8.0,
            y + ch / 2.0 + 4.0,
            escape(days[d])
        );
        for (h, v) in row.iter().enumerate() {
            // From white to the bar colour; a thin border keeps empty cells visible.
            let t = (v / max).clamp(0.0, 1.0);
            let mix = |full: u8| (255.0 - (255.0 - f64::from(full)) * t).round() as u8;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"#{:02x}{:02x}{:02x}\" \
                 stroke=\"#767676\" stroke-width=\"0.5\"><title>{} {h} h : {}</title></rect>",
                left + h as f64 * cw,
                y,
                mix(0x1d),
                mix(0x4f),
                mix(0x91),
                escape(days[d]),
                escape(&shown(*v))
            );
        }
    }
    out.push_str("</svg>");
    Svg(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_is_titled_described_and_escapes_its_labels() {
        let svg = bar_chart(
            "occ",
            "Taux d'occupation",
            "Part des heures d'ouverture réservées",
            &[
                Bar {
                    label: "Salle <Cézanne> & co".into(),
                    value: 0.5,
                    shown: "50 %".into(),
                },
                Bar {
                    label: "Salle Monet".into(),
                    value: 1.0,
                    shown: "100 %".into(),
                },
            ],
            Some(1.0),
        );
        let s = svg.as_str();
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.contains("role=\"img\""));
        assert!(s.contains("aria-labelledby=\"occ-title occ-desc\""));
        assert!(s.contains("<title id=\"occ-title\">Taux d&#39;occupation</title>"));
        assert!(s.contains("Salle &lt;Cézanne&gt; &amp; co"));
        assert!(!s.contains("<Cézanne>"));
        // Half of the bar span, then the full span.
        assert!(s.contains("width=\"185.0\""), "{s}");
        assert!(s.contains("width=\"370.0\""), "{s}");
    }

    #[test]
    fn a_heat_map_has_one_cell_per_weekday_and_hour() {
        let mut cells = [[0.0; 24]; 7];
        cells[1][9] = 3600.0;
        let days = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
        let svg = heat_map("heat", "Carte", "Heures", &days, &cells, |v| format!("{v}"));
        assert_eq!(svg.as_str().matches("<rect").count(), 7 * 24);
        assert!(svg.as_str().contains("fill=\"#1d4f91\""));
        assert!(svg.as_str().contains("<title>mardi 9 h : 3600</title>"));
    }
}
