//! `csv` and `json` feeds with a configured field mapping ([`FieldMap`]): the format of a network
//! voucherd has no adapter for, or of a retailer's own export. CSV has a header row naming the
//! columns; JSON is an array of objects (or holds one under `map.items`), fields by dotted path.

use serde_json::Value;

use super::{FeedError, FieldMap, RawRow};
use crate::domain::voucher::{RawOffer, RawTime};

/// The mapped fields in one order, to find their column or path once per document.
fn fields(map: &FieldMap) -> [&str; 9] {
    [
        &map.external_id,
        &map.retailer,
        &map.category,
        &map.title,
        &map.description,
        &map.code,
        &map.url,
        &map.starts_at,
        &map.ends_at,
    ]
}

fn offer(values: [Option<String>; 9]) -> RawOffer {
    let [
        external_id,
        retailer,
        category,
        title,
        description,
        code,
        url,
        starts,
        ends,
    ] = values;
    RawOffer {
        external_id,
        retailer,
        category,
        title,
        description,
        code,
        code_is_pattern: false,
        url,
        starts_at: starts.map_or(RawTime::None, RawTime::Text),
        ends_at: ends.map_or(RawTime::None, RawTime::Text),
    }
}

pub fn parse_csv(bytes: &[u8], map: &FieldMap) -> Result<Vec<RawRow>, FeedError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| FeedError::Malformed(format!("unreadable CSV header: {e}")))?
        .clone();
    let column = |name: &str| -> Option<usize> {
        (!name.is_empty())
            .then(|| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
            .flatten()
    };
    let columns = fields(map).map(column);
    for (field, name) in [
        ("external_id", &map.external_id),
        ("retailer", &map.retailer),
    ] {
        if column(name).is_none() {
            return Err(FeedError::Malformed(format!(
                "the CSV has no column `{name}` (mapped to {field})"
            )));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(match record {
            Ok(record) => Ok(offer(
                columns.map(|c| c.and_then(|i| record.get(i)).map(str::to_owned)),
            )),
            Err(e) => Err((None, format!("unreadable CSV row: {e}"))),
        });
    }
    Ok(rows)
}

fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn parse_json(bytes: &[u8], map: &FieldMap) -> Result<Vec<RawRow>, FeedError> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| FeedError::Malformed(format!("not JSON: {e}")))?;
    let items = at(&doc, &map.items)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            FeedError::Malformed(if map.items.is_empty() {
                "the document is not an array (set map.items to the path of the rows)".into()
            } else {
                format!("no array at `{}`", map.items)
            })
        })?;
    let names = fields(map);
    Ok(items
        .iter()
        .map(|item| {
            if !item.is_object() {
                return Err((None, "row is not an object".to_owned()));
            }
            Ok(offer(names.map(|path| {
                if path.is_empty() {
                    None
                } else {
                    scalar(at(item, path))
                }
            })))
        })
        .collect())
}
