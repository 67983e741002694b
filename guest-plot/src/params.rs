//! The job's params: parsed strictly (unknown fields and nulls are errors, like in `kind.json`), then
//! checked against the kind's limits so that rendering never meets an unbounded or degenerate request.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::json;

use kiln_guest::JobError;

/// The bounds of a request. `kind.json` states the structural ones too; the guest checks all of them.
pub mod limits {
    pub const MIN_SIDE: u32 = 64;
    pub const MAX_SIDE: u32 = 4096;
    pub const DEFAULT_WIDTH: u32 = 800;
    pub const DEFAULT_HEIGHT: u32 = 600;
    pub const MAX_SERIES: usize = 32;
    /// Points over all series (CSV: selected rows times y columns).
    pub const MAX_POINTS: usize = 100_000;
    pub const MAX_BINS: u32 = 1000;
    pub const MAX_LABELS: usize = 1000;
    pub const MAX_TITLE_CHARS: usize = 200;
    /// Axis labels, series names, category labels and CSV column names.
    pub const MAX_TEXT_CHARS: usize = 100;
    /// Larger magnitudes would overflow the axis arithmetic (span, padding) to infinity.
    pub const MAX_ABS_VALUE: f64 = 1e300;
}

use limits::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartType {
    #[default]
    Line,
    Scatter,
    Bar,
    Histogram,
}

/// Give the data either inline as series (no input file) or as csv columns of the uploaded CSV file
/// (input required), not both. Several series get distinct colours and a legend; a single series gets
/// a legend when it is named. At most 100000 points in total.
// The params as sent (the doc comments here are the schema's, for users): serde reads them strictly
// (`kiln_guest::parse`: unknown fields and nulls are errors), `kind.json`'s schema is generated from
// this type, and `validate` checks the limits and cross-field rules again.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "plot params", transform = cross_field_rules)]
pub struct Raw {
    /// Chart type. line: points joined in the given order. scatter: unjoined markers. bar: bars from
    /// zero, grouped side by side when there are several series. histogram: each series' y values are
    /// samples, counted into shared bins.
    #[serde(rename = "type", default)]
    #[schemars(extend("default" = "line"))]
    kind: Option<ChartType>,
    /// Title drawn centred above the chart; empty for none. Shortened with an ellipsis if wider than
    /// the image.
    #[serde(default)]
    #[schemars(length(max = MAX_TITLE_CHARS), extend("default" = ""))]
    title: Option<String>,
    /// Label under the x axis; empty for none.
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT_CHARS), extend("default" = ""))]
    x_label: Option<String>,
    /// Label left of the y axis, drawn rotated to read upwards; empty for none.
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT_CHARS), extend("default" = ""))]
    y_label: Option<String>,
    // Numbers, not u32, so that `validate` can say which range a value missed.
    /// Image width in pixels. Text and line sizes scale with the image.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = MIN_SIDE, max = MAX_SIDE), extend("default" = DEFAULT_WIDTH))]
    width: Option<f64>,
    /// Image height in pixels.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = MIN_SIDE, max = MAX_SIDE), extend("default" = DEFAULT_HEIGHT))]
    height: Option<f64>,
    /// Inline data: 1 to 32 series. Not allowed together with csv or an input file.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_SERIES))]
    series: Option<Vec<RawSeries>>,
    /// Bar charts only: category names under the bars, one per y value of every series (thinned out
    /// if they do not fit).
    #[serde(default)]
    #[schemars(with = "Option<Vec<Label>>", length(min = 1, max = MAX_LABELS))]
    labels: Option<Vec<String>>,
    /// Histograms only: number of equal-width bins spanning all samples. Default: Sturges' rule on the
    /// largest series (log2(n) + 1, at most 100).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = MAX_BINS))]
    bins: Option<f64>,
    /// Plot columns of the uploaded CSV file (comma-separated, with a header row naming the columns).
    /// One series per y column, named by its header. An empty y cell leaves a gap; any other cell must
    /// be a number.
    #[serde(default)]
    csv: Option<RawCsv>,
    /// With csv only: plot only rows whose x is at least this.
    #[serde(default)]
    #[schemars(range(min = -MAX_ABS_VALUE, max = MAX_ABS_VALUE))]
    start: Option<f64>,
    /// With csv only: plot only rows whose x is at most this (not less than start).
    #[serde(default)]
    #[schemars(range(min = -MAX_ABS_VALUE, max = MAX_ABS_VALUE))]
    end: Option<f64>,
}

