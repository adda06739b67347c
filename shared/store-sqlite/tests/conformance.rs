//! The Store conformance suite against a real SQLite file.

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = reimport_store_sqlite::SqliteStore::open(dir.path().join("reimport.db")).unwrap();
    reimport_core::conformance::run_all(&store, "sqlite").await;
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    use reimport_core::{ItemQuery, Kind, Store, Tenant};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reimport.db");
    {
        let store = reimport_store_sqlite::SqliteStore::open(&path).unwrap();
        reimport_core::conformance::inserts_new_items(&store, "reopen").await;
    }
    let store = reimport_store_sqlite::SqliteStore::open(&path).unwrap();
    let got = store
        .query(&ItemQuery {
            tenant: Tenant::new("reopen-insert").unwrap(),
            kind: Kind::Website,
            key: None,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
}
