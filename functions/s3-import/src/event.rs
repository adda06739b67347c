//! What an invocation payload says happened, whatever way it was delivered.
//!
//! The function may be wired to the bucket directly (S3 notification `Records[].s3`), through a
//! queue (SQS `Records[].body` holding the notification as a JSON string, possibly itself an
//! SNS envelope), through SNS (`Records[].Sns.Message`), or through EventBridge ("Object
//! Created", `detail.bucket.name` / `detail.object.key`). The payload is read as a JSON value
//! and dispatched on its shape rather than deserialized into one event type: the typed events
//! insist on fields (`eventTime`, `userIdentity`, ...) that MinIO and test tools leave out, and
//! a single strict type would turn the one odd record of a batch into a failed invocation.
//!
//! Keys of notification records are form-urlencoded and are decoded here; EventBridge keys are
//! taken as they are (see "Known problems" in the README). Every record yields one item, so one
//! bad record never hides the others.

use serde_json::Value;

use crate::key::decode_form_key;
use crate::Error;

/// How deep envelopes may nest (SQS holding SNS holding a notification is 2).
const MAX_NESTING: usize = 4;

/// How an object event reached the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    S3,
    Sqs,
    Sns,
    EventBridge,
}

/// One object event, its key decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    pub bucket: String,
    /// The key as S3 stores it.
    pub key: String,
    /// `ObjectCreated:Put`, `s3:ObjectCreated:Post`, `Object Created`, `s3:LifecycleTransition`...
    pub event_name: String,
    /// Whether the event says an object was written (anything else is skipped).
    pub created: bool,
    pub version_id: Option<String>,
    pub delivery: Delivery,
}

/// One thing an invocation payload holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventItem {
    Object(ObjectEvent),
    /// S3's `s3:TestEvent`, sent when a notification is configured: acknowledged, nothing to do.
    TestEvent {
        bucket: Option<String>,
    },
    /// A shape this function does not know: skipped with a warning.
    Unrecognized {
        shape: String,
    },
}

/// Everything `payload` holds, in order, one item (or error) per record.
pub fn classify(payload: &Value) -> Vec<Result<EventItem, Error>> {
    let mut items = Vec::new();
    classify_into(payload, Delivery::S3, 0, &mut items);
    items
}

fn classify_into(value: &Value, delivery: Delivery, depth: usize, items: &mut Vec<Result<EventItem, Error>>) {
    if depth > MAX_NESTING {
        items.push(Err(Error::EventShape {
            what: format!("envelopes nested more than {MAX_NESTING} deep"),
        }));
        return;
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        items.push(Ok(EventItem::TestEvent {
            bucket: text(value, &["Bucket"]).map(str::to_string),
        }));
    } else if let Some(records) = value.get("Records").and_then(Value::as_array) {
        for record in records {
            classify_record(record, delivery, depth, items);
        }
    } else if value.get("source").and_then(Value::as_str) == Some("aws.s3") && value.get("detail-type").is_some() {
        items.push(eventbridge_object(value));
    } else if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        match value.get("Message").and_then(Value::as_str) {
            Some(message) => nested(message, Delivery::Sns, "SNS message", value, depth, items),
            None => items.push(Ok(unrecognized(value))),
        }
    } else {
        items.push(Ok(unrecognized(value)));
    }
}

fn classify_record(record: &Value, delivery: Delivery, depth: usize, items: &mut Vec<Result<EventItem, Error>>) {
    if record.get("s3").is_some_and(Value::is_object) {
        items.push(notification_object(record, delivery));
    } else if let Some(body) = record.get("body").and_then(Value::as_str) {
        nested(body, Delivery::Sqs, "SQS message", record, depth, items);
    } else if let Some(message) = text(record, &["Sns", "Message"]) {
        nested(message, Delivery::Sns, "SNS message", record, depth, items);
    } else {
        items.push(Ok(unrecognized(record)));
    }
}