/// One data series.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSeries {
    /// Name shown in the legend; default "series N".
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT_CHARS))]
    name: Option<String>,
    /// x values, as many as y. Default 0, 1, 2, ... Not allowed for histograms, nor for bar charts with
    /// labels.
    #[serde(default)]
    #[schemars(with = "Option<Vec<FiniteNumber>>", length(max = MAX_POINTS))]
    x: Option<Vec<f64>>,
    /// y values (for a histogram: the samples). For a bar chart with labels, one per label.
    #[schemars(with = "Vec<FiniteNumber>", length(min = 1, max = MAX_POINTS))]
    y: Vec<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCsv {
    /// Header of the x column (every row needs a number there). Default: the row index, 0 for the
    /// first data row.
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT_CHARS), regex(pattern = r"\S"))]
    x: Option<String>,
    /// Headers of the columns to plot, 1 to 32.
    #[schemars(with = "Vec<ColumnHeader>", length(min = 1, max = MAX_SERIES))]
    y: Vec<String>,
}

/// The rules between fields, which no field's own schema can state: series or csv (not both), start
/// and end only with csv, labels only for bar charts, bins only for histograms.
fn cross_field_rules(schema: &mut Schema) {
    let only_for = |field: &str, chart: &str| json!({"if": {"required": [field]}, "then": {"required": ["type"], "properties": {"type": {"const": chart}}}});
    schema.insert("oneOf".into(), json!([{"required": ["series"]}, {"required": ["csv"]}]));
    schema.insert("dependentRequired".into(), json!({"start": ["csv"], "end": ["csv"]}));
    schema.insert(
        "allOf".into(),
        json!([only_for("labels", "bar"), only_for("bins", "histogram")]),
    );
}

