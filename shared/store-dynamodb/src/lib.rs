pub mod key_schema;