/// An envelope's payload, a JSON document in a string.
fn nested(
    text_json: &str,
    delivery: Delivery,
    envelope: &'static str,
    holder: &Value,
    depth: usize,
    items: &mut Vec<Result<EventItem, Error>>,
) {
    match serde_json::from_str::<Value>(text_json) {
        Ok(inner) => classify_into(&inner, delivery, depth + 1, items),
        Err(source) => items.push(Err(Error::EnvelopeJson {
            envelope,
            id: text(holder, &["messageId"])
                .or_else(|| text(holder, &["Sns", "MessageId"]))
                .or_else(|| text(holder, &["MessageId"]))
                .unwrap_or("?")
                .to_string(),
            source,
        })),
    }
}

fn notification_object(record: &Value, delivery: Delivery) -> Result<EventItem, Error> {
    let bucket = text(record, &["s3", "bucket", "name"]).ok_or_else(|| Error::EventShape {
        what: "a notification record without s3.bucket.name".to_string(),
    })?;
    let encoded_key = text(record, &["s3", "object", "key"]).ok_or_else(|| Error::EventShape {
        what: format!("a notification record for bucket {bucket:?} without s3.object.key"),
    })?;
    let event_name = text(record, &["eventName"]).unwrap_or_default();
    Ok(EventItem::Object(ObjectEvent {
        bucket: bucket.to_string(),
        key: decode_form_key(encoded_key)?,
        created: event_name.starts_with("ObjectCreated:") || event_name.starts_with("s3:ObjectCreated:"),
        event_name: event_name.to_string(),
        version_id: text(record, &["s3", "object", "versionId"]).map(str::to_string),
        delivery,
    }))
}

fn eventbridge_object(event: &Value) -> Result<EventItem, Error> {
    let detail_type = text(event, &["detail-type"]).unwrap_or_default();
    let (Some(bucket), Some(key)) = (
        text(event, &["detail", "bucket", "name"]),
        text(event, &["detail", "object", "key"]),
    ) else {
        return Err(Error::EventShape {
            what: format!("an EventBridge \"{detail_type}\" event without detail.bucket.name and detail.object.key"),
        });
    };
    Ok(EventItem::Object(ObjectEvent {
        bucket: bucket.to_string(),
        key: key.to_string(),
        created: detail_type == "Object Created",
        event_name: detail_type.to_string(),
        version_id: text(event, &["detail", "object", "version-id"]).map(str::to_string),
        delivery: Delivery::EventBridge,
    }))
}

