//! A drill drawn: the writer's acknowledged and refused writes per 100 ms as bars, the fault,
//! detection, promotion, the first write resumed and the standbys following marked on the time
//! axis, and the outage (from the fault to the first write resumed) shaded. A standalone SVG
//! document, shown on the page, in the trainer's room and downloaded; plain Rust, tested natively.

use crate::diagram::esc;
use crate::text::{fixed, signed};
use m1studio_shared::api::{DrillReport, Signal};
use std::fmt::Write as _;

/// The chart's size.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for the axis labels and the marks' names.
const LEFT: f64 = 36.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 28.0;

const STYLE: &str = "\
text{font:11px system-ui,sans-serif;fill:#1f2933}\
.ack{fill:#2f855a}.refused{fill:#c53030}\
.outage{fill:#c53030;opacity:.08}\
.axis{stroke:#52606d;stroke-width:1}\
.mark{stroke:#1f2933;stroke-width:1;stroke-dasharray:3 3}\
.mark-label{font-size:10px}\
.fault{stroke:#c53030;stroke-dasharray:none;stroke-width:1.5}";

/// The moments the chart marks, and their short names.
const MARKED: [(Signal, &str); 5] = [
    (Signal::Fault, "fault"),
    (Signal::Detected, "detected"),
    (Signal::Promoted, "promoted"),
    (Signal::WritesResumed, "writes resume"),
    (Signal::Settled, "standbys follow"),
];

/// The chart of `report`, or `None` when it has no writes to draw (a report older than charts).
pub fn drill_chart(report: &DrillReport) -> Option<String> {
    let series = report.writes_over_time.as_ref()?;
    let steps = series.acknowledged.len().max(1);
    let step_ms = series.step_ms.max(1) as f64;
    let span_ms = steps as f64 * step_ms;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x_of = |ms: f64| LEFT + (ms - series.from_ms as f64) / span_ms * plot_width;
    let tallest = series
        .acknowledged
        .iter()
        .zip(&series.refused)
        .map(|(a, r)| a + r)
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = plot_width / steps as f64;
    let y_of = |count: u32| plot_height * f64::from(count) / f64::from(tallest);
    // Coordinates to a tenth of a pixel.
    let px = |value: f64| fixed(value, 1);
    let (width, height) = (px(WIDTH), px(HEIGHT));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="chart-title"><title id="chart-title">Drill {}: {} of {}, writes per {} ms</title><style>{STYLE}</style>"#,
        report.number,
        esc(&report.action),
        esc(&report.target),
        series.step_ms
    );
    // The outage: from the fault to the first write resumed.
    let resumed = report
        .timeline
        .iter()
        .find(|m| m.kind == Signal::WritesResumed)
        .map(|m| m.after_ms);
    if let Some(resumed) = resumed.filter(|r| *r > 0) {
        let _ = write!(
            out,
            r#"<rect class="outage" data-from-ms="0" data-to-ms="{resumed}" x="{}" y="{}" width="{}" height="{}"/>"#,
            px(x_of(0.0)),
            px(TOP),
            px((x_of(resumed as f64) - x_of(0.0)).max(0.0)),
            px(plot_height)
        );
    }
    for (i, (acknowledged, refused)) in series.acknowledged.iter().zip(&series.refused).enumerate()
    {
        let x = LEFT + i as f64 * bar;
        let width = fixed((bar - 0.3).max(0.5), 2);
        let (a, r) = (y_of(*acknowledged), y_of(*refused));
        let base = TOP + plot_height;
        if *acknowledged > 0 {
            let _ = write!(
                out,
                r#"<rect class="ack" x="{}" y="{}" width="{width}" height="{}"/>"#,
                px(x),
                px(base - a),
                px(a)
            );
        }
        if *refused > 0 {
            let _ = write!(
                out,
                r#"<rect class="refused" x="{}" y="{}" width="{width}" height="{}"/>"#,
                px(x),
                px(base - a - r),
                px(r)
            );
        }
    }
    // The axes: time in seconds from the fault, and the tallest step's count.
    let base = TOP + plot_height;
    let (left, top, bottom) = (px(LEFT), px(TOP), px(base));
    let _ = write!(
        out,
        r#"<line class="axis" x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/><text x="{}" y="{}" text-anchor="end">{tallest}</text>"#,
        px(WIDTH - RIGHT),
        px(LEFT - 4.0),
        px(TOP + 10.0)
    );
    let first_second = (series.from_ms as f64 / 1000.0).ceil() as i64;
    let last_second = ((series.from_ms as f64 + span_ms) / 1000.0).floor() as i64;
    let every = ((last_second - first_second) / 8).max(1);
    for second in (first_second..=last_second).filter(|s| s % every == 0) {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{second:+} s</text>"#,
            px(x_of(second as f64 * 1000.0)),
            px(HEIGHT - 8.0)
        );
    }
    // The moments, each on its line, their names staggered so that close ones stay legible.
    let mut row = 0;
    for (kind, name) in MARKED {
        let Some(moment) = report.timeline.iter().find(|m| m.kind == kind) else {
            continue;
        };
        let x = x_of(moment.after_ms as f64);
        let class = if kind == Signal::Fault {
            "mark fault"
        } else {
            "mark"
        };
        let _ = write!(
            out,
            r#"<line class="{class}" data-kind="{}" x1="{x}" y1="{}" x2="{x}" y2="{bottom}"/><text class="mark-label" x="{}" y="{}">{name} {} s</text>"#,
            kind_name(kind),
            px(TOP - 2.0),
            px(x + 2.0),
            px(12.0 + f64::from(row) * 11.0),
            signed(moment.after_ms as f64 / 1000.0, 1),
            x = px(x),
        );
        row = (row + 1) % 3;
    }
    out.push_str("</svg>");
    Some(out)
}

