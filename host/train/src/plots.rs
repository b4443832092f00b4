//! Training curves and the confusion matrix as PNGs, drawn with plotters.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::metrics::Report;
use crate::train::EpochStats;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// plotters' ab_glyph backend draws text only with a registered font.
fn ensure_font() -> Result<()> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let bytes = FONT_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!("no DejaVu Sans font found in {FONT_PATHS:?} (apt-get install fonts-dejavu-core)")
            })?;
        register_font(
            "sans-serif",
            FontStyle::Normal,
            Box::leak(bytes.into_boxed_slice()),
        )
        .map_err(|_| "font is not a valid TrueType file".to_string())
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

pub fn training_curves(path: &Path, title: &str, history: &[EpochStats]) -> Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let epochs = history.len().max(1) as f64;

    let max_loss = history
        .iter()
        .flat_map(|s| [s.train_loss, s.val_loss])
        .fold(0.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption(format!("{title}: loss"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5..epochs + 0.5, 0.0..max_loss.max(1e-3))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .draw()?;
    let series = |f: fn(&EpochStats) -> f64| history.iter().map(move |s| (s.epoch as f64, f(s)));
    chart
        .draw_series(LineSeries::new(series(|s| s.train_loss), &BLUE))?
        .label("train")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(series(|s| s.val_loss), &RED))?
        .label("validation")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let min_acc = history.iter().map(|s| s.val_accuracy).fold(1.0f64, f64::min);
    let mut chart = ChartBuilder::on(&right)
        .caption(format!("{title}: validation accuracy"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5..epochs + 0.5, (min_acc * 100.0 - 0.5)..100.0)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy %")
        .draw()?;
    chart.draw_series(LineSeries::new(
        history.iter().map(|s| (s.epoch as f64, s.val_accuracy * 100.0)),
        &GREEN,
    ))?;
    chart.draw_series(
        history
            .iter()
            .map(|s| Circle::new((s.epoch as f64, s.val_accuracy * 100.0), 3, GREEN.filled())),
    )?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn confusion_matrix(path: &Path, title: &str, report: &Report) -> Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (560, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{title}: {:.2}% on {} test images",
                report.accuracy() * 100.0,
                report.total
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.5f64..9.5f64, -0.5f64..9.5f64)?;
    // Cells are centred on whole numbers; row t (true label) is drawn at y = 9 - t.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(10)
        .y_labels(10)
        .x_desc("predicted")
        .y_desc("true label")
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .y_label_formatter(&|y| format!("{}", 9 - y.round() as i64))
        .draw()?;
    let max_off = (0..10)
        .flat_map(|t| (0..10).filter(move |&p| p != t).map(move |p| (t, p)))
        .map(|(t, p)| report.confusion[t][p])
        .max()
        .unwrap_or(0)
        .max(1);
    for t in 0..10 {
        for p in 0..10 {
            let count = report.confusion[t][p];
            let color = if t == p {
                RGBColor(40, 120, 60)
            } else {
                let k = 1.0 - (count as f64 / max_off as f64).sqrt();
                RGBColor(255, (255.0 * k) as u8, (255.0 * k) as u8)
            };
            let (x, y) = (p as f64, 9.0 - t as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                color.filled(),
            )))?;
            let text_color = if t == p { &WHITE } else { &BLACK };
            let centred = ("sans-serif", 13)
                .into_font()
                .color(text_color)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(count.to_string(), (x, y), centred)))?;
        }
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Accuracy against latency, one labelled point per model, latency on a log axis.
pub fn frontier(path: &Path, title: &str, x_desc: &str, points: &[(String, f64, f64)]) -> Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (min_x, max_x) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, _, x)| {
        (lo.min(*x), hi.max(*x))
    });
    let (min_y, max_y) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, y, _)| {
        (lo.min(*y), hi.max(*y))
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (min_x / 2.0..max_x * 2.0).log_scale(),
            (min_y - 0.3).max(0.0)..(max_y + 0.2).min(100.0),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("test accuracy, %")
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.2}"))
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(points.iter().map(|(name, y, x)| {
        EmptyElement::at((*x, *y))
            + Circle::new((0, 0), 5, BLUE.filled())
            + Text::new(name.clone(), (8, -14), ("sans-serif", 14).into_font())
    }))?;
    root.present()?;
    Ok(())
}
