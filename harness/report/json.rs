//! The JSON report: `{"schema": "zdt-check/report/v2", "runs": [...]}`.
//!
//! The layout is described by `schema/report.schema.json`; a test validates real
//! output against it, so the schema cannot silently drift from the code.

use std::path::Path;

use serde::Serialize;

use super::{RunReport, SCHEMA_ID};
use crate::error::{Error, Result};

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: &'static str,
    runs: &'a [RunReport],
}

/// The JSON text for `runs`.
pub fn render(runs: &[RunReport]) -> String {
    serde_json::to_string_pretty(&Document {
        schema: SCHEMA_ID,
        version: env!("CARGO_PKG_VERSION"),
        runs,
    })
    .expect("reports serialize")
}

/// Writes the JSON report to `path`.
pub fn write(path: &Path, runs: &[RunReport]) -> Result<()> {
    std::fs::write(path, render(runs) + "\n").map_err(|e| Error::io(path, e))
}
