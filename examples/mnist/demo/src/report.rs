//! What the demo saw: `report.json` (the figures the issue asks for, and the timeline they
//! come from) and `report.png` (the same timeline drawn).

use crate::traffic::LoadSample;
use crate::DemoError;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// The font of the plot's text, bundled so that no system font is needed (DejaVu Sans,
/// Bitstream Vera licence: assets/DejaVuSans.LICENSE).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// One stream batch as the demo saw it.
#[derive(Clone, Debug, Serialize)]
pub struct BatchRow {
    /// Its position in the stream (1-based).
    pub batch: usize,
    /// `clean` or `drifted`.
    pub phase: &'static str,
    /// Share of its digits the served model classified right.
    pub accuracy: f64,
    /// The model versions that answered it.
    pub versions: Vec<String>,
    /// The Checker's drift score after it (`checker.drift`), if set.
    pub drift_score: Option<f64>,
    /// Whether a check of this batch judged it drifted.
    pub drift_detected: bool,
    /// Seconds since the stream started, when the batch had been sent and the runtime had
    /// settled.
    pub t_s: f64,
}

/// A model replacement, from the decisions audit log.
#[derive(Clone, Debug, Serialize)]
pub struct Replacement {
    /// The stream batch after which it happened.
    pub after_batch: usize,
    /// When (the audit log's time).
    pub time: String,
    /// The policy that decided it.
    pub policy: String,
    /// The served model's accuracy the policy read (on the Improver's held-out data).
    pub old_accuracy: Option<f64>,
    /// The candidate's accuracy the policy read (same data).
    pub new_accuracy: Option<f64>,
    /// What the action reported.
    pub result: String,
}

/// One sample of the load ramp: the clients' latency and the runtime's view.
#[derive(Clone, Debug, Serialize)]
pub struct RampRow {
    /// The clients' side.
    #[serde(flatten)]
    pub load: LoadSample,
    /// `predictor.latency.p95` as the runtime measured it (ms), if set.
    pub service_p95_ms: Option<f64>,
    /// `predictor.replicas`.
    pub replicas: Option<i64>,
}

/// `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// The program run.
    pub program: String,
    /// The corruptions of the drifted stream (`name:severity`).
    pub corruptions: Vec<String>,
    /// Accuracy of the first model on the clean stream.
    pub clean_accuracy: f64,
    /// The training step's own held-out accuracy of the first model.
    pub trained_accuracy: Option<f64>,
    /// Accuracy on the drifted stream before the loop acted (batches answered by the first
    /// model).
    pub stream_accuracy_before: Option<f64>,
    /// Accuracy on the drifted stream after the last replacement.
    pub stream_accuracy_after: Option<f64>,
    /// Samples labelled by the Improver's label source.
    pub labels_used: Option<i64>,
    /// Drifted batches sent until a check first judged a batch drifted (1: the first drifted
    /// batch was flagged).
    pub detection_delay_batches: Option<usize>,
    /// Share of the clean batches' checks that judged them drifted.
    pub false_alarm_rate: Option<f64>,
    /// Model replacements.
    pub replacements: Vec<Replacement>,
    /// Every stream batch.
    pub batches: Vec<BatchRow>,
    /// The load ramp.
    pub ramp: Vec<RampRow>,
    /// The scale actions during the ramp (from the audit log).
    pub scalings: Vec<String>,
    /// Seconds the whole demo took.
    pub duration_s: f64,
}

