//! The Spend page's chart: what a wallet committed of one token over a span (24 h, 7 d or 30 d),
//! as bars per bucket and a running total, against the policy's cap for a window of that span.
//! An SVG the server draws with maud, with axes, ticks in the token's units and a legend; every
//! text in it is escaped by maud (a token's symbol is its deployer's choice).

use chaperone_core::{
    U256,
    readable::{TokenUnits, iso8601, units as in_units},
};
use maud::{Markup, html};

/// A span the Spend page charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    Day,
    Week,
    Month,
}

impl Span {
    pub(super) const ALL: [Self; 3] = [Self::Day, Self::Week, Self::Month];

    /// The query value (`?span=7d`); `None` when it is not one of the three.
    pub(super) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|span| span.param() == text)
    }

    pub(super) fn param(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Day => "24 h",
            Self::Week => "7 d",
            Self::Month => "30 d",
        }
    }

    pub(super) fn seconds(self) -> u64 {
        match self {
            Self::Day => 86_400,
            Self::Week => 7 * 86_400,
            Self::Month => 30 * 86_400,
        }
    }

    /// A bar's width: 24 bars of an hour, 28 of six hours, 30 of a day.
    pub(super) fn bucket(self) -> u64 {
        match self {
            Self::Day => 3_600,
            Self::Week => 6 * 3_600,
            Self::Month => 86_400,
        }
    }

    fn per_bucket(self) -> &'static str {
        match self {
            Self::Day => "committed per hour",
            Self::Week => "committed per 6 hours",
            Self::Month => "committed per day",
        }
    }

    /// A tick's label: the hour within a day, else the date.
    fn tick(self, at: u64) -> String {
        let text = iso8601(at);
        match self {
            Self::Day => format!("{} UTC", &text[11..16]),
            Self::Week | Self::Month => text[..10].to_owned(),
        }
    }
}

/// What one chart shows.
pub(super) struct Chart<'a> {
    pub(super) span: Span,
    /// (bucket start, amount committed in it), oldest first, covering the span.
    pub(super) series: &'a [(u64, U256)],
    /// The policy's cap on a window as long as the span, if it has one.
    pub(super) cap: Option<U256>,
    pub(super) units: &'a TokenUnits,
}

// The drawing's geometry: the plot, and the margins for the axes' labels and the legend.
const LEFT: u64 = 84;
const TOP: u64 = 8;
const PLOT_WIDTH: u64 = 480;
const PLOT_HEIGHT: u64 = 150;
const AXIS_LABELS: u64 = 20;
const LEGEND: u64 = 22;