/// A signal's name, as the API spells it.
fn kind_name(kind: Signal) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use m1studio_shared::api::{Moment, WriteSeries};

    fn report(series: Option<WriteSeries>) -> DrillReport {
        let moment = |after_ms, kind| Moment {
            after_ms,
            kind,
            node: None,
            what: String::new(),
        };
        DrillReport {
            number: 2,
            action: "kill-primary".into(),
            target: "kestrel <1>".into(),
            fault_ms: 0,
            new_primary: Some("quartz".into()),
            rto_ms: Some(3000),
            outage_ms: Some(3000),
            writes_acknowledged: 40,
            writes_failed: 3,
            writes_lost: Some(0),
            rpo_ms: Some(0),
            synchronous: true,
            timeline: vec![
                moment(0, Signal::Fault),
                moment(1200, Signal::Detected),
                moment(2500, Signal::Promoted),
                moment(3000, Signal::WritesResumed),
                moment(4100, Signal::Settled),
            ],
            finished: true,
            note: None,
            writes_over_time: series,
        }
    }

    fn series() -> WriteSeries {
        // One second of writes before the fault, three without, one after.
        let mut acknowledged = vec![2; 10];
        acknowledged.extend([0; 30]);
        acknowledged.extend([2; 10]);
        let mut refused = vec![0; 50];
        refused[12] = 1;
        refused[20] = 2;
        WriteSeries {
            from_ms: -1000,
            step_ms: 100,
            acknowledged,
            refused,
        }
    }

    #[test]
    fn the_chart_draws_every_step_the_marks_and_the_outage() {
        let svg = drill_chart(&report(Some(series()))).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches(r#"class="ack""#).count(),
            20,
            "a bar per step with writes"
        );
        assert_eq!(svg.matches(r#"class="refused""#).count(), 2);
        for kind in ["fault", "detected", "promoted", "writes_resumed", "settled"] {
            assert!(svg.contains(&format!(r#"data-kind="{kind}""#)), "{kind}");
        }
        assert!(
            svg.contains(r#"data-to-ms="3000""#),
            "the outage ends where writes resume"
        );
        assert!(svg.contains("kestrel &lt;1&gt;"), "text is escaped");
        assert!(
            svg.contains(">-1 s<") && svg.contains(">+3 s<"),
            "seconds from the fault"
        );
        // The fault's line stands where the time axis says 0.
        let at = |needle: &str| {
            let start = svg.find(needle).unwrap() + needle.len();
            svg[start..]
                .split('"')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        let fault_x = at(r#"data-kind="fault" x1=""#);
        let expected = LEFT + 1000.0 / 5000.0 * (WIDTH - LEFT - RIGHT);
        assert!((fault_x - expected).abs() < 0.1, "{fault_x} vs {expected}");
    }

    #[test]
    fn a_report_without_writes_has_no_chart() {
        assert_eq!(drill_chart(&report(None)), None);
    }
}
