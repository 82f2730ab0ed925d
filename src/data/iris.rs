//! TensorFlow's iris CSV layout: a header `N,F,name0,name1,...` (examples, features, class
//! names), then N lines of F numbers and a class index.

use super::{DataError, Dataset};
use std::path::Path;

/// Parses iris-format CSV text; `path` is only used in error messages. Returns the data set
/// and the class names.
pub fn parse(text: &str, path: &Path) -> Result<(Dataset, Vec<String>), DataError> {
    let bad = |line: usize, msg: String| DataError::format(path, format!("line {line}: {msg}"));
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let (hl, header) = lines
        .next()
        .ok_or_else(|| DataError::format(path, "empty file"))?;
    let h: Vec<&str> = header.split(',').map(str::trim).collect();
    let parse_count = |s: &str, what: &str| {
        s.parse::<usize>()
            .map_err(|_| bad(hl, format!("header field {what} is {s:?}, not a count (expected e.g. `150,4,setosa,versicolor,virginica`)")))
    };
    if h.len() < 3 {
        return Err(bad(
            hl,
            format!("header {header:?} needs examples, features and class names"),
        ));
    }
    let n = parse_count(h[0], "examples")?;
    let features = parse_count(h[1], "features")?;
    if features == 0 {
        return Err(bad(hl, "header declares 0 features".into()));
    }
    let names: Vec<String> = h[2..].iter().map(|s| s.to_string()).collect();
    let classes = names.len();
    // The header is not trusted for allocation: each value takes at least two bytes of text.
    let mut x = Vec::with_capacity(n.saturating_mul(features).min(text.len() / 2));
    let mut y = Vec::with_capacity(n.min(text.len() / 2));
    for (ln, line) in lines {
        if y.len() == n {
            return Err(bad(
                ln,
                format!("more rows than the {n} the header declares"),
            ));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != features + 1 {
            return Err(bad(
                ln,
                format!(
                    "{} fields, expected {} features and a class",
                    fields.len(),
                    features
                ),
            ));
        }
        for f in &fields[..features] {
            let v: f32 = f
                .parse()
                .map_err(|_| bad(ln, format!("{f:?} is not a number")))?;
            if !v.is_finite() {
                return Err(bad(ln, format!("{f:?} is not a finite number")));
            }
            x.push(v);
        }
        let c = fields[features];
        let label: u32 = c
            .parse()
            .map_err(|_| bad(ln, format!("class {c:?} is not an index")))?;
        if label as usize >= classes {
            return Err(bad(
                ln,
                format!("class index {label} but only {classes} classes are named"),
            ));
        }
        y.push(label);
    }
    if y.len() != n {
        return Err(DataError::format(
            path,
            format!("{} rows, the header declares {n}", y.len()),
        ));
    }
    Ok((
        Dataset {
            x,
            y,
            n,
            features,
            classes,
        },
        names,
    ))
}

/// Reads an iris-format CSV file.
pub fn load(path: &Path) -> Result<(Dataset, Vec<String>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| DataError::format(path, "not UTF-8 text"))?;
    parse(text, path)
}
