//! The kind catalog as data: `reimport kinds --format json` and the JSON Schema for profiles
//! (`reimport schema`), both generated from `kind.rs` so they cannot drift from validation.

use serde_json::{json, Value};

use crate::decode::TextEncoding;
use crate::kind::{Kind, Metric};

/// Every kind with its key, optional dimensions and metrics (name, unit, meaning).
pub fn catalog_json() -> Value {
    Value::Array(
        Kind::ALL
            .iter()
            .map(|&k| {
                json!({
                    "kind": k.as_str(),
                    "key": k.key_dimension().as_str(),
                    "optionalDimensions": k.optional_dimensions().iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                    "metrics": k.metrics().iter().map(|&m| metric_json(m)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn metric_json(m: Metric) -> Value {
    json!({"name": m.as_str(), "unit": m.unit().as_str(), "description": m.description()})
}

/// A JSON Schema (draft 2020-12) for import profiles.
pub fn profile_json_schema() -> Value {
    let column = |targets: Vec<&str>| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["idx", "target"],
            "properties": {
                "idx": {"type": "integer", "minimum": 0, "description": "0-based column index"},
                "target": {"enum": targets}
            }
        })
    };
    let per_kind: Vec<Value> = Kind::ALL
        .iter()
        .map(|&k| {
            let dims: Vec<&str> = k.dimensions().iter().map(|d| d.as_str()).collect();
            let metrics: Vec<&str> = k.metrics().iter().map(|m| m.as_str()).collect();
            json!({
                "if": {"properties": {"kind": {"const": k.as_str()}}, "required": ["kind"]},
                "then": {"properties": {
                    "dimensions": {
                        "items": column(dims),
                        "contains": {"properties": {"target": {"const": k.key_dimension().as_str()}}, "required": ["target"]}
                    },
                    "metrics": {"items": column(metrics)}
                }}
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:reimport:import-profile",
        "title": "reimport import profile",
        "description": "Which CSV column is which dimension or metric, and the period the totals cover.",
        "type": "object",
        "additionalProperties": false,
        "required": ["kind", "dimensions", "metrics", "period"],
        "properties": {
            "skipHeader": {"type": "boolean", "default": false, "description": "Skip the first line (a header)."},
            "kind": {"enum": Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()},
            "dimensions": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "metrics": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "period": {
                "type": "object",
                "additionalProperties": false,
                "required": ["from", "to", "scale"],
                "properties": {
                    "from": {"type": "string", "pattern": "^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$", "description": "First day, DD/MM/YYYY, included."},
                    "to": {"type": "string", "pattern": "^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$", "description": "Last day, DD/MM/YYYY, included."},
                    "scale": {"const": "D", "description": "Daily: totals are spread over the days."}
                }
            },
            "delimiter": {"enum": [",", ";", "\t"], "description": "Optional. Detected from the first line when absent."},
            "encoding": {"enum": TextEncoding::NAMES, "description": "Optional. Read from the BOM, else detected (UTF-8, else Windows-1252)."},
            "decimalSeparator": {"enum": [",", "."], "description": "Optional. Settles values that read two ways, such as 1,234."}
        },
        "allOf": per_kind
    })
}
