//! The SAM template (infra/template.yaml) declares the same table key schema as
//! `key_schema.rs`: pk (HASH, S) and day (RANGE, S).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use reimport_store_dynamodb::key_schema::{PARTITION_KEY, SORT_KEY};
use serde_yaml::Value;

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // CloudFormation short tags (!Ref, !Sub, !GetAtt) parse as Value::Tagged.
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a plain string: {value:?}"))
        .to_string()
}

#[test]
fn template_table_key_schema_matches_key_schema_rs() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let tables: Vec<(&Value, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .collect();
    assert_eq!(tables.len(), 1, "exactly one DynamoDB table in the template");
    let properties = &tables[0].1["Properties"];

    let key_schema: Vec<(String, String)> = properties["KeySchema"]
        .as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| (text(k, "AttributeName"), text(k, "KeyType")))
        .collect();
    assert_eq!(
        key_schema,
        [
            (PARTITION_KEY.to_string(), "HASH".to_string()),
            (SORT_KEY.to_string(), "RANGE".to_string())
        ]
    );

    let mut definitions: Vec<(String, String)> = properties["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| (text(a, "AttributeName"), text(a, "AttributeType")))
        .collect();
    definitions.sort();
    let mut want = vec![
        (PARTITION_KEY.to_string(), "S".to_string()),
        (SORT_KEY.to_string(), "S".to_string()),
    ];
    want.sort();
    assert_eq!(definitions, want, "only the key attributes are declared, both strings");

    assert_eq!(
        properties["BillingMode"].as_str(),
        Some("PAY_PER_REQUEST"),
        "on-demand, as ensure_table creates it"
    );
}

#[test]
fn cloudformation_short_tags_parse_as_tagged_values() {
    let value: Value = serde_yaml::from_str("a: !Ref Name\nb: !GetAtt T.Arn\nc: !Sub '${X}-y'\n").unwrap();
    assert!(matches!(value["a"], Value::Tagged(_)));
    assert!(matches!(value["b"], Value::Tagged(_)));
    assert!(matches!(value["c"], Value::Tagged(_)));
}
