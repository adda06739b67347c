//! Files of earlier schema versions open, migrate in one transaction, and answer every query
//! exactly as before; then take new upserts.
//! - `tests/fixtures/v1.db`: written by the store before schema version 2, with the
//!   `reimport query --format json` output of that version beside it (`v1-q-*.json`).
//! - `tests/fixtures/v2.db`: the version-1 file opened by the version-2 store (migrated), then
//!   the two examples imported into it by `reimport import` of that version as tenant `fresh`,
//!   with its query output beside it (`v2-q-*.json`).

use std::path::Path;

use reimport_core::{ItemQuery, Kind, Store, StoredItem, Tenant};
use reimport_store_sqlite::SqliteStore;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::copy(Path::new(FIXTURES).join(name), &path).unwrap();
    path
}

fn v1_copy(dir: &Path) -> std::path::PathBuf {
    fixture_copy(dir, "v1.db")
}

/// The value of `PRAGMA name` in the file at `path`.
fn pragma<T: rusqlite::types::FromSql>(path: &Path, name: &str) -> T {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

fn user_version(path: &Path) -> i64 {
    pragma(path, "user_version")
}

/// Every query of `tenants` x both kinds answers what `<version>-q-<tenant>-<kind>.json` holds.
async fn answers_as_before(store: &SqliteStore, version: &str, tenants: &[&str]) {
    for tenant in tenants {
        for kind in [Kind::Website, Kind::PageTree] {
            let expected =
                std::fs::read_to_string(Path::new(FIXTURES).join(format!("{version}-q-{tenant}-{kind}.json"))).unwrap();
            let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
            let got = serde_json::to_value(all(store, tenant, kind).await).unwrap();
            assert_eq!(got, expected, "{version} {tenant} {kind}");
        }
    }
}

const TABLES: [&str; 5] = ["daily_item", "daily_item_text", "label", "origin", "series"];

fn tables(db: &rusqlite::Connection) -> Vec<String> {
    db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn all(store: &SqliteStore, tenant: &str, kind: Kind) -> Vec<StoredItem> {
    store
        .query(&ItemQuery {
            tenant: Tenant::new(tenant).unwrap(),
            kind,
            key: None,
            from: None,
            to: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_version_1_file_is_migrated_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(dir.path());
    assert_eq!(user_version(&path), 1, "the fixture is a version-1 file");
    let store = SqliteStore::open(&path).unwrap();
    answers_as_before(&store, "v1", &["acme", "other"]).await;
    assert_eq!(user_version(&path), 3);
    let db = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(tables(&db), TABLES);
    // Source and import time survive, readable through the view with the version-1 columns.
    let (rows, sources): (i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT source || imported_at) FROM daily_item_text",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, sources), (9 + 9 + 6, 4));
    let day: String = db
        .query_row(
            "SELECT day FROM daily_item_text WHERE tenant = 'acme' AND kind = 'pagetree' ORDER BY day LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(day, "2023-02-28");
    drop(db);

    // The migrated file takes new upserts, and reopening does not migrate again.
    reimport_core::conformance::run_all(&store, "after-migration").await;
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(all(&store, "acme", Kind::Website).await.len(), 9);
}

#[tokio::test]
async fn a_failed_migration_leaves_the_version_1_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(dir.path());
    // A view that the migration's CREATE VIEW collides with: the transaction rolls back.
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE VIEW daily_item_text AS SELECT 1").unwrap();
    }
    assert!(SqliteStore::open(&path).is_err());
    let db = rusqlite::Connection::open(&path).unwrap();
    let v = user_version(&path);
    let rows: i64 = db
        .query_row("SELECT count(*) FROM daily_item", [], |r| r.get(0))
        .unwrap();
    let tenant_column: i64 = db
        .query_row(
            "SELECT count(*) FROM pragma_table_info('daily_item') WHERE name = 'tenant'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((v, rows, tenant_column), (1, 24, 1));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reimport.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 4")
        .unwrap();
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("schema version 4"), "{err}");
}

fn page_size(path: &Path) -> i64 {
    pragma(path, "page_size")
}

#[tokio::test]
async fn a_new_file_gets_16_kib_pages_and_an_existing_file_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    drop(SqliteStore::open(&new).unwrap());
    assert_eq!(page_size(&new), 16_384);
    assert_eq!(pragma::<String>(&new, "journal_mode"), "wal");

    let old = v1_copy(dir.path());
    assert_eq!(page_size(&old), 4_096, "the fixture was written with 4 KiB pages");
    let store = SqliteStore::open(&old).unwrap();
    reimport_core::conformance::run_all(&store, "old-pages").await;
    drop(store);
    assert_eq!(page_size(&old), 4_096);
}

/// Tenant, kind, key, day and URL of every row of the `daily_item_text` view, sorted.
type ViewRow = (String, String, String, String, Option<String>);

fn view_rows(db: &rusqlite::Connection) -> Vec<ViewRow> {
    db.prepare("SELECT tenant, kind, key, day, pageinfo_url FROM daily_item_text ORDER BY 1, 2, 3, 4")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_version_2_file_is_migrated_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path(), "v2.db");
    assert_eq!(user_version(&path), 2, "the fixture is a version-2 file");
    let text_rows = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT count(*) FROM daily_item WHERE typeof(pageinfo_url) = 'text'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = {
        let db = rusqlite::Connection::open(&path).unwrap();
        assert!(text_rows(&db) > 0, "version 2 keeps the URL text in every row");
        view_rows(&db)
    };
    let store = SqliteStore::open(&path).unwrap();
    answers_as_before(&store, "v2", &["acme", "other", "fresh"]).await;
    assert_eq!(user_version(&path), 3);
    let db = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(tables(&db), TABLES);
    assert_eq!(text_rows(&db), 0, "attributes are label ids now");
    assert_eq!(view_rows(&db), before, "the view reads the same");
    // One label per distinct (line, URL).
    let (labels, distinct): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM label), \
             (SELECT count(*) FROM (SELECT DISTINCT tenant, kind, key, pageinfo_url FROM daily_item_text \
              WHERE pageinfo_url IS NOT NULL))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(labels, distinct);
    drop(db);

    reimport_core::conformance::run_all(&store, "after-v2-migration").await;
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    answers_as_before(&store, "v2", &["acme", "other", "fresh"]).await;
}
