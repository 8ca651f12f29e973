//! HdrHistogram percentile distributions (`--hdr-dir`): one `.hgrm` text file per
//! run and phase, in the format HdrHistogram's `outputPercentileDistribution`
//! writes (5 ticks per half distance) and its online plotter reads.
//!
//! Values are milliseconds (the histograms hold microseconds, scaled by 1000).
//! Files are named `<scenario-name-slug>.<phase>.hgrm`, e.g. `symlink.during.hgrm`.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::RunReport;
use crate::error::{Error, Result};

/// Percentile ticks per half distance to 100%, as HdrHistogram's default output uses.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Histogram values per output unit: microseconds recorded, milliseconds written.
pub const SCALING_RATIO: f64 = 1000.0;

/// The percentile distribution of `h` (microsecond values) in milliseconds.
pub fn render(h: &Histogram<u32>) -> String {
    let digits = usize::from(h.sigfig());
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / SCALING_RATIO;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                o,
                "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(o, "{value:12.digits$} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        o,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        h.mean() / SCALING_RATIO,
        h.stdev() / SCALING_RATIO
    );
    let _ = writeln!(
        o,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        h.max() as f64 / SCALING_RATIO,
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    o
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits (2048 for 3).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let single_unit = 2.0 * 10f64.powi(i32::from(sigfig));
    1u64 << (single_unit.log2().ceil() as u32)
}

/// A file-name-safe form of a scenario name: lowercase ASCII letters, digits,
/// `_` and single dashes; `run` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

/// File names (in `runs` order) and contents of every run's phase distributions.
/// Two runs with the same name get `-2`, `-3` ... appended to the second and later.
pub fn files(runs: &[RunReport]) -> Vec<(String, String)> {
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for r in runs {
        let Some(stats) = &r.stats else { continue };
        let base = slug(&r.name);
        let mut name = base.clone();
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = format!("{base}-{n}");
        }
        for p in &stats.phases {
            out.push((
                format!("{name}.{}.hgrm", slug(&p.name)),
                render(&p.histogram),
            ));
        }
    }
    out
}

/// Writes every run's phase distributions into `dir` (created if missing); returns the paths.
pub fn write_dir(dir: &Path, runs: &[RunReport]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::new();
    for (name, text) in files(runs) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;

    #[test]
    fn report_hgrm_format_matches_hdrhistogram() {
        let mut h = histogram::new_dense();
        for us in 1..=10_000u64 {
            histogram::record(&mut h, us); // 1 µs .. 10 ms, uniform
        }
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value at percentile 0.
        assert_eq!(
            lines[2],
            "       0.001 0.000000000000          1           1.00"
        );
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 50, "{text}");
        let mut last = (0.0, 0.0, 0u64);
        for r in &rows[..rows.len() - 1] {
            assert_eq!(r.len(), 4, "{r:?}");
            let (v, p, n): (f64, f64, u64) = (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
            );
            assert!(v >= last.0 && p >= last.1 && n >= last.2, "{r:?}");
            let inv: f64 = r[3].parse().unwrap();
            assert!((inv - 1.0 / (1.0 - p)).abs() / inv < 0.01, "{r:?}");
            last = (v, p, n);
        }
        // The last row is percentile 1 with no 1/(1-p) column, at the max and total count.
        let end = rows.last().unwrap();
        assert_eq!(end, &vec!["10.007", "1.000000000000", "10000"]);
        // The median row is ~5 ms.
        let median = rows.iter().find(|r| r[1] == "0.500000000000").unwrap();
        assert!((median[0].parse::<f64>().unwrap() - 5.0).abs() < 0.01);
        let footer: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("#["))
            .copied()
            .collect();
        assert_eq!(footer.len(), 3, "{text}");
        assert!(
            footer[0].starts_with("#[Mean    =        5.0"),
            "{}",
            footer[0]
        );
        assert!(
            footer[0].contains(", StdDeviation   =        2.8"),
            "{}",
            footer[0]
        );
        assert_eq!(
            footer[1],
            "#[Max     =       10.007, Total count    =        10000]"
        );
        assert_eq!(
            footer[2],
            format!(
                "#[Buckets = {:>12}, SubBuckets     =         2048]",
                h.buckets()
            )
        );
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn report_hgrm_empty_histogram_has_header_and_footer_only() {
        let text = render(&histogram::new_dense());
        assert!(text.starts_with("       Value     Percentile"));
        assert!(text.contains("#[Max     =        0.000, Total count    =            0]"));
        assert_eq!(text.lines().filter(|l| !l.is_empty()).count(), 4, "{text}");
    }

    #[test]
    fn report_hgrm_slugs_are_file_safe() {
        assert_eq!(slug("symlink"), "symlink");
        assert_eq!(slug("Negative / naive restart!"), "negative-naive-restart");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("whole run"), "whole-run");
        assert_eq!(slug("ünïcode"), "n-code");
        assert_eq!(slug("***"), "run");
    }
}
