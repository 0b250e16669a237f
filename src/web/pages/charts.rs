//! Charts drawn on the server as SVG (plotters), placed in the page as markup: no
//! script, no style attribute (the content security policy allows neither).

use plotters::prelude::*;

/// The brand red of the stylesheet.
const BAR: RGBColor = RGBColor(0x8f, 0x1d, 0x1d);

/// A bar chart of `values` labelled `labels`, with `unit` along the value axis.
pub fn bars(labels: &[String], values: &[i64], unit: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = values.iter().copied().max().unwrap_or(0).max(1);
        let top = top + top / 10 + 1;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(
                // A segmented range 0..n has a segment for each of 0..=n: one per label.
                (0..labels.len().max(1) - 1).into_segmented(),
                0..top,
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(unit)
            .x_labels(labels.len().max(1))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(BAR.filled())
                    .margin(6)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_markup_without_style_attributes() {
        let labels = vec!["2026-11".to_owned(), "2026-12".to_owned()];
        let svg = bars(&labels, &[3, 12], "guarantees").expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("2026-12"), "labels are drawn");
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP would block it"
        );
        assert!(!svg.contains("<script"));
        // One bar per value: no empty segment after the last.
        assert_eq!(svg.matches("fill=\"#8F1D1D\"").count(), 2, "{svg}");
        let one = bars(&labels[..1], &[5], "guarantees").expect("chart");
        assert_eq!(one.matches("fill=\"#8F1D1D\"").count(), 1, "{one}");
    }
}
