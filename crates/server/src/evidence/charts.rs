//! Bar charts as inline SVG, with axes, tick labels, a title and a legend, drawn with maud so
//! that every label (a token's symbol, an agent's address, a reason code) is escaped: nothing
//! read from outside is pasted in as markup.

use maud::{Markup, html};

/// One bar: its label under the axis (may be empty), its height, and its tooltip.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) tip: String,
}

/// A horizontal guide line across the chart (a cap), with its legend entry.
pub(super) struct Guide {
    pub(super) value: f64,
    pub(super) legend: String,
}

/// A bar chart.
pub(super) struct BarChart<'a> {
    /// What it shows (the SVG's title and the heading above it).
    pub(super) title: &'a str,
    /// The x axis' name.
    pub(super) x_axis: &'a str,
    /// The y axis' name, with its unit.
    pub(super) y_axis: &'a str,
    /// What a bar is, for the legend.
    pub(super) legend: &'a str,
    /// The bars, left to right.
    pub(super) bars: Vec<Bar>,
    /// Optional guide line.
    pub(super) guide: Option<Guide>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
/// Room left of the plot for the y ticks, below it for the x labels, above for the legend.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 56.0;
const TOP: f64 = 28.0;

/// A tick's number, short: 1234567 → "1.23M".
fn tick(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "G")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// The smallest of 1, 2 and 5 × 10^k at or above `at_least` (1 when nothing is above zero).
fn nice_step(at_least: f64) -> f64 {
    if at_least <= 0.0 || !at_least.is_finite() {
        return 0.25;
    }
    let power = 10f64.powf(at_least.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= at_least * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

impl BarChart<'_> {
    pub(super) fn render(&self) -> Markup {
        let top = self
            .bars
            .iter()
            .map(|b| b.value)
            .chain(self.guide.as_ref().map(|g| g.value))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        // Four equal steps of a round size (1, 2 or 5 × 10^k) that reach the largest value.
        let step = nice_step(top / 4.0);
        let top = step * 4.0;
        let plot_w = WIDTH - LEFT - 8.0;
        let y = |v: f64| TOP + HEIGHT - (v.max(0.0) / top * HEIGHT);
        let slot = plot_w / self.bars.len().max(1) as f64;
        let bar_w = (slot * 0.8).max(1.0);
        // At most ~12 x labels, evenly spaced.
        let label_every = self.bars.len().div_ceil(12).max(1);
        let total_h = TOP + HEIGHT + BOTTOM;
        html! {
            figure.chart {
                svg viewBox=(format!("0 0 {WIDTH} {total_h}")) role="img" xmlns="http://www.w3.org/2000/svg" {
                    title { (self.title) }
                    // Legend.
                    rect.bar x=(LEFT) y="6" width="12" height="10" {}
                    text x=(LEFT + 16.0) y="15" { (self.legend) }
                    @if let Some(guide) = &self.guide {
                        line.guide x1=(LEFT + 260.0) x2=(LEFT + 284.0) y1="11" y2="11" {}
                        text x=(LEFT + 290.0) y="15" { (guide.legend) }
                    }
                    // Axes and y ticks.
                    line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + HEIGHT) {}
                    line.axis x1=(LEFT) x2=(WIDTH - 8.0) y1=(TOP + HEIGHT) y2=(TOP + HEIGHT) {}
                    @for i in 0..=4u32 {
                        @let v = top * f64::from(i) / 4.0;
                        line.grid x1=(LEFT) x2=(WIDTH - 8.0) y1=(y(v)) y2=(y(v)) {}
                        text.tick x=(LEFT - 4.0) y=(y(v) + 4.0) text-anchor="end" { (tick(v)) }
                    }
                    text.axis-name x="12" y=(TOP + HEIGHT / 2.0) text-anchor="middle"
                        transform=(format!("rotate(-90 12 {})", TOP + HEIGHT / 2.0)) { (self.y_axis) }
                    text.axis-name x=(LEFT + plot_w / 2.0) y=(total_h - 4.0) text-anchor="middle" { (self.x_axis) }
                    // Bars.
                    @for (i, bar) in self.bars.iter().enumerate() {
                        @let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                        rect.bar x=(x) y=(y(bar.value)) width=(bar_w) height=(TOP + HEIGHT - y(bar.value)) {
                            title { (bar.tip) }
                        }
                        @if i % label_every == 0 {
                            text.tick x=(x + bar_w / 2.0) y=(TOP + HEIGHT + 14.0) text-anchor="middle" { (bar.label) }
                        }
                    }
                    @if let Some(guide) = &self.guide {
                        line.guide x1=(LEFT) x2=(WIDTH - 8.0) y1=(y(guide.value)) y2=(y(guide.value)) {
                            title { (guide.legend) }
                        }
                    }
                }
                figcaption { (self.title) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(1_234_567.0), "1.23M");
        assert_eq!(tick(2_500.0), "2.5k");
        assert_eq!(tick(0.5), "0.5");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(3.25), 5.0);
        assert_eq!(nice_step(0.125), 0.2);
        assert_eq!(nice_step(2.0), 2.0);
        assert_eq!(nice_step(0.0), 0.25);
    }

    #[test]
    fn labels_from_outside_are_escaped() {
        let chart = BarChart {
            title: "t",
            x_axis: "x",
            y_axis: "y",
            legend: "<b>legend</b>",
            bars: vec![Bar {
                label: "<script>alert(1)</script>".into(),
                value: 1.0,
                tip: "\"><svg onload=alert(1)>".into(),
            }],
            guide: Some(Guide {
                value: 2.0,
                legend: "&cap".into(),
            }),
        }
        .render()
        .into_string();
        assert!(!chart.contains("<script>"), "{chart}");
        assert!(!chart.contains("<svg onload"), "{chart}");
        assert!(!chart.contains("<b>"), "{chart}");
        assert!(chart.contains("&lt;script&gt;"), "{chart}");
        assert!(chart.contains("&amp;cap"), "{chart}");
    }
}
