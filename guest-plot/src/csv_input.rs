//! Reading the plotted columns out of a CSV input (the seed use case: a header row, an x column such as
//! `year`, one series per y column, rows limited to `start <= x <= end`).
//!
//! Missing columns are the params' fault (`invalid-params`); bytes that are not CSV or cells that are not
//! numbers are the input's (`invalid-input`, naming the line). An empty y cell is a gap, not an error:
//! real exports often have holes.

use crate::data::Series;
use crate::params::{CsvParams, in_range, limits::MAX_POINTS};
use kiln_guest::JobError;

fn line_of(pos: Option<&csv::Position>) -> String {
    pos.map_or_else(|| "?".to_string(), |p| p.line().to_string())
}

fn csv_error(e: csv::Error) -> JobError {
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
            "CSV line {}: expected {expected_len} fields like the header, found {len}",
            line_of(pos.as_ref())
        ),
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!("CSV line {}: not valid UTF-8 text", line_of(pos.as_ref()))
        }
        _ => format!("CSV input could not be read: {e}"),
    };
    JobError::invalid_input(message)
}

fn column(headers: &csv::StringRecord, field: &str, name: &str) -> Result<usize, JobError> {
    headers.iter().position(|h| h == name).ok_or_else(|| {
        let mut known: Vec<&str> = headers.iter().take(20).collect();
        if headers.len() > 20 {
            known.push("…");
        }
        JobError::invalid_params(format!(
            "{field}: the CSV has no column named \"{name}\" (its columns: {})",
            known.join(", ")
        ))
    })
}

fn parse_cell(cell: &str, line: u64, name: &str) -> Result<f64, JobError> {
    match cell.parse::<f64>() {
        Ok(v) if in_range(v) => Ok(v),
        Ok(_) => Err(JobError::invalid_input(format!(
            "CSV line {line}, column \"{name}\": {cell:?} is not a finite number of magnitude at most 1e300"
        ))),
        Err(_) => Err(JobError::invalid_input(format!(
            "CSV line {line}, column \"{name}\": {cell:?} is not a number"
        ))),
    }
}

/// Reads one series per `csv.y` column, in that order, named by the header.
pub fn read(input: &[u8], params: &CsvParams) -> Result<Vec<Series>, JobError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader.headers().map_err(csv_error)?.clone();
    if headers.iter().all(str::is_empty) {
        return Err(JobError::invalid_input("CSV input has no header row"));
    }
    let x_col = params
        .x
        .as_deref()
        .map(|name| column(&headers, "csv.x", name))
        .transpose()?;
    let y_cols = params
        .y
        .iter()
        .enumerate()
        .map(|(i, name)| column(&headers, &format!("csv.y[{i}]"), name))
        .collect::<Result<Vec<_>, _>>()?;

    let mut series: Vec<Series> = params
        .y
        .iter()
        .map(|name| Series {
            name: name.clone(),
            points: Vec::new(),
        })
        .collect();
    let mut rows = 0u64;
    let mut selected = 0usize;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        let x = match (x_col, params.x.as_deref()) {
            (Some(i), Some(name)) => {
                let cell = record.get(i).unwrap_or_default();
                if cell.is_empty() {
                    return Err(JobError::invalid_input(format!(
                        "CSV line {line}, column \"{name}\": the x value is empty"
                    )));
                }
                parse_cell(cell, line, name)?
            }
            _ => rows as f64,
        };
        rows += 1;
        if params.start.is_some_and(|s| x < s) || params.end.is_some_and(|e| x > e) {
            continue;
        }
        selected += y_cols.len();
        if selected > MAX_POINTS {
            return Err(JobError::invalid_input(format!(
                "the CSV selects more than {MAX_POINTS} points; narrow the rows with start and end"
            )));
        }
        for ((&col, s), name) in y_cols.iter().zip(&mut series).zip(&params.y) {
            let cell = record.get(col).unwrap_or_default();
            let y = if cell.is_empty() {
                None
            } else {
                Some(parse_cell(cell, line, name)?)
            };
            s.points.push((x, y));
        }
    }

    if rows == 0 {
        return Err(JobError::invalid_input("CSV input has a header but no data rows"));
    }
    if selected == 0 {
        let x = params.x.as_deref().unwrap_or("row index");
        let start = params.start.map_or("-inf".to_string(), |v| v.to_string());
        let end = params.end.map_or("inf".to_string(), |v| v.to_string());
        return Err(JobError::invalid_params(format!(
            "start, end: no CSV rows have {start} <= {x} <= {end}"
        )));
    }
    if series.iter().all(|s| s.present().next().is_none()) {
        return Err(JobError::invalid_input(format!(
            "CSV columns {} have no values in the selected rows",
            params.y.join(", ")
        )));
    }
    Ok(series)
}
