//! SVG charts of throughput and latency over time, the SDK beside the raw floor.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::Point;

type Panel<'a> = (
    &'static str,
    fn(&Point) -> f64,
    DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
);

/// One line: thick for the SDK, thin for the floor; one colour per backend.
pub(crate) struct Line<'a> {
    pub(crate) label: String,
    pub(crate) color: usize,
    pub(crate) sdk: bool,
    pub(crate) points: &'a [Point],
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// Two panels, throughput on top and p99 latency below, with `shade` marking a time window
/// (the spike).
pub(crate) fn chart(
    path: &Path,
    title: &str,
    lines: &[Line<'_>],
    shade: Option<(f64, f64)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root
        .titled(title, ("sans-serif", 22))?
        .split_vertically(360);
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.t))
        .fold(1.0f64, f64::max);
    let panels: [Panel<'_>; 2] = [
        ("operations / s", |p| p.per_second, top),
        ("p99 latency (ms)", |p| p.p99_ms, bottom),
    ];
    for (y_label, value, area) in panels {
        let y_max = lines
            .iter()
            .flat_map(|l| l.points.iter().map(value))
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if let Some((from, to)) = shade {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(from, 0.0), (to, y_max)],
                RGBColor(255, 200, 120).mix(0.25).filled(),
            )))?;
        }
        for line in lines {
            let color = COLORS[line.color % COLORS.len()];
            let style = if line.sdk {
                color.stroke_width(3)
            } else {
                color.mix(0.6).stroke_width(1)
            };
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .map(|p| (p.t, value(p)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