impl Report {
    /// Writes `report.json` and `report.png` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), DemoError> {
        let json = out.join("report.json");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| DemoError::Runtime(e.to_string()))?;
        std::fs::write(&json, text).map_err(|e| DemoError::io(&json, e))?;
        let png = out.join("report.png");
        self.plot(&png)
            .map_err(|e| DemoError::Runtime(format!("{}: {e}", png.display())))
    }

    fn plot(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "cannot load the bundled font")?;
        let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(480);
        self.plot_stream(&top)?;
        self.plot_ramp(&bottom)?;
        root.present()?;
        Ok(())
    }

    fn plot_stream<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let n = self.batches.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(
                "Live accuracy on the MNIST stream (clean, then corrupted)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5f64..(n as f64 + 0.5), 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("stream batch (1000 digits each)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("accuracy")
            .label_style(("sans-serif", 14))
            .draw()?;
        // Drifted batches shaded.
        for b in self.batches.iter().filter(|b| b.phase == "drifted") {
            let x = b.batch as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.5, 0.0), (x + 0.5, 1.02)],
                RGBColor(255, 236, 210).filled(),
            )))?;
        }
        chart
            .draw_series(LineSeries::new(
                self.batches.iter().map(|b| (b.batch as f64, b.accuracy)),
                BLUE.stroke_width(2),
            ))?
            .label("live accuracy")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(
            self.batches
                .iter()
                .map(|b| Circle::new((b.batch as f64, b.accuracy), 3, BLUE.filled())),
        )?;
        chart
            .draw_series(
                self.batches
                    .iter()
                    .filter(|b| b.drift_detected)
                    .map(|b| TriangleMarker::new((b.batch as f64, 0.06), 7, RED.filled())),
            )?
            .label("check judged the batch drifted")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, RED.filled()));
        for (k, r) in self.replacements.iter().enumerate() {
            let x = r.after_batch as f64 + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, 1.02)],
                GREEN.stroke_width(3),
            )))?;
            let label = match (r.old_accuracy, r.new_accuracy) {
                (Some(o), Some(n)) => format!("replaced: {o:.3} → {n:.3}"),
                _ => "replaced".to_string(),
            };
            chart.draw_series(std::iter::once(Text::new(
                label,
                // Staggered, so that replacements on consecutive batches stay legible.
                (x + 0.1, 0.12 + 0.07 * (k % 4) as f64),
                ("sans-serif", 14).into_font().color(&GREEN),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        Ok(())
    }

    fn plot_ramp<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let (t0, t1) = match (self.ramp.first(), self.ramp.last()) {
            (Some(a), Some(b)) if b.load.t_s > a.load.t_s => (a.load.t_s, b.load.t_s),
            _ => (0.0, 1.0),
        };
        let max_ms = self
            .ramp
            .iter()
            .map(|r| r.load.p95_ms.max(r.service_p95_ms.unwrap_or(0.0)))
            .fold(10.0f64, f64::max)
            * 1.1;
        let max_replicas = self
            .ramp
            .iter()
            .filter_map(|r| r.replicas)
            .max()
            .unwrap_or(1)
            .max(2) as f64
            + 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption("Load ramp: latency and replicas", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .right_y_label_area_size(55)
            .build_cartesian_2d(0f64..(t1 - t0).max(1.0), 0f64..max_ms)?
            .set_secondary_coord(0f64..(t1 - t0).max(1.0), 0f64..max_replicas);
        chart
            .configure_mesh()
            .x_desc("seconds into the ramp")
            .y_desc("p95 latency (ms)")
            .label_style(("sans-serif", 14))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("replicas")
            .label_style(("sans-serif", 14))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                self.ramp.iter().map(|r| (r.load.t_s - t0, r.load.p95_ms)),
                BLUE.stroke_width(2),
            ))?
            .label("client p95")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                self.ramp
                    .iter()
                    .filter_map(|r| r.service_p95_ms.map(|p| (r.load.t_s - t0, p))),
                MAGENTA.stroke_width(2),
            ))?
            .label("predictor.latency.p95 (runtime)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA.stroke_width(2)));
        chart
            .draw_secondary_series(LineSeries::new(
                self.ramp
                    .iter()
                    .filter_map(|r| r.replicas.map(|n| (r.load.t_s - t0, n as f64))),
                GREEN.stroke_width(3),
            ))?
            .label("replicas")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(batch: usize, phase: &'static str, accuracy: f64, detected: bool) -> BatchRow {
        BatchRow {
            batch,
            phase,
            accuracy,
            versions: vec!["1".into()],
            drift_score: Some(0.1),
            drift_detected: detected,
            t_s: batch as f64,
        }
    }

    #[test]
    fn the_report_is_written_as_json_and_a_png() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let report = Report {
            mode: "quick",
            program: "p.sflow".into(),
            corruptions: vec!["rotate:4".into()],
            clean_accuracy: 0.97,
            trained_accuracy: Some(0.96),
            stream_accuracy_before: Some(0.6),
            stream_accuracy_after: Some(0.8),
            labels_used: Some(300),
            detection_delay_batches: Some(1),
            false_alarm_rate: Some(0.0),
            replacements: vec![Replacement {
                after_batch: 3,
                time: "t".into(),
                policy: "replace_if_better".into(),
                old_accuracy: Some(0.6),
                new_accuracy: Some(0.8),
                result: "predictor now serves".into(),
            }],
            batches: vec![
                row(1, "clean", 0.97, false),
                row(2, "drifted", 0.6, true),
                row(3, "drifted", 0.62, true),
                row(4, "drifted", 0.8, false),
            ],
            ramp: (0..5)
                .map(|i| RampRow {
                    load: LoadSample {
                        t_s: f64::from(i),
                        clients: 4,
                        requests: 100,
                        failed: 0,
                        p50_ms: 1.0,
                        p95_ms: 2.0 + f64::from(i),
                    },
                    service_p95_ms: Some(1.5),
                    replicas: Some(1 + i64::from(i / 3)),
                })
                .collect(),
            scalings: vec![],
            duration_s: 1.0,
        };
        report.write(dir.path())?;
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json"))?)?;
        for key in [
            "clean_accuracy",
            "stream_accuracy_before",
            "stream_accuracy_after",
            "labels_used",
            "detection_delay_batches",
            "false_alarm_rate",
            "replacements",
        ] {
            assert!(json.get(key).is_some(), "report.json lacks {key}");
        }
        let png = std::fs::read(dir.path().join("report.png"))?;
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Width and height from the IHDR chunk.
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        assert_eq!((w, h), (1200, 900));
        Ok(())
    }
}