fn unrecognized(value: &Value) -> EventItem {
    let shape = match value {
        Value::Object(fields) => {
            let names: Vec<&str> = fields.keys().take(8).map(String::as_str).collect();
            format!("an object with fields {}", names.join(", "))
        }
        Value::Array(_) => "an array".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Null => "null".to_string(),
    };
    EventItem::Unrecognized { shape }
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, field| v.get(field))?.as_str()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn samples_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3-events")
    }

    fn objects(payload: &Value) -> Vec<ObjectEvent> {
        classify(payload)
            .into_iter()
            .map(|item| match item {
                Ok(EventItem::Object(object)) => object,
                other => panic!("expected an object event, got {other:?}"),
            })
            .collect()
    }

    fn sample(name: &str) -> Value {
        let text = std::fs::read_to_string(samples_dir().join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_real_sample_is_classified_without_error() {
        let mut seen = 0;
        for entry in std::fs::read_dir(samples_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let items = classify(&payload);
            assert!(!items.is_empty(), "{}: nothing classified", path.display());
            for item in items {
                let item = item.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if let EventItem::Object(object) = &item {
                    assert!(!object.event_name.is_empty(), "{}: {object:?}", path.display());
                }
            }
            seen += 1;
        }
        assert!(seen >= 19, "only {seen} samples found in {}", samples_dir().display());
    }

    #[test]
    fn every_sample_lands_in_the_expected_class() {
        let expected: &[(&str, &[(&str, bool)])] = &[
            (
                "aws-lambda-rust-runtime__example-s3-event.json",
                &[("Happy Face.jpg", true)],
            ),
            (
                "aws-lambda-rust-runtime__example-s3-event-with-decoded.json",
                &[("Happy Face.jpg", true)],
            ),
            ("aws-lambda-go__s3-event.json", &[("Happy Face.jpg", true)]),
            ("aws-lambda-go__s3-event-with-decoded.json", &[("Happy Face.jpg", true)]),
            (
                "aws-lambda-go__s3-replication-event.json",
                &[("replication-test.png", false)],
            ),
            (
                "aws-lambda-go__s3-lifecycle-event.json",
                &[("lifecycle-test.dat", false)],
            ),
            (
                "powertools-lambda-python__s3Event.json",
                &[("b21b84d653bb07b05b1e6b33684dc11b", true)],
            ),
            (
                "powertools-lambda-python__s3EventDecodedKey.json",
                &[("Happy Face.jpg", true)],
            ),
            (
                "powertools-lambda-python__s3EventBridgeNotificationObjectCreatedEvent.json",
                &[("IMG_m7fzo3.jpg", true)],
            ),
            ("powertools-lambda-python__s3SqsEvent.json", &[("test.pdf", true)]),
            (
                "aws-lambda-dotnet__s3-event.json",
                &[("HappyFace.jpg", true), ("New File.jpg", true)],
            ),
            (
                "aws-lambda-dotnet__cloudwatchevents-s3objectcreated.json",
                &[("example-key", true)],
            ),
            ("aws-sam-cli__S3Put.json", &[("{{{key}}}", true)]),
            (
                "amazon-s3-userguide__notification-content-structure__ObjectCreated-Put.json",
                &[("HappyFace.jpg", true)],
            ),
            (
                "amazon-s3-userguide__ev-events__Object-Created.json",
                &[("example-key", true)],
            ),
            (
                "minio-issue-15200__minio-event-slash-encoded.json",
                &[("users/ABC", true)],
            ),
        ];
        for (name, keys) in expected {
            let got: Vec<(String, bool)> = objects(&sample(name)).into_iter().map(|o| (o.key, o.created)).collect();
            let want: Vec<(String, bool)> = keys.iter().map(|(k, c)| (k.to_string(), *c)).collect();
            assert_eq!(got, want, "{name}");
        }
        let test_event = classify(&sample(
            "amazon-s3-userguide__notification-content-structure__s3-TestEvent.json",
        ));
        assert!(
            matches!(&test_event[..], [Ok(EventItem::TestEvent { bucket: Some(b) })] if b == "bucketname"),
            "{test_event:?}"
        );
    }

    #[test]
    fn sqs_and_eventbridge_carry_bucket_version_and_delivery() {
        let sqs = objects(&sample("powertools-lambda-python__s3SqsEvent.json"));
        assert_eq!(sqs[0].bucket, "xxx");
        assert_eq!(sqs[0].delivery, Delivery::Sqs);
        assert_eq!(sqs[0].version_id.as_deref(), Some("yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV"));
        let bridge = objects(&sample("amazon-s3-userguide__ev-events__Object-Created.json"));
        assert_eq!(bridge[0].bucket, "DOC-EXAMPLE-BUCKET1");
        assert_eq!(bridge[0].delivery, Delivery::EventBridge);
        assert_eq!(
            bridge[0].version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
    }

    /// LocalStack's snapshots are test recordings, not payloads: the file itself is acknowledged
    /// as unrecognized, and the records it recorded classify like any notification.
    #[test]
    fn localstack_snapshots_are_skipped_and_their_recorded_records_classify() {
        for (name, key) in [
            (
                "localstack__test_s3_notifications_sqs.snapshot__test_key_encoding.json",
                "a@b",
            ),
            (
                "localstack__test_s3_notifications_sqs.snapshot__test_object_created_complete_multipart_upload.json",
                "test-key",
            ),
        ] {
            let snapshot = sample(name);
            assert!(
                matches!(&classify(&snapshot)[..], [Ok(EventItem::Unrecognized { .. })]),
                "{name}"
            );
            let recording = snapshot.as_object().unwrap().values().next().unwrap();
            let messages = recording["recorded-content"]["receive_messages"]["messages"].clone();
            let got = objects(&json!({ "Records": messages }));
            assert_eq!(got.len(), 1, "{name}");
            assert_eq!(got[0].key, key);
            assert!(got[0].created);
        }
    }

    #[test]
    fn every_record_of_a_batch_is_classified_and_a_bad_one_does_not_hide_the_others() {
        let record = |key: &str| json!({"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": key}}});
        let payload =
            json!({"Records": [record("incoming/a/x+y.csv"), record("bad%zz"), record("incoming/a/x+y.json")]});
        let items = classify(&payload);
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], Ok(EventItem::Object(o)) if o.key == "incoming/a/x y.csv"));
        assert!(matches!(&items[1], Err(Error::KeyEncoding { .. })));
        assert!(matches!(&items[2], Ok(EventItem::Object(o)) if o.key == "incoming/a/x y.json"));
    }

    #[test]
    fn sqs_messages_holding_sns_envelopes_and_test_events_are_unwrapped() {
        let notification = json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "k%2B1"}}}]});
        let sns = json!({"Type": "Notification", "MessageId": "m", "Message": notification.to_string()});
        let payload = json!({"Records": [
            {"messageId": "1", "eventSource": "aws:sqs", "body": sns.to_string()},
            {"messageId": "2", "eventSource": "aws:sqs", "body": json!({"Event": "s3:TestEvent", "Bucket": "b"}).to_string()},
            {"messageId": "3", "eventSource": "aws:sqs", "body": "not json"},
            {"EventSource": "aws:sns", "Sns": {"MessageId": "4", "Message": notification.to_string()}},
        ]});
        let items = classify(&payload);
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(matches!(&items[0], Ok(EventItem::Object(o)) if o.key == "k+1" && o.delivery == Delivery::Sns));
        assert!(matches!(&items[1], Ok(EventItem::TestEvent { .. })));
        assert!(matches!(&items[2], Err(Error::EnvelopeJson { id, .. }) if id == "3"));
        assert!(matches!(&items[3], Ok(EventItem::Object(o)) if o.key == "k+1"));
    }

    #[test]
    fn eventbridge_keys_are_not_decoded_and_other_detail_types_are_not_creations() {
        let event = |detail_type: &str| {
            json!({"source": "aws.s3", "detail-type": detail_type,
                   "detail": {"bucket": {"name": "b"}, "object": {"key": "incoming/a/x+y %2B.csv"}}})
        };
        let created = objects(&event("Object Created"));
        assert_eq!(created[0].key, "incoming/a/x+y %2B.csv");
        assert!(created[0].created);
        assert!(!objects(&event("Object Deleted"))[0].created);
    }

    #[test]
    fn odd_payloads_are_unrecognized_or_errors_never_panics() {
        for payload in [
            json!(null),
            json!([]),
            json!("x"),
            json!({}),
            json!({"Records": [{"x": 1}]}),
        ] {
            assert!(
                classify(&payload)
                    .iter()
                    .all(|i| matches!(i, Ok(EventItem::Unrecognized { .. }))),
                "{payload}"
            );
        }
        assert!(classify(&json!({"Records": []})).is_empty());
        let no_key = json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]});
        assert!(matches!(&classify(&no_key)[..], [Err(Error::EventShape { .. })]));
        let mut deep = json!({"Records": []});
        for _ in 0..6 {
            deep = json!({"Records": [{"body": deep.to_string()}]});
        }
        assert!(matches!(&classify(&deep)[..], [Err(Error::EventShape { .. })]));
    }
}