impl Chart<'_> {
    pub(super) fn render(&self) -> Markup {
        let running: Vec<U256> = self
            .series
            .iter()
            .scan(U256::ZERO, |total, (_, amount)| {
                *total = total.saturating_add(*amount);
                Some(*total)
            })
            .collect();
        let total = running.last().copied().unwrap_or_default();
        // The y axis reaches the highest of the running total and the cap (one more unit so
        // that an empty chart still has a scale).
        let top = total.max(self.cap.unwrap_or_default()).max(U256::from(1));
        let y = |amount: U256| {
            // Scaled in U256 (amounts exceed 64 bits), then narrowed: it fits the plot.
            let scaled = u64::try_from(amount.min(top) * U256::from(PLOT_HEIGHT) / top)
                .unwrap_or(PLOT_HEIGHT);
            TOP + PLOT_HEIGHT - scaled
        };
        let bars = self.series.len().max(1) as u64;
        let bar = PLOT_WIDTH / bars;
        let x = |i: u64| LEFT + i * bar;
        let line: String = running
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{},{}", x(i as u64 + 1), y(*t)))
            .fold(format!("{},{}", x(0), y(U256::ZERO)), |points, p| {
                points + " " + &p
            });
        let bottom = TOP + PLOT_HEIGHT;
        let (width, height) = (LEFT + PLOT_WIDTH + 8, bottom + AXIS_LABELS + LEGEND);
        let start = self.series.first().map_or(0, |(t, _)| *t);
        let end = start + bars * self.span.bucket();
        let units = self.units;
        let title = format!(
            "{} over the last {}: {} in all{}",
            units.symbol,
            self.span.label(),
            units.format(total),
            self.cap
                .map_or(String::new(), |cap| format!(", cap {}", units.format(cap))),
        );
        html! {
            svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                // The axes, and the y axis's ticks: zero, half and the top, in the token's units
                // (its symbol is the axis's caption, turned along it: a long one would not fit
                // beside each tick).
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(bottom) {}
                line.axis x1=(LEFT) x2=(LEFT + PLOT_WIDTH) y1=(bottom) y2=(bottom) {}
                @for amount in [U256::ZERO, top / U256::from(2), top] {
                    line.grid x1=(LEFT) x2=(LEFT + PLOT_WIDTH) y1=(y(amount)) y2=(y(amount)) {}
                    text x=(LEFT - 4) y=(y(amount) + 3) text-anchor="end" { (in_units(amount, units.decimals)) }
                }
                text.legend transform="rotate(-90)" x=(0 - (TOP + PLOT_HEIGHT / 2) as i64) y="10" text-anchor="middle" { (units.symbol) }
                @for (i, (at, amount)) in self.series.iter().enumerate() {
                    @let h = bottom - y(*amount);
                    rect.bucket x=(x(i as u64) + 1) y=(bottom - h) width=(bar.saturating_sub(2)) height=(h) {
                        title { (iso8601(*at)) ": " (units.format(*amount)) }
                    }
                }
                polyline.running points=(line) { title { "running total: " (units.format(total)) } }
                @if let Some(cap) = self.cap {
                    line.cap x1=(LEFT) x2=(LEFT + PLOT_WIDTH) y1=(y(cap)) y2=(y(cap)) {
                        title { (self.span.label()) " cap: " (units.format(cap)) }
                    }
                }
                // The x axis: the span's start, middle and end.
                text x=(LEFT) y=(bottom + 14) { (self.span.tick(start)) }
                text x=(LEFT + PLOT_WIDTH / 2) y=(bottom + 14) text-anchor="middle" { (self.span.tick((start + end) / 2)) }
                text x=(LEFT + PLOT_WIDTH) y=(bottom + 14) text-anchor="end" { "now" }
                // The legend.
                @let legend = bottom + AXIS_LABELS + 12;
                rect.bucket x=(LEFT) y=(legend - 8) width="10" height="10" {}
                text.legend x=(LEFT + 14) y=(legend) { (self.span.per_bucket()) }
                line.running x1=(LEFT + 150) x2=(LEFT + 170) y1=(legend - 3) y2=(legend - 3) {}
                text.legend x=(LEFT + 174) y=(legend) { "running total" }
                @match self.cap {
                    Some(_) => {
                        line.cap x1=(LEFT + 260) x2=(LEFT + 280) y1=(legend - 3) y2=(legend - 3) {}
                        text.legend x=(LEFT + 284) y=(legend) { "policy cap, " (self.span.label()) " window" }
                    }
                    None => {
                        text.legend x=(LEFT + 260) y=(legend) { "no " (self.span.label()) " window in the policy" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> TokenUnits {
        TokenUnits {
            symbol: "<b>EVIL</b>".into(),
            decimals: 0,
        }
    }

    #[test]
    fn a_chart_has_axes_ticks_a_legend_and_the_cap() {
        let series: Vec<(u64, U256)> = (0..24)
            .map(|i| (1_700_000_000 + i * 3_600, U256::from(i % 3)))
            .collect();
        let units = units();
        let svg = Chart {
            span: Span::Day,
            series: &series,
            cap: Some(U256::from(40)),
            units: &units,
        }
        .render()
        .into_string();
        assert_eq!(
            svg.matches("<rect class=\"bucket\"").count(),
            25,
            "24 bars and a key"
        );
        assert_eq!(svg.matches("class=\"axis\"").count(), 2);
        assert!(svg.contains("policy cap, 24 h window"));
        assert!(
            svg.contains("24 h cap: 40 &lt;b&gt;EVIL&lt;/b&gt;"),
            "{svg}"
        );
        assert!(svg.contains("running total"));
        assert!(svg.contains(" UTC</text>"), "hours on the x axis: {svg}");
        assert!(!svg.contains("<b>"), "a symbol is text, never markup");
    }

    #[test]
    fn a_span_without_a_window_says_so_and_the_scale_survives_nothing_spent() {
        let series: Vec<(u64, U256)> = (0..30)
            .map(|i| (1_700_000_000 + i * 86_400, U256::ZERO))
            .collect();
        let units = units();
        let svg = Chart {
            span: Span::Month,
            series: &series,
            cap: None,
            units: &units,
        }
        .render()
        .into_string();
        assert!(svg.contains("no 30 d window in the policy"));
        assert!(!svg.contains("class=\"cap\""));
        assert!(svg.contains("2023-11-14"), "dates on the x axis: {svg}");
    }

    #[test]
    fn spans_parse_only_their_own_names() {
        assert_eq!(Span::parse("7d"), Some(Span::Week));
        assert_eq!(Span::parse("7D"), None);
        assert_eq!(Span::parse(""), None);
        assert!(Span::ALL.iter().all(|s| Span::parse(s.param()) == Some(*s)));
    }
}
