//! The data to draw, in one shape whether it came from inline series or from a CSV input.

use crate::csv_input;
use crate::params::{Params, Source};
use kiln_guest::JobError;

/// One named sequence of points. `y` is `None` where a CSV cell was empty: lines break there.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

impl Series {
    /// The points that have a value.
    pub fn present(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points.iter().filter_map(|&(x, y)| y.map(|y| (x, y)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub series: Vec<Series>,
    /// Whether the names mean something to the user (given, or CSV headers), so a lone series still
    /// gets a legend.
    pub named: bool,
}

/// Builds the dataset from validated params and the job's input bytes.
pub fn assemble(params: &Params, input: &[u8]) -> Result<Dataset, JobError> {
    match &params.source {
        Source::Csv(csv) => {
            if input.is_empty() {
                return Err(JobError::invalid_params(
                    "csv: plotting CSV columns needs a CSV file as the job's input, and none was given",
                ));
            }
            let series = csv_input::read(input, csv)?;
            Ok(Dataset { series, named: true })
        }
        Source::Series(list) => {
            if !input.is_empty() {
                return Err(JobError::invalid_params(
                    "csv: an input file was given but params do not say which columns to plot (csv.x, csv.y)",
                ));
            }
            let named = list.iter().any(|s| s.name.is_some());
            let series = list
                .iter()
                .enumerate()
                .map(|(i, s)| Series {
                    name: s.name.clone().unwrap_or_else(|| format!("series {}", i + 1)),
                    points: match &s.x {
                        Some(x) => x.iter().zip(&s.y).map(|(&x, &y)| (x, Some(y))).collect(),
                        // Without x, points sit at their index, which is also each bar label's slot.
                        None => s.y.iter().enumerate().map(|(i, &y)| (i as f64, Some(y))).collect(),
                    },
                })
                .collect();
            Ok(Dataset { series, named })
        }
    }
}