/// Schema-only types: the items of the lists above, each with its description and bounds.
macro_rules! item_schema {
    ($name:ident, $schema:tt) => {
        struct $name;
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

item_schema!(FiniteNumber, {
    "description": "A finite number.",
    "type": "number",
    "minimum": -MAX_ABS_VALUE,
    "maximum": MAX_ABS_VALUE
});
item_schema!(Label, {"description": "A category name.", "type": "string", "maxLength": MAX_TEXT_CHARS});
item_schema!(ColumnHeader, {
    "description": "A column header.",
    "type": "string",
    "maxLength": MAX_TEXT_CHARS,
    "pattern": "\\S"
});

/// A validated request.
#[derive(Debug, Clone)]
pub struct Params {
    pub kind: ChartType,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub width: u32,
    pub height: u32,
    pub source: Source,
    /// Category names under the bars (bar charts only).
    pub labels: Option<Vec<String>>,
    /// Histogram bins; `None` picks a count from the data.
    pub bins: Option<u32>,
}

/// Where the data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Series(Vec<SeriesParams>),
    Csv(CsvParams),
}

#[derive(Debug, Clone)]
pub struct SeriesParams {
    pub name: Option<String>,
    pub x: Option<Vec<f64>>,
    pub y: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct CsvParams {
    /// The x column; `None` uses the data row index (0-based).
    pub x: Option<String>,
    pub y: Vec<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
}

/// Parses and validates the params JSON, as a job does; for tests.
#[cfg(test)]
pub fn parse(json: &str) -> Result<Params, JobError> {
    validate(kiln_guest::parse(json)?)
}

fn err<T>(message: String) -> Result<T, JobError> {
    Err(JobError::invalid_params(message))
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<String, JobError> {
    let value = value.unwrap_or_default();
    let n = value.chars().count();
    if n > max {
        return err(format!("{field} is {n} characters long; at most {max} are allowed"));
    }
    Ok(value)
}

fn integer(field: &str, value: Option<f64>, min: u32, max: u32, default: u32) -> Result<u32, JobError> {
    match value {
        None => Ok(default),
        Some(v) if v.fract() == 0.0 && v >= f64::from(min) && v <= f64::from(max) => Ok(v as u32),
        Some(v) => err(format!("{field} must be an integer from {min} to {max}, got {v}")),
    }
}

/// Whether a data value is one the axes can handle.
pub fn in_range(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_ABS_VALUE
}

fn number(field: &str, v: f64) -> Result<f64, JobError> {
    if in_range(v) {
        Ok(v)
    } else {
        err(format!(
            "{field} must be a finite number of magnitude at most 1e300, got {v}"
        ))
    }
}

fn numbers(field: &str, values: &[f64]) -> Result<(), JobError> {
    match values.iter().position(|&v| !in_range(v)) {
        Some(i) => number(&format!("{field}[{i}]"), values[i]).map(|_| ()),
        None => Ok(()),
    }
}

pub fn validate(raw: Raw) -> Result<Params, JobError> {
    let kind = raw.kind.unwrap_or_default();
    let title = text("title", raw.title, MAX_TITLE_CHARS)?;
    let x_label = text("x_label", raw.x_label, MAX_TEXT_CHARS)?;
    let y_label = text("y_label", raw.y_label, MAX_TEXT_CHARS)?;
    let width = integer("width", raw.width, MIN_SIDE, MAX_SIDE, limits::DEFAULT_WIDTH)?;
    let height = integer("height", raw.height, MIN_SIDE, MAX_SIDE, limits::DEFAULT_HEIGHT)?;

    let bins = match raw.bins {
        Some(_) if kind != ChartType::Histogram => {
            return err("bins is only used by histogram charts".into());
        }
        b => b.map(|b| integer("bins", Some(b), 1, MAX_BINS, 1)).transpose()?,
    };

    let labels = match raw.labels {
        None => None,
        Some(_) if kind != ChartType::Bar => {
            return err("labels is only used by bar charts".into());
        }
        Some(labels) => {
            if labels.is_empty() || labels.len() > MAX_LABELS {
                return err(format!(
                    "labels must have 1 to {MAX_LABELS} entries, got {}",
                    labels.len()
                ));
            }
            let labels = labels
                .into_iter()
                .enumerate()
                .map(|(i, l)| text(&format!("labels[{i}]"), Some(l), MAX_TEXT_CHARS))
                .collect::<Result<Vec<_>, _>>()?;
            Some(labels)
        }
    };

    let source = match (raw.csv, raw.series) {
        (Some(_), Some(_)) => {
            return err("csv and series cannot be used together: plot either the input CSV or inline series".into());
        }
        (Some(csv), None) => {
            if labels.is_some() {
                return err("labels cannot be used with csv".into());
            }
            Source::Csv(validate_csv(csv, raw.start, raw.end)?)
        }
        (None, series) => {
            if raw.start.is_some() {
                return err("start is only used with csv".into());
            }
            if raw.end.is_some() {
                return err("end is only used with csv".into());
            }
            let series = series.unwrap_or_default();
            Source::Series(validate_series(kind, series, labels.as_deref())?)
        }
    };

    Ok(Params {
        kind,
        title,
        x_label,
        y_label,
        width,
        height,
        source,
        labels,
        bins,
    })
}

fn validate_csv(csv: RawCsv, start: Option<f64>, end: Option<f64>) -> Result<CsvParams, JobError> {
    let x = csv.x.map(|x| column_name("csv.x", x)).transpose()?;
    if csv.y.is_empty() || csv.y.len() > MAX_SERIES {
        return err(format!(
            "csv.y must name 1 to {MAX_SERIES} columns, got {}",
            csv.y.len()
        ));
    }
    let y = csv
        .y
        .into_iter()
        .enumerate()
        .map(|(i, name)| column_name(&format!("csv.y[{i}]"), name))
        .collect::<Result<Vec<_>, _>>()?;
    let start = start.map(|v| number("start", v)).transpose()?;
    let end = end.map(|v| number("end", v)).transpose()?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return err(format!("start ({s}) must not be greater than end ({e})"));
    }
    Ok(CsvParams { x, y, start, end })
}

fn column_name(field: &str, name: String) -> Result<String, JobError> {
    let name = text(field, Some(name), MAX_TEXT_CHARS)?;
    if name.trim().is_empty() {
        return err(format!("{field} must not be empty"));
    }
    Ok(name.trim().to_string())
}

fn validate_series(
    kind: ChartType,
    series: Vec<RawSeries>,
    labels: Option<&[String]>,
) -> Result<Vec<SeriesParams>, JobError> {
    if series.is_empty() {
        return err("series: give at least one series (or csv, with a CSV file as input)".into());
    }
    if series.len() > MAX_SERIES {
        return err(format!(
            "series has {} entries; at most {MAX_SERIES} are allowed",
            series.len()
        ));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(series.len());
    for (i, s) in series.into_iter().enumerate() {
        let field = format!("series[{i}]");
        let name = s
            .name
            .map(|n| text(&format!("{field}.name"), Some(n), MAX_TEXT_CHARS))
            .transpose()?;
        if s.y.is_empty() {
            return err(format!("{field}.y must not be empty"));
        }
        total = total.saturating_add(s.y.len());
        if total > MAX_POINTS {
            return err(format!("series: at most {MAX_POINTS} points in total are allowed"));
        }
        numbers(&format!("{field}.y"), &s.y)?;
        if let Some(x) = &s.x {
            if kind == ChartType::Histogram {
                return err(format!("{field}.x: a histogram takes its samples from y; leave x out"));
            }
            if labels.is_some() {
                return err(format!(
                    "{field}.x: bars with labels are placed by position; leave x out"
                ));
            }
            if x.len() != s.y.len() {
                return err(format!(
                    "{field}.x has {} values but {field}.y has {}; they must match",
                    x.len(),
                    s.y.len()
                ));
            }
            numbers(&format!("{field}.x"), x)?;
        }
        if let Some(labels) = labels
            && labels.len() != s.y.len()
        {
            return err(format!(
                "{field}.y has {} values but labels has {}; they must match",
                s.y.len(),
                labels.len()
            ));
        }
        out.push(SeriesParams { name, x: s.x, y: s.y });
    }
    Ok(out)
}
