//! Charts drawn on the server with plotters as SVG: readable without JavaScript, and the same
//! numbers are always in a table next to them.

use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

const GREEN: RGBColor = RGBColor(26, 138, 99);
const INK: RGBColor = RGBColor(86, 99, 93);

/// A bar chart of one value per labelled bucket. Returns the SVG document.
pub fn bars(caption: &str, unit: &str, points: &[(String, Decimal)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // Pixel geometry only: the exact figures are in the table beside the chart.
        let top = points
            .iter()
            .filter_map(|(_, v)| v.to_f64())
            .fold(0.0, f64::max);
        let y_max = if top > 0.0 { top * 1.12 } else { 1.0 };
        let n = points.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n as u32).into_segmented(), 0.0..y_max)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = points.iter().map(|(l, _)| l.clone()).collect();
        let every = n.div_ceil(12);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(230, 236, 233))
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) if (*i as usize) % every == 0 => {
                    labels.get(*i as usize).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .y_desc(unit)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 11).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 12).into_font().color(&INK))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().enumerate().map(|(i, (_, v))| {
                let y = v.to_f64().unwrap_or(0.0);
                let i = i as u32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), y),
                    ],
                    GREEN.filled(),
                );
                bar.set_margin(0, 0, 3, 3);
                bar
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A line of values over labelled points in time (e.g. the average trade price per week).
pub fn line(caption: &str, unit: &str, points: &[(String, Decimal)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let values: Vec<f64> = points.iter().filter_map(|(_, v)| v.to_f64()).collect();
        let top = values.iter().copied().fold(0.0, f64::max);
        let bottom = values.iter().copied().fold(top, f64::min);
        let pad = ((top - bottom) * 0.15).max(top * 0.05).max(1.0);
        let (y_min, y_max) = ((bottom - pad).max(0.0), top + pad);
        let n = points.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(84)
            .build_cartesian_2d(0..n.max(2) as u32 - 1, y_min..y_max)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = points.iter().map(|(l, _)| l.clone()).collect();
        let every = n.div_ceil(8);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(230, 236, 233))
            .x_labels(n)
            .x_label_formatter(&|x| {
                if (*x as usize) % every == 0 {
                    labels.get(*x as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(unit)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 11).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 12).into_font().color(&INK))
            .draw()
            .map_err(|e| e.to_string())?;
        let series: Vec<(u32, f64)> = points
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i as u32, v.to_f64().unwrap_or(0.0)))
            .collect();
        chart
            .draw_series(std::iter::once(PathElement::new(
                series.clone(),
                GREEN.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 3, GREEN.filled())),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
