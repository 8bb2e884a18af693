//! The store conformance suite on SQLite: instances are handles on one database file.

use std::sync::Arc;

use riposte::store::{Instance, OpenOptions, Store};

use super::Backend;

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self, instance: &str) -> Arc<dyn Store> {
        let path = self.dir.path().join("shared.db");
        let options = OpenOptions {
            instance: Instance::new(instance),
            ..OpenOptions::default()
        };
        riposte::store::open(&path.to_string_lossy(), options)
            .await
            .unwrap()
    }

    async fn previous_release(&self) -> Option<Arc<dyn Store>> {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/db/jobs-2026-12.db"
        );
        let copy = self.dir.path().join("previous.db");
        std::fs::copy(fixture, &copy).unwrap();
        let address = format!("sqlite:{}", copy.display());
        Some(
            riposte::store::open(&address, OpenOptions::default())
                .await
                .unwrap(),
        )
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(&Sqlite::new()).await;
            }
        )*
    };
}

super::every_check!(conformance);

#[tokio::test]
async fn an_address_with_another_scheme_names_a_backend_this_build_lacks() {
    let err = riposte::store::open("mysql://localhost/riposte", OpenOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("`mysql://`"), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
}
